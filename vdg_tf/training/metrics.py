"""Classification metrics from labels and predicted probabilities (plain NumPy)."""

from __future__ import annotations

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts [true, predicted]."""
    cm = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(cm, (np.asarray(y_true, int), np.asarray(y_pred, int)), 1)
    return cm


def per_class(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and support per class (0 where undefined)."""
    tp = np.diag(cm).astype(float)
    pred, true = cm.sum(0).astype(float), cm.sum(1).astype(float)
    precision = np.divide(tp, pred, out=np.zeros_like(tp), where=pred > 0)
    recall = np.divide(tp, true, out=np.zeros_like(tp), where=true > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": true}


def classification_report(y_true: np.ndarray, probs: np.ndarray, labels: list[str]) -> dict:
    """accuracy, macro_f1 (over classes present in y_true), per-class table, confusion."""
    y_true = np.asarray(y_true, int)
    y_pred = np.asarray(probs).argmax(-1)
    cm = confusion_matrix(y_true, y_pred, len(labels))
    pc = per_class(cm)
    present = pc["support"] > 0
    return {
        "n": int(len(y_true)),
        "accuracy": float((y_true == y_pred).mean()) if len(y_true) else 0.0,
        "macro_f1": float(pc["f1"][present].mean()) if present.any() else 0.0,
        "per_class": {
            name: {k: float(v[i]) for k, v in pc.items()} for i, name in enumerate(labels)
        },
        "confusion": cm.tolist(),
    }

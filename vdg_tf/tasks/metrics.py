"""Metric functions the tasks share (plain NumPy, checked by hand in tests)."""

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


def average_precision(y: np.ndarray, scores: np.ndarray) -> float:
    """Area under the precision-recall curve as the mean precision at each positive (sklearn's AP)."""
    y = np.asarray(y, bool)
    if not y.any():
        return float("nan")
    order = np.argsort(-np.asarray(scores, float), kind="stable")
    hits = y[order]
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(precision[hits].mean())


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; 0 where either side is constant."""
    a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    if len(a) < 2 or a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def auroc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties); nan if one class."""
    y = np.asarray(y_true, bool).ravel()
    s = np.asarray(scores, float).ravel()
    pos, neg = int(y.sum()), int((~y).sum())
    if not pos or not neg:
        return float("nan")
    order = np.argsort(s, kind="stable")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    i = 0
    while i < len(s):  # average rank over each run of tied scores
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[y].sum() - pos * (pos + 1) / 2) / (pos * neg))


def best_threshold(y_true: np.ndarray, scores: np.ndarray) -> float:
    """The score threshold (anomaly if score > t) with the best F1 on the anomalies."""
    y = np.asarray(y_true, bool).ravel()
    s = np.asarray(scores, float).ravel()
    candidates = np.unique(s)
    best, best_f1 = float(candidates[0]) if len(candidates) else 0.0, -1.0
    for t in candidates:
        f1 = f1_score(y, s > t)
        if f1 > best_f1:
            best, best_f1 = float(t), f1
    return best


def f1_score(y: np.ndarray, pred: np.ndarray) -> float:
    tp, fp, fn = (y & pred).sum(), (~y & pred).sum(), (y & ~pred).sum()
    return float(2 * tp / max(2 * tp + fp + fn, 1))

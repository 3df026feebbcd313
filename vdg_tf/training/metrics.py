"""Metrics per task from targets and model outputs (plain NumPy, checked by hand in tests)."""

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


def multilabel_report(y_true: np.ndarray, probs: np.ndarray, labels: list[str]) -> dict:
    """mAP over labels with a positive, micro/macro F1 and subset accuracy at 0.5."""
    y = np.asarray(y_true) > 0.5
    pred = np.asarray(probs) >= 0.5
    ap = np.array([average_precision(y[:, j], probs[:, j]) for j in range(y.shape[1])])
    tp, fp, fn = (y & pred).sum(0), (~y & pred).sum(0), (y & ~pred).sum(0)
    f1 = np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros(len(tp)), where=(2 * tp + fp + fn) > 0)
    micro = 2 * tp.sum() / max(2 * tp.sum() + fp.sum() + fn.sum(), 1)
    present = y.any(0)
    return {
        "n": int(len(y)),
        "map": float(np.nanmean(ap)) if present.any() else 0.0,
        "micro_f1": float(micro),
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "subset_accuracy": float((y == pred).all(1).mean()) if len(y) else 0.0,
        "per_class": {
            name: {"ap": float(ap[j]), "f1": float(f1[j]), "support": int(y[:, j].sum())}
            for j, name in enumerate(labels)
        },
    }


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; 0 where either side is constant."""
    a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    if len(a) < 2 or a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def regression_report(y_true: np.ndarray, pred: np.ndarray) -> dict:
    """MAE, RMSE, Pearson r; with signed targets also binary accuracy of the sign
    (acc-2 over non-zero targets, as sentiment benchmarks such as CMU-MOSI report it)."""
    y, p = np.asarray(y_true, float).ravel(), np.asarray(pred, float).ravel()
    out = {
        "n": int(len(y)),
        "mae": float(np.abs(y - p).mean()) if len(y) else 0.0,
        "rmse": float(np.sqrt(((y - p) ** 2).mean())) if len(y) else 0.0,
        "correlation": pearson(y, p),
    }
    nonzero = y != 0
    if (y < 0).any() and (y > 0).any():
        out["sign_accuracy"] = float(((y[nonzero] > 0) == (p[nonzero] > 0)).mean())
    return out


def ordinal_levels(probs: np.ndarray) -> np.ndarray:
    """Predicted level = how many P(y > k) exceed 0.5."""
    return (np.asarray(probs) > 0.5).sum(-1)


def ordinal_report(y_true: np.ndarray, probs: np.ndarray, labels: list[str]) -> dict:
    """Exact-level accuracy, MAE in levels, correlation and the confusion matrix."""
    y = np.asarray(y_true, int).ravel()
    pred = ordinal_levels(probs)
    cm = confusion_matrix(y, pred, len(labels))
    return {
        "n": int(len(y)),
        "accuracy": float((y == pred).mean()) if len(y) else 0.0,
        "mae": float(np.abs(y - pred).mean()) if len(y) else 0.0,
        "correlation": pearson(y, pred),
        "confusion": cm.tolist(),
    }


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
        f1 = _f1(y, s > t)
        if f1 > best_f1:
            best, best_f1 = float(t), f1
    return best


def _f1(y: np.ndarray, pred: np.ndarray) -> float:
    tp, fp, fn = (y & pred).sum(), (~y & pred).sum(), (y & ~pred).sum()
    return float(2 * tp / max(2 * tp + fp + fn, 1))


def anomaly_scores(outputs: np.ndarray) -> np.ndarray:
    """Anomaly score per clip: 1 - max probability of a normal-class head, or the SVDD score."""
    outputs = np.asarray(outputs, float)
    if outputs.ndim == 2 and outputs.shape[1] > 1:
        return 1.0 - outputs.max(1)
    return outputs.ravel()


def anomaly_report(y_true: np.ndarray, outputs: np.ndarray, threshold: float | None = None) -> dict:
    """AUROC, AP, and precision/recall/F1/accuracy at `threshold` (picked here if None)."""
    y = np.asarray(y_true).ravel() > 0.5
    s = anomaly_scores(outputs)
    t = best_threshold(y, s) if threshold is None else float(threshold)
    pred = s > t
    tp, fp, fn = (y & pred).sum(), (~y & pred).sum(), (y & ~pred).sum()
    return {
        "n": int(len(y)),
        "anomalies": int(y.sum()),
        "auroc": auroc(y, s),
        "ap": average_precision(y, s),
        "threshold": t,
        "precision": float(tp / max(tp + fp, 1)),
        "recall": float(tp / max(tp + fn, 1)),
        "f1": _f1(y, pred),
        "accuracy": float((y == pred).mean()) if len(y) else 0.0,
    }


def task_report(task: str, y_true: np.ndarray, outputs: np.ndarray, labels: list[str]) -> dict:
    """The metrics that define `task` (classification_report, multilabel_report, ...)."""
    if task in ("classification", "vqa"):
        return classification_report(y_true, outputs, labels)
    if task == "multilabel":
        return multilabel_report(y_true, outputs, labels)
    if task == "regression":
        return regression_report(y_true, outputs)
    if task == "ordinal":
        return ordinal_report(y_true, outputs, labels)
    if task == "anomaly":
        return anomaly_report(y_true, outputs)
    raise ValueError(f"data.task: unknown '{task}'")


PRIMARY = {
    "classification": "accuracy",
    "vqa": "accuracy",
    "multilabel": "map",
    "regression": "mae",
    "ordinal": "accuracy",
    "anomaly": "auroc",
}


def predicted_classes(task: str, outputs: np.ndarray) -> np.ndarray:
    """What two models must agree on: top-1 class, label set or level (scores as they are)."""
    outputs = np.asarray(outputs)
    if task == "multilabel":
        return outputs >= 0.5
    if task == "ordinal":
        return ordinal_levels(outputs)
    if task == "anomaly":
        return anomaly_scores(outputs)
    if task == "regression":
        return outputs
    return outputs.argmax(-1)

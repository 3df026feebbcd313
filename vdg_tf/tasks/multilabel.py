"""Multi-label classification: `labels` (a list; else `label`), one sigmoid per label."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tf_keras as keras

from vdg_tf.manifest import ClipRow
from vdg_tf.tasks.base import Task, lookup_table, top_labels
from vdg_tf.tasks.metrics import average_precision
from vdg_tf.tasks.registry import register_task


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


@register_task
class Multilabel(Task):
    """Multi-hot targets, binary cross-entropy; reports mAP, micro/macro-F1, subset accuracy."""

    name = "multilabel"
    key = "labels"
    primary = "map"
    min_labels = 2

    def labels(self, rows: list[ClipRow]) -> list[str]:
        return sorted({n for r in rows for n in self.names(r)})

    def names(self, row: ClipRow) -> list[str]:
        if row.labels:
            return list(row.labels)
        return [row.label] if row.label is not None else []

    def target_encoder(self, labels, training=False):
        table, n = lookup_table(labels), len(labels)

        def multi_hot(names, value):
            ids = table.lookup(names)
            hot = tf.one_hot(tf.boolean_mask(ids, ids >= 0), n, dtype=tf.float32)
            return tf.reduce_max(tf.concat([hot, tf.zeros([1, n])], 0), 0)

        return multi_hot

    def head(self, x, num_labels, name, regularizer=None):
        return keras.layers.Dense(num_labels, activation="sigmoid", name=name)(x)

    def loss(self, label_smoothing=0.0):
        return keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing)

    def metrics(self):
        return [keras.metrics.AUC(curve="PR", multi_label=True, name="map")]

    def report(self, y, outputs, labels):
        return multilabel_report(y, outputs, labels)

    def decisions(self, outputs):
        return np.asarray(outputs) >= 0.5

    def series(self, outputs, labels):
        outputs = np.asarray(outputs, float)
        return {name: outputs[:, j] for j, name in enumerate(labels)}

    def predictions(self, outputs, labels, top=3):
        outputs = np.asarray(outputs, float)
        return [
            {"labels": [labels[j] for j in np.flatnonzero(p >= 0.5)], "top": t}
            for p, t in zip(outputs, top_labels(outputs, labels, top), strict=True)
        ]

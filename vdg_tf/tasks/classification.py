"""Classification: one `label` per clip, a softmax over the classes, cross-entropy."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tf_keras as keras

from vdg_tf.manifest import ClipRow
from vdg_tf.tasks.base import Task, lookup_table, top_labels
from vdg_tf.tasks.metrics import classification_report
from vdg_tf.tasks.registry import register_task


def plot_report_confusion(report: dict, labels: list[str], path, title: str) -> str:
    """Draw the report's confusion matrix (classification-like reports have one)."""
    from vdg_tf.tasks.plots import plot_confusion  # matplotlib: only when drawing

    plot_confusion(report["confusion"], labels, path, title)
    return "confusion matrix"


def smoothed_sparse_ce(eps: float):
    """Sparse categorical cross-entropy with label smoothing `eps` (Keras' sparse loss has none)."""

    def loss(y_true, y_pred):
        n = tf.shape(y_pred)[-1]
        onehot = tf.one_hot(tf.cast(tf.reshape(y_true, [-1]), tf.int32), n, dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(onehot, y_pred, label_smoothing=eps)

    return loss


@register_task
class Classification(Task):
    """`label` -> class index; reports accuracy, macro-F1, per-class table and confusion."""

    name = "classification"
    key = "label"
    primary = "accuracy"
    min_labels = 2
    distills = True
    report_plot = "confusion.png"

    def labels(self, rows: list[ClipRow]) -> list[str]:
        return sorted({n for r in rows for n in self.names(r)})

    def names(self, row: ClipRow) -> list[str]:
        return [row.label] if row.label is not None else []

    def target_encoder(self, labels, training=False):
        table = lookup_table(labels)
        return lambda names, value: table.lookup(tf.concat([names, [""]], 0)[0])

    def keeps_record(self, target, names, training):
        return target >= 0

    def head(self, x, num_labels, name, regularizer=None):
        return keras.layers.Dense(num_labels, activation="softmax", name=name)(x)

    def loss(self, label_smoothing=0.0):
        if label_smoothing:
            return smoothed_sparse_ce(label_smoothing)
        return keras.losses.SparseCategoricalCrossentropy()

    def metrics(self):
        return ["accuracy"]

    def report(self, y, outputs, labels):
        return classification_report(y, outputs, labels)

    def plot_report(self, report, labels, path, title):
        return plot_report_confusion(report, labels, path, title)

    def decisions(self, outputs):
        return np.asarray(outputs).argmax(-1)

    def predictions(self, outputs, labels, top=3):
        return [{"top": t} for t in top_labels(outputs, labels, top)]

    def series(self, outputs, labels):
        outputs = np.asarray(outputs, float)
        return {name: outputs[:, j] for j, name in enumerate(labels)}

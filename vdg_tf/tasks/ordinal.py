"""Ordinal regression (sentiment classes): `target` rounded to ordered levels, CORAL thresholds."""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf
import tf_keras as keras

from vdg_tf.manifest import ClipRow
from vdg_tf.tasks.classification import plot_report_confusion
from vdg_tf.tasks.metrics import confusion_matrix, pearson
from vdg_tf.tasks.registry import register_task
from vdg_tf.tasks.regression import Regression


@keras.utils.register_keras_serializable(package="vdg_tf")
class OrdinalThresholds(keras.layers.Layer):
    """[B, 1] score -> [B, K-1] P(y > k) = sigmoid(score - t_k), thresholds kept ordered.

    The thresholds are a first value plus softplus steps, so P(y > k) falls with k for
    every input (rank-consistent, as in CORAL, Cao et al. 2020).
    """

    def __init__(self, levels: int, **kwargs):
        super().__init__(**kwargs)
        if levels < 2:
            raise ValueError(f"ordinal task: need at least 2 levels, got {levels}")
        self.levels = levels

    def build(self, input_shape):
        steps = self.levels - 1
        self.first = self.add_weight(
            "first", (1,), initializer=keras.initializers.Constant(-steps / 2)
        )
        self.steps = (
            self.add_weight("steps", (steps - 1,), initializer="zeros") if steps > 1 else None
        )

    def thresholds(self):
        if self.steps is None:
            return self.first
        return tf.concat([self.first, self.first + tf.cumsum(tf.nn.softplus(self.steps) + 0.3)], 0)

    def call(self, score):
        return tf.sigmoid(score - self.thresholds()[None, :])

    def get_config(self):
        return {**super().get_config(), "levels": self.levels}


def ordinal_loss(y_true, y_pred):
    """Binary cross-entropy of P(y > k) against the level's cumulative targets [1]*y + [0]*rest."""
    steps = tf.shape(y_pred)[-1]
    level = tf.cast(tf.reshape(y_true, [-1, 1]), tf.int32)
    cumulative = tf.cast(tf.range(steps)[None, :] < level, y_pred.dtype)
    return keras.losses.binary_crossentropy(cumulative[..., None], y_pred[..., None])


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


@register_task
class Ordinal(Regression):
    """Levels `round(target)` from the lowest to the highest seen in training; reports
    exact-level accuracy, MAE in levels, correlation and confusion."""

    name = "ordinal"
    only_series = "level"
    report_plot = "confusion.png"
    primary = "accuracy"
    higher_is_better = True
    min_labels = 2

    def labels(self, rows: list[ClipRow]) -> list[str]:
        levels = [round(r.target) for r in rows if r.target is not None and math.isfinite(r.target)]
        return [str(v) for v in range(min(levels), max(levels) + 1)] if levels else []

    def target_encoder(self, labels, training=False):
        low, n = (int(labels[0]) if labels else 0), len(labels)

        def level(names, value):
            i = tf.cast(tf.round(value), tf.int32) - low
            return tf.clip_by_value(i, 0, max(n - 1, 0))

        return level

    def head(self, x, num_labels, name, regularizer=None):
        score = keras.layers.Dense(1, use_bias=False, name=f"{name}_score")(x)
        return OrdinalThresholds(num_labels, name=name)(score)

    def loss(self, label_smoothing=0.0):
        return ordinal_loss

    def metrics(self):
        return []

    def monitor(self, validation):
        # the level accuracy of a small split moves in coarse steps: the loss ranks epochs
        return ("val_fused_loss" if validation else "fused_loss"), "min"

    def report(self, y, outputs, labels):
        return ordinal_report(y, outputs, labels)

    def plot_report(self, report, labels, path, title):
        return plot_report_confusion(report, labels, path, title)

    def decisions(self, outputs):
        return ordinal_levels(outputs)

    def series(self, outputs, labels):
        return {"level": np.array([float(labels[int(k)]) for k in ordinal_levels(outputs)])}

    def predictions(self, outputs, labels, top=3):
        return [{"level": labels[int(k)]} for k in ordinal_levels(outputs)]

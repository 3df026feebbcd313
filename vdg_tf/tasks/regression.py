"""Regression (e.g. sentiment intensity in [-3, 3]): `target`, one linear output, Huber loss."""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf
import tf_keras as keras

from vdg_tf.tasks.base import Task
from vdg_tf.tasks.metrics import pearson
from vdg_tf.tasks.registry import register_task


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


@register_task
class Regression(Task):
    """A value per clip; reports MAE (lower is better), RMSE, correlation, sign accuracy."""

    only_series = "value"
    name = "regression"
    key = "target"
    primary = "mae"
    higher_is_better = False

    def problem(self, row, labels):
        if row.target is None or not math.isfinite(row.target):
            return f"{row.where}: missing key 'target' (a number) for task {self.name}"
        return None

    def target_encoder(self, labels, training=False):
        return lambda names, value: tf.reshape(value, [1])

    def head(self, x, num_labels, name, regularizer=None):
        return keras.layers.Dense(1, name=name)(x)

    def loss(self, label_smoothing=0.0):
        return keras.losses.Huber(delta=1.0)

    def metrics(self):
        return [keras.metrics.MeanAbsoluteError(name="mae")]

    def report(self, y, outputs, labels):
        return regression_report(y, outputs)

    def series(self, outputs, labels):
        return {"value": np.asarray(outputs, float).reshape(-1)}

    def predictions(self, outputs, labels, top=3):
        return [{"value": round(float(v), 6)} for v in np.asarray(outputs, float).reshape(-1)]

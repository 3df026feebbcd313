"""Evaluate a Keras model on a dataset: labels and fused probabilities, then metrics."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tf_keras as keras

from vdg_tf.training.metrics import classification_report


def fused_probs(outputs) -> np.ndarray:
    """The `fused` output of a training model, or the single output of an inference model."""
    if isinstance(outputs, dict):
        return np.asarray(outputs["fused"])
    return np.asarray(outputs)


def predict_dataset(model: keras.Model, ds: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """(labels, probabilities) over every batch of `ds`."""
    ys, ps = [], []
    for x, y in ds:
        ps.append(fused_probs(model(x, training=False)))
        ys.append(np.asarray(y))
    if not ys:
        return np.zeros(0, int), np.zeros((0, 0), np.float32)
    return np.concatenate(ys), np.concatenate(ps)


def evaluate_model(model: keras.Model, ds: tf.data.Dataset, labels: list[str]) -> dict:
    """accuracy, macro-F1, per-class table and confusion matrix of `model` on `ds`."""
    y, p = predict_dataset(model, ds)
    return classification_report(y, p, labels)

"""Evaluate a Keras model on a dataset: labels and fused probabilities, then metrics."""

from __future__ import annotations

from collections.abc import Callable, Sequence

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


def mask_modality(ds: tf.data.Dataset, modality: str) -> tf.data.Dataset:
    """The same batches with `modality` zeroed and its mask set to 0 (as if it were missing)."""

    def drop(x, y):
        x = dict(x)
        x[modality] = tf.zeros_like(x[modality])
        x[f"{modality}_mask"] = tf.zeros_like(x[f"{modality}_mask"])
        return x, y

    return ds.map(drop)


def modality_ablation(
    predict: Callable[[tf.data.Dataset], tuple[np.ndarray, np.ndarray]],
    ds: tf.data.Dataset,
    modalities: Sequence[str],
) -> dict[str, float]:
    """Accuracy with every modality present (`all`) and with each one masked out in turn.

    `predict` maps a dataset to (labels, probabilities): a Keras model or a .tflite runner.
    """
    y, p = predict(ds)
    out = {"all": float(np.mean(p.argmax(-1) == y)) if len(y) else 0.0}
    for m in modalities:
        y, p = predict(mask_modality(ds, m))
        out[f"without_{m}"] = float(np.mean(p.argmax(-1) == y)) if len(y) else 0.0
    return out

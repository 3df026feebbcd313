"""Evaluate a Keras model on a dataset: targets and fused outputs, then the task's metrics."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf
import tf_keras as keras

from vdg_tf.tasks import Task


def fused_probs(outputs) -> np.ndarray:
    """The `fused` output of a training model, or the single output of an inference model;
    a model with named outputs and no `fused` (detection) gives them joined on the last
    axis in name order (`box_encodings` then `class_scores`)."""
    if isinstance(outputs, dict):
        if "fused" not in outputs:
            return np.concatenate([np.asarray(outputs[k]) for k in sorted(outputs)], axis=-1)
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


def evaluate_model(
    model: keras.Model,
    ds: tf.data.Dataset,
    labels: list[str],
    task: Task,
    validation: dict | None = None,
) -> dict:
    """The task's metrics of `model` on `ds` (accuracy, macro-F1, confusion; mAP; MAE; AUROC).

    `validation`: the same model's report on validation data; whatever the report would
    choose on `ds` itself (anomaly's threshold) is taken from it instead.
    """
    y, p = predict_dataset(model, ds)
    if validation is not None:
        return task.held_out_report(y, p, labels, validation)
    return task.report(y, p, labels)


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
    task: Task,
    labels: Sequence[str] = (),
) -> dict[str, float]:
    """The task's primary metric (accuracy, mAP, MAE, AUROC) with every modality present
    (`all`) and with each one masked out in turn.

    `predict` maps a dataset to (targets, outputs): a Keras model or a .tflite runner.
    """
    key = task.primary

    def score(d):
        y, p = predict(d)
        return float(task.report(y, p, list(labels))[key]) if len(y) else 0.0

    out = {"metric": key, "all": score(ds)}
    for m in modalities:
        out[f"without_{m}"] = score(mask_modality(ds, m))
    return out

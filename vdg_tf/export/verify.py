"""Verify exports in LiteRT against the Keras model: calibration samples, LiteRT outputs
over a dataset, and how far two sets of outputs agree."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tensorflow as tf

from vdg_tf._progress import bar
from vdg_tf.export.litert import LiteRTModel
from vdg_tf.tasks import Task


def representative_inputs(ds: tf.data.Dataset, count: int = 64) -> Iterator[dict[str, np.ndarray]]:
    """Up to `count` single-sample input dicts (batch axis 1) from a batched dataset, with
    a bar on stderr (the converter calibrates on them one by one)."""
    yield from bar(_samples(ds, count), "calibrating", total=count, unit="sample")


def _samples(ds: tf.data.Dataset, count: int) -> Iterator[dict[str, np.ndarray]]:
    seen = 0
    for x, _ in ds:
        n = len(next(iter(x.values())))
        for i in range(n):
            if seen >= count:
                return
            yield {k: v[i : i + 1].numpy() for k, v in x.items()}
            seen += 1


def predict_tflite(path: str | Path, ds: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """(labels, probabilities) of a `.tflite` model over every sample of `ds`."""
    model = LiteRTModel(path)
    ys, ps = [], []
    for x, y in bar(ds, f"LiteRT pass over {Path(path).name}", unit="batch"):
        ps.append(
            model.predict_batch({k: v.numpy() for k, v in x.items() if k in model.input_details})
        )
        ys.append(y.numpy())
    if not ys:
        return np.zeros(0, int), np.zeros((0, 0), np.float32)
    return np.concatenate(ys), np.concatenate(ps)


def agreement(reference: np.ndarray, other: np.ndarray, task: Task) -> dict:
    """Max |difference| of outputs between two prediction sets and, for tasks that predict
    something discrete (top-1, label set, level), the fraction of samples where they agree."""
    if len(reference) == 0:
        return {"top1_agreement": 0.0, "max_abs_diff": 0.0}
    out = {"max_abs_diff": float(np.max(np.abs(reference - other)))}
    a, b = task.decisions(reference), task.decisions(other)
    if a is not None:
        same = (np.asarray(a) == np.asarray(b)).reshape(len(a), -1).all(-1)
        out["top1_agreement"] = float(np.mean(same))
    return out

"""Anomaly detection: trained on normal clips only (`label` in `data.normal_labels`).

Several normal labels: a softmax over them, anomaly score 1 - max p. One normal label:
Deep SVDD (Ruff et al. 2018), a bias-free embedding and its squared distance to a fixed
centre set from the untrained network. Evaluation targets are 1.0 for an anomaly.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tf_keras as keras

from vdg_tf.manifest import ClipRow
from vdg_tf.tasks.classification import Classification
from vdg_tf.tasks.metrics import auroc, average_precision, best_threshold, f1_score
from vdg_tf.tasks.registry import register_task


@keras.utils.register_keras_serializable(package="vdg_tf")
class SVDDScore(keras.layers.Layer):
    """[B, D] embedding -> [B, 1] mean squared distance to a fixed centre (the anomaly score)."""

    def build(self, input_shape):
        self.centre = self.add_weight(
            "centre", (int(input_shape[-1]),), initializer="zeros", trainable=False
        )

    def call(self, z):
        return tf.reduce_mean(tf.square(z - self.centre), axis=-1, keepdims=True)

    def get_config(self):
        return super().get_config()


def svdd_loss(y_true, y_pred):
    """Deep SVDD: the anomaly score itself, minimised on normal clips only; `y_true` unused."""
    return tf.reduce_mean(y_pred, axis=-1)


def set_svdd_centres(model: keras.Model, ds: tf.data.Dataset, batches: int = 8) -> None:
    """Set every SVDDScore centre to the mean embedding of the (untrained) model on `ds`.

    Coordinates near zero are pushed to +-0.1, as in Deep SVDD: a centre at zero is one a
    bias-free network reaches trivially.
    """
    layers = [layer for layer in model.layers if isinstance(layer, SVDDScore)]
    if not layers:
        return
    probe = keras.Model(model.inputs, [layer.input for layer in layers])
    sums = [0.0] * len(layers)
    n = 0
    for x, _ in ds.take(batches):
        outs = probe(x, training=False)
        outs = outs if isinstance(outs, list) else [outs]
        sums = [s + np.asarray(o).sum(0) for s, o in zip(sums, outs, strict=True)]
        n += int(outs[0].shape[0])
    for layer, s in zip(layers, sums, strict=True):
        c = s / max(n, 1)
        c = np.where(np.abs(c) < 0.1, np.where(c < 0, -0.1, 0.1), c)
        layer.centre.assign(c.astype(np.float32))


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
        "f1": f1_score(y, pred),
        "accuracy": float((y == pred).mean()) if len(y) else 0.0,
    }


@register_task
class Anomaly(Classification):
    """Reports AUROC, AP and the F1-best threshold; predictions are anomaly scores."""

    name = "anomaly"
    primary = "auroc"
    min_labels = 0
    validates = False  # the evaluation split holds anomalies: its loss ranks nothing

    @property
    def distills(self) -> bool:
        return not self.one_class

    @property
    def one_class(self) -> bool:
        """One normal label: Deep SVDD instead of a softmax over normal classes."""
        return len(self.normal_labels) < 2

    def labels(self, rows: list[ClipRow]) -> list[str]:
        return list(self.normal_labels)

    def problem(self, row, labels):
        return None if self.names(row) else f"{row.where}: missing key '{self.key}'"

    def trains_on(self, row: ClipRow) -> bool:
        return row.label in self.normal_labels

    def target_encoder(self, labels, training=False):
        if training and not self.one_class:
            return super().target_encoder(labels, training)
        normal = tf.constant(list(self.normal_labels) or [""])

        def anomalous(names, value):
            hit = tf.reduce_any(tf.equal(tf.reshape(names[:1], [-1, 1]), normal))
            return 1.0 - tf.cast(hit, tf.float32)

        return anomalous

    def keeps_record(self, target, names, training):
        if not training:
            return tf.constant(True)
        normal = tf.constant(list(self.normal_labels) or [""])
        return tf.reduce_any(tf.equal(names[:1, None], normal))

    def head(self, x, num_labels, name, regularizer=None):
        if not self.one_class:
            return super().head(x, num_labels, name, regularizer)
        z = keras.layers.Dense(
            int(x.shape[-1]), use_bias=False, kernel_regularizer=regularizer, name=f"{name}_embed"
        )(x)
        return SVDDScore(name=name)(z)

    def loss(self, label_smoothing=0.0):
        return svdd_loss if self.one_class else super().loss(label_smoothing)

    def metrics(self):
        return [] if self.one_class else super().metrics()

    def monitor(self, validation):
        return "fused_loss", "min"

    def prepare(self, model, ds):
        set_svdd_centres(model, ds)

    def report(self, y, outputs, labels):
        return anomaly_report(y, outputs) | {"threshold_chosen_on": "this split"}

    def held_out_report(self, y, outputs, labels, validation):
        # the F1-best threshold of validation, applied here: one picked on the test split
        # itself would flatter precision, recall and F1
        return anomaly_report(y, outputs, validation["threshold"]) | {
            "threshold_chosen_on": "validation"
        }

    def decisions(self, outputs):
        return None

    def series(self, outputs, labels):
        return {"anomaly": anomaly_scores(outputs)}

    def predictions(self, outputs, labels, top=3):
        return [{"anomaly_score": round(float(s), 6)} for s in anomaly_scores(outputs)]

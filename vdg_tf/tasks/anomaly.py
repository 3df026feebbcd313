"""Anomaly detection: trained on normal clips only (`label` in `data.normal_labels`).

Several normal labels: a softmax over them, anomaly score 1 - max p. One normal label:
a sigmoid head trained to tell normal clips from copies with one modality tampered with
(`tasks/tamper.py`), anomaly score its probability of "tampered". Evaluation targets are
1.0 for an anomaly.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tf_keras as keras

from vdg_tf.manifest import ClipRow
from vdg_tf.tasks.classification import Classification
from vdg_tf.tasks.metrics import auroc, average_precision, best_threshold, f1_score
from vdg_tf.tasks.registry import register_task
from vdg_tf.tasks.tamper import tamper_batch


def anomaly_scores(outputs: np.ndarray) -> np.ndarray:
    """Anomaly score per clip: 1 - max probability of a normal-class head, or the one-class
    head's probability of "tampered"."""
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
    only_series = "anomaly"
    report_plot = None  # no confusion matrix: precision and recall at the threshold

    def __init__(self, normal_labels: tuple[str, ...] = ("normal",)):
        self.normal_labels = tuple(normal_labels)

    @classmethod
    def from_config(cls, data):
        return cls(normal_labels=tuple(data.normal_labels))

    @property
    def distills(self) -> bool:
        return not self.one_class

    @property
    def one_class(self) -> bool:
        """One normal label: a tampered-or-not head instead of a softmax over normal classes."""
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
        return keras.layers.Dense(
            1, activation="sigmoid", kernel_regularizer=regularizer, name=name, dtype="float32"
        )(x)

    def loss(self, label_smoothing=0.0):
        if self.one_class:
            return keras.losses.BinaryCrossentropy()
        return super().loss(label_smoothing)

    def metrics(self):
        if self.one_class:
            return [keras.metrics.AUC(name="auroc")]
        return super().metrics()

    def fit_pairs(self, ds, output_names, vocab_size=None, seed=0):
        if not self.one_class:
            return super().fit_pairs(ds, output_names, vocab_size, seed)
        modalities = [n.removesuffix("_head") for n in output_names if n.endswith("_head")]
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)

        def tampered(pair, s):
            x, _ = pair
            x, hits = tamper_batch(x, modalities, s, vocab_size)
            any_hit = tf.reduce_max(tf.concat(list(hits.values()), axis=1), axis=1, keepdims=True)
            return x, {"fused": any_hit} | {f"{m}_head": hits[m] for m in modalities}

        return tf.data.Dataset.zip((ds, seeds)).map(tampered, num_parallel_calls=tf.data.AUTOTUNE)

    def monitor(self, validation):
        return "fused_loss", "min"

    def report(self, y, outputs, labels):
        return anomaly_report(y, outputs) | {"threshold_chosen_on": "this split"}

    def held_out_report(self, y, outputs, labels, validation):
        # the F1-best threshold of validation, applied here: one picked on the test split
        # itself would flatter precision, recall and F1
        return anomaly_report(y, outputs, validation["threshold"]) | {
            "threshold_chosen_on": "validation"
        }

    def chosen_on_validation(self, validation):
        # the model ships with the decision it was reported at
        return {"threshold": validation["threshold"], "threshold_chosen_on": "validation"}

    def decision_threshold(self, info):
        return info.get("threshold")

    def figures(self, report):
        return {k: v for k, v in super().figures(report).items() if k != "threshold"}

    def plot_report(self, report, labels, path, title):
        return None

    def decisions(self, outputs):
        return None

    def series(self, outputs, labels):
        return {"anomaly": anomaly_scores(outputs)}

    def predictions(self, outputs, labels, top=3):
        return [{"anomaly_score": round(float(s), 6)} for s in anomaly_scores(outputs)]

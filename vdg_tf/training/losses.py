"""Loss and training metrics per task, for the fused head and every auxiliary head alike."""

from __future__ import annotations

import tensorflow as tf
import tf_keras as keras


def ordinal_loss(y_true, y_pred):
    """Binary cross-entropy of P(y > k) against the level's cumulative targets [1]*y + [0]*rest."""
    steps = tf.shape(y_pred)[-1]
    level = tf.cast(tf.reshape(y_true, [-1, 1]), tf.int32)
    cumulative = tf.cast(tf.range(steps)[None, :] < level, y_pred.dtype)
    return keras.losses.binary_crossentropy(cumulative[..., None], y_pred[..., None])


def svdd_loss(y_true, y_pred):
    """Deep SVDD: the anomaly score itself (mean squared distance to the centre), minimised
    on normal clips only; `y_true` is unused."""
    return tf.reduce_mean(y_pred, axis=-1)


def task_loss(task: str, label_smoothing: float = 0.0, one_class: bool = False):
    """The per-head loss of `task` (`one_class`: an anomaly model with one normal label)."""
    if task in ("classification", "vqa") or (task == "anomaly" and not one_class):
        if label_smoothing:
            return _smoothed_sparse_ce(label_smoothing)
        return keras.losses.SparseCategoricalCrossentropy()
    if task == "multilabel":
        return keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing)
    if task == "regression":
        return keras.losses.Huber(delta=1.0)
    if task == "ordinal":
        return ordinal_loss
    if task == "anomaly":
        return svdd_loss
    raise ValueError(f"data.task: unknown '{task}'")


def _smoothed_sparse_ce(eps: float):
    def loss(y_true, y_pred):
        n = tf.shape(y_pred)[-1]
        onehot = tf.one_hot(tf.cast(tf.reshape(y_true, [-1]), tf.int32), n, dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(onehot, y_pred, label_smoothing=eps)

    return loss


def task_metrics(task: str, one_class: bool = False) -> list:
    """Metrics Keras tracks on the fused head while training (`fused_<name>` in logs)."""
    if task in ("classification", "vqa") or (task == "anomaly" and not one_class):
        return ["accuracy"]
    if task == "multilabel":
        return [keras.metrics.AUC(curve="PR", multi_label=True, name="map")]
    if task == "regression":
        return [keras.metrics.MeanAbsoluteError(name="mae")]
    return []


def monitor(task: str, validation: bool) -> tuple[str, str]:
    """(log key, 'max' or 'min') the best checkpoint follows for `task`.

    Anomaly validation holds anomalies too, so its loss says nothing: training loss.
    """
    key, mode = {
        "classification": ("fused_accuracy", "max"),
        "vqa": ("fused_accuracy", "max"),
        "multilabel": ("fused_map", "max"),
        "regression": ("fused_mae", "min"),
        "ordinal": ("fused_loss", "min"),
        "anomaly": ("fused_loss", "min"),
    }[task]
    return (f"val_{key}" if validation and task != "anomaly" else key), mode

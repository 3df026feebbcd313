"""Task heads: what the fused (and each auxiliary) feature vector is turned into.

classification, vqa  softmax over the classes (answers)
multilabel           one sigmoid per label
regression           one linear value
ordinal              CORAL: one shared score and K-1 ordered thresholds -> P(y > k)
anomaly              Deep SVDD: a bias-free embedding and its squared distance to a
                     fixed centre (set from the untrained network, `set_svdd_centres`)
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tf_keras as keras

from vdg_tf.models.encoders.blocks import regularizer


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


@keras.utils.register_keras_serializable(package="vdg_tf")
class SVDDScore(keras.layers.Layer):
    """[B, D] embedding -> [B, 1] mean squared distance to a fixed centre (the anomaly score)."""

    def build(self, input_shape):
        self.centre = self.add_weight(
            "centre", (int(input_shape[-1]),), initializer="zeros", trainable=False
        )

    def call(self, z):
        return tf.reduce_mean(tf.square(z - self.centre), axis=-1, keepdims=True)


def task_head(x, task: str, num_labels: int, name: str, l2: float = 0.0):
    """The output tensor named `name` for `task` on features `x`."""
    if task in ("classification", "vqa") or (task == "anomaly" and num_labels >= 2):
        return keras.layers.Dense(num_labels, activation="softmax", name=name)(x)
    if task == "multilabel":
        return keras.layers.Dense(num_labels, activation="sigmoid", name=name)(x)
    if task == "regression":
        return keras.layers.Dense(1, name=name)(x)
    if task == "ordinal":
        score = keras.layers.Dense(1, use_bias=False, name=f"{name}_score")(x)
        return OrdinalThresholds(num_labels, name=name)(score)
    if task == "anomaly":
        z = keras.layers.Dense(
            int(x.shape[-1]),
            use_bias=False,
            kernel_regularizer=regularizer(l2),
            name=f"{name}_embed",
        )(x)
        return SVDDScore(name=name)(z)
    raise ValueError(f"data.task: unknown '{task}'")


def set_svdd_centres(model: keras.Model, ds: tf.data.Dataset, batches: int = 8) -> None:
    """Set every SVDDScore centre to the mean embedding of the (untrained) model on `ds`.

    Coordinates near zero are pushed to +-0.1, as in Deep SVDD (Ruff et al. 2018): a
    centre at zero is one a bias-free network reaches trivially.
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

"""Sequence layers for the float-only temporal and text options: positions, masks, attention.

These run in float (tfmot has no 8-bit config for MultiHeadAttention or LayerNorm); QAT
annotates the Dense layers around them and lists the rest as left float.
"""

from __future__ import annotations

import tensorflow as tf
import tf_keras as keras

from vdg_tf.models.encoders.blocks import regularizer


@keras.utils.register_keras_serializable(package="vdg_tf")
class PositionEmbedding(keras.layers.Layer):
    """Adds a learned vector per position to [B, L, D]."""

    def __init__(self, length: int, **kwargs):
        super().__init__(**kwargs)
        self.length = length

    def build(self, input_shape):
        self.table = self.add_weight(
            "positions", (self.length, int(input_shape[-1])), initializer="glorot_uniform"
        )

    def call(self, x):
        return x + tf.cast(self.table, x.dtype)[None]

    def get_config(self):
        return {**super().get_config(), "length": self.length}


@keras.utils.register_keras_serializable(package="vdg_tf")
class TokenMask(keras.layers.Layer):
    """int ids [B, L] -> float [B, L], 1 where a token is not padding (id 0)."""

    def call(self, ids):
        return tf.cast(tf.not_equal(ids, 0), self.compute_dtype)


@keras.utils.register_keras_serializable(package="vdg_tf")
class PaddingMask(keras.layers.Layer):
    """int ids [B, L] -> bool [B, L], True where a token is not padding (id 0): the `mask`
    a recurrent layer takes, so padded positions leave its state unchanged."""

    def call(self, ids):
        return tf.not_equal(ids, 0)

    def get_config(self):
        return super().get_config()


@keras.utils.register_keras_serializable(package="vdg_tf")
class AttentionMask(keras.layers.Layer):
    """[B, L] keep-mask -> [B, L, L] attention mask (queries attend to kept keys only)."""

    def call(self, keep):
        keep = tf.cast(keep, tf.bool)
        return (
            tf.logical_and(keep[:, :, None], keep[:, None, :])
            | tf.eye(tf.shape(keep)[1], dtype=tf.bool)[None]
        )


@keras.utils.register_keras_serializable(package="vdg_tf")
class TokenMean(keras.layers.Layer):
    """([B, L, D], [B, L] keep-mask) -> [B, D] mean over kept positions (0 if none)."""

    def call(self, inputs):
        x, keep = inputs
        keep = tf.cast(keep, x.dtype)[..., None]
        return tf.reduce_sum(x * keep, 1) / tf.maximum(tf.reduce_sum(keep, 1), 1.0)


def attention_block(x, heads: int, ff_mult: int = 2, mask=None, l2: float = 0.0, name: str = ""):
    """Post-norm Transformer encoder block: self-attention + residual, FFN + residual."""
    dim = int(x.shape[-1])
    h = keras.layers.MultiHeadAttention(heads, max(dim // heads, 1), name=f"{name}_attn")(
        x, x, attention_mask=mask
    )
    x = keras.layers.LayerNormalization(name=f"{name}_ln1")(
        keras.layers.Add(name=f"{name}_res1")([x, h])
    )
    f = keras.layers.Dense(
        dim * ff_mult, activation="relu", kernel_regularizer=regularizer(l2), name=f"{name}_ff1"
    )(x)
    f = keras.layers.Dense(dim, kernel_regularizer=regularizer(l2), name=f"{name}_ff2")(f)
    return keras.layers.LayerNormalization(name=f"{name}_ln2")(
        keras.layers.Add(name=f"{name}_res2")([x, f])
    )

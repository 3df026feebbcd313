"""Layers over padded token ids (id 0 is padding): which positions hold a token, the masks
attention and recurrent layers take from that, and the mean over the kept positions.

They run in float (tfmot has no 8-bit config for them, nor for the attention and
recurrent layers they feed); QAT annotates the Dense layers around them and lists the rest
as left float.
"""

from __future__ import annotations

import tensorflow as tf
import tf_keras as keras


@keras.saving.register_keras_serializable(package="vdg_tf")
class TokenMask(keras.layers.Layer):
    """int ids [B, L] -> float [B, L], 1 where a token is not padding (id 0)."""

    def call(self, ids):
        return tf.cast(tf.not_equal(ids, 0), self.compute_dtype)

    def get_config(self):
        return super().get_config()


@keras.saving.register_keras_serializable(package="vdg_tf")
class PaddingMask(keras.layers.Layer):
    """int ids [B, L] -> bool [B, L], True where a token is not padding (id 0): the `mask`
    a recurrent layer takes, so padded positions leave its state unchanged."""

    def call(self, ids):
        return tf.not_equal(ids, 0)

    def get_config(self):
        return super().get_config()


@keras.saving.register_keras_serializable(package="vdg_tf")
class AttentionMask(keras.layers.Layer):
    """[B, L] keep-mask -> [B, L, L] attention mask (queries attend to kept keys only)."""

    def call(self, keep):
        keep = tf.cast(keep, tf.bool)
        return (
            tf.logical_and(keep[:, :, None], keep[:, None, :])
            | tf.eye(tf.shape(keep)[1], dtype=tf.bool)[None]
        )

    def get_config(self):
        return super().get_config()


@keras.saving.register_keras_serializable(package="vdg_tf")
class TokenMean(keras.layers.Layer):
    """([B, L, D], [B, L] keep-mask) -> [B, D] mean over kept positions (0 if none)."""

    def call(self, inputs):
        x, keep = inputs
        keep = tf.cast(keep, x.dtype)[..., None]
        return tf.reduce_sum(x * keep, 1) / tf.maximum(tf.reduce_sum(keep, 1), 1.0)

    def get_config(self):
        return super().get_config()

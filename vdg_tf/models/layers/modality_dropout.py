"""Modality dropout: in training, hide whole modalities at random so the fused model
learns to cope when one is missing at inference (a clip without sound, an empty caption).
"""

from __future__ import annotations

import tensorflow as tf
import tf_keras as keras


@keras.saving.register_keras_serializable(package="vdg_tf")
class ModalityDropout(keras.layers.Layer):
    """Masks [B, 1] per modality -> the same masks with each present one dropped at `rate`.

    At least one present modality survives per sample; at inference it is the identity.
    """

    def __init__(self, rate: float = 0.0, seed: int | None = None, **kw):
        super().__init__(**kw)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"model.modality_dropout: {rate} must be in [0, 1)")
        self.rate, self.seed = rate, seed

    def call(self, masks, training=None):
        if not training or self.rate == 0.0:
            return list(masks)
        present = tf.concat(masks, axis=-1)  # [B, M]
        draw = tf.random.uniform(tf.shape(present), seed=self.seed)
        kept = present * tf.cast(draw >= self.rate, present.dtype)
        # a sample that lost every modality it had keeps one of them, chosen at random
        one = tf.one_hot(tf.argmax(draw * present, axis=-1), tf.shape(present)[-1]) * present
        none_left = tf.reduce_sum(kept, axis=-1, keepdims=True) == 0
        kept = tf.where(none_left, one, kept)
        return tf.split(kept, len(masks), axis=-1)

    def compute_output_shape(self, input_shape):
        return list(input_shape)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}

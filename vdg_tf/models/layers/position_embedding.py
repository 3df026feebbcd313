"""A learned vector per position, added to a sequence: where a frame or token sits, for the
attention encoders (which otherwise see a set, not a sequence)."""

from __future__ import annotations

import tensorflow as tf
import tf_keras as keras


@keras.saving.register_keras_serializable(package="vdg_tf")
class PositionEmbedding(keras.layers.Layer):
    """Adds a learned vector per position to [B, L, D].

    Args:
        length: L, the number of positions (frames or tokens).
    """

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

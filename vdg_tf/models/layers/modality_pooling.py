"""Pool per-modality features over the modalities present: the masked mean and weighted sum
the `parallel`, `hybrid`, `gated` and `attention` fusions end in (`vdg_tf/models/fusion.py`).

A missing modality (mask 0) takes no share: the weights are renormalised over the others,
so a clip without sound is fused from its frames and text alone. These layers stay float
under QAT (listed in its report); the Dense projections around them are int8.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf
import tf_keras as keras


@keras.saving.register_keras_serializable(package="vdg_tf")
class MaskedMean(keras.layers.Layer):
    """sum / max(count, 1): the mean over the modalities that are present."""

    def call(self, inputs):
        total, count = inputs
        return total / tf.maximum(count, 1.0)

    def get_config(self):
        return super().get_config()


@keras.saving.register_keras_serializable(package="vdg_tf")
class MaskedWeightedSum(keras.layers.Layer):
    """sum_m w_m x_m over present modalities, weights renormalised to sum to 1.

    Inputs: `[features [B, M, D], masks [B, M]]`, plus `scores [B, M]` when the weights
    are per sample. Without scores the weights are `fixed` (given) or learned logits.
    """

    def __init__(self, fixed: Sequence[float] | None = None, per_sample: bool = False, **kw):
        super().__init__(**kw)
        self.fixed = list(fixed) if fixed is not None else None
        self.per_sample = per_sample

    def build(self, input_shape):
        m = int(input_shape[0][1])
        if self.fixed is not None and len(self.fixed) != m:
            raise ValueError(f"model.fusion_weights: {len(self.fixed)} weights for {m} modalities")
        if self.fixed is None and not self.per_sample:
            self.logits = self.add_weight("logits", shape=(m,), initializer="zeros")
        super().build(input_shape)

    def call(self, inputs):
        feats, masks = inputs[0], inputs[1]
        if self.per_sample:
            scores = inputs[2]
            w = tf.exp(scores - tf.reduce_max(scores, axis=-1, keepdims=True))
        elif self.fixed is not None:
            w = tf.constant(self.fixed, tf.float32)[None, :]
        else:
            w = tf.exp(self.logits - tf.reduce_max(self.logits))[None, :]
        w = w * masks
        w = w / tf.maximum(tf.reduce_sum(w, axis=-1, keepdims=True), 1e-6)
        return tf.reduce_sum(feats * w[..., None], axis=1)

    def get_config(self):
        return {**super().get_config(), "fixed": self.fixed, "per_sample": self.per_sample}

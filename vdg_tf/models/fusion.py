"""Fusion of per-modality features [B, D_m] into one vector, chosen by name in `FUSIONS`.

Features arrive already multiplied by their modality mask, so a missing modality
contributes zeros to `serial` and is left out of the `parallel` mean.
"""

from __future__ import annotations

from collections.abc import Callable

import tf_keras as keras

from vdg_tf.models.encoders.blocks import regularizer


def serial_fusion(features: dict, masks: dict, dim: int, l2: float = 0.0):
    """Concatenate the features, then a Dense layer mixes them."""
    x = keras.layers.Concatenate(name="fusion_concat")(list(features.values()))
    # ReLU inside the Dense: see encoders/text.py on tfmot and separate ReLU layers
    return keras.layers.Dense(
        dim, activation="relu", kernel_regularizer=regularizer(l2), name="fusion_dense"
    )(x)


def parallel_fusion(features: dict, masks: dict, dim: int, l2: float = 0.0):
    """Project each modality to `dim`, then the mean over present modalities."""
    projected = [
        keras.layers.Dense(dim, kernel_regularizer=regularizer(l2), name=f"fusion_proj_{m}")(f)
        for m, f in features.items()
    ]
    projected = [
        keras.layers.Multiply(name=f"fusion_mask_{m}")([p, masks[m]])
        for m, p in zip(features, projected, strict=True)
    ]
    total = keras.layers.Add(name="fusion_sum")(projected) if len(projected) > 1 else projected[0]
    count = (
        keras.layers.Add(name="fusion_count")(list(masks.values()))
        if len(masks) > 1
        else next(iter(masks.values()))
    )
    x = MaskedMean(name="fusion_mean")([total, count])
    return keras.layers.ReLU(name="fusion_relu")(x)


@keras.utils.register_keras_serializable(package="vdg_tf")
class MaskedMean(keras.layers.Layer):
    """sum / max(count, 1): the mean over the modalities that are present."""

    def call(self, inputs):
        import tensorflow as tf

        total, count = inputs
        return total / tf.maximum(count, 1.0)

    def get_config(self):
        return super().get_config()


FUSIONS: dict[str, Callable] = {"serial": serial_fusion, "parallel": parallel_fusion}


def get_fusion(name: str) -> Callable:
    """The fusion builder called `name`; an unknown name lists the known ones."""
    if name not in FUSIONS:
        raise ValueError(f"model.fusion: unknown '{name}' (known: {', '.join(FUSIONS)})")
    return FUSIONS[name]

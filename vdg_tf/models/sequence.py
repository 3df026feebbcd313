"""The Transformer encoder block of the float-only temporal and text options.

It runs in float (tfmot has no 8-bit config for MultiHeadAttention or LayerNorm); QAT
annotates its Dense layers and lists the rest as left float.
"""

from __future__ import annotations

import tf_keras as keras

from vdg_tf.models.encoders.blocks import regularizer


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

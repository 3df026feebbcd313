"""Text encoder: token embedding, then (1, k) Conv2D n-gram detectors and a max over positions.

A (1, k) Conv2D over [1, L, E] does what Conv1D would, but stays in tfmot's QAT set.
The Embedding stays float under QAT (tfmot cannot annotate it on int ids). ReLU is the
conv's own activation: tfmot's transform for a separate ReLU layer after a biased conv
drops the conv's weight quantizer (and with it PQAT's sparsity mask).
"""

from __future__ import annotations

import tf_keras as keras

from vdg_tf.models.encoders.blocks import regularizer


def text_encoder(
    inp, max_tokens: int, vocab_size: int, embed_dim: int = 32, out_dim: int = 64, l2: float = 0.0
):
    """[B, L] int ids -> [B, out_dim]."""
    x = keras.layers.Embedding(vocab_size, embed_dim, name="text_embed")(inp)
    x = keras.layers.Reshape((1, max_tokens, embed_dim), name="text_rows")(x)
    for i in (1, 2):
        x = keras.layers.Conv2D(
            out_dim,
            (1, 3),
            padding="same",
            activation="relu",
            kernel_regularizer=regularizer(l2),
            name=f"text_conv{i}",
        )(x)
    return keras.layers.GlobalMaxPooling2D(name="text_pool")(x)

"""Text encoders: token embedding, then (1, k) Conv2D n-gram detectors and a max over
positions (conv, int8-friendly), a small Transformer (transformer, float attention), or
a recurrent layer over the tokens (gru, lstm: float under QAT, listed in its report, since
tfmot's 8-bit scheme refuses recurrent layers; the TFLite converter quantizes what it can).

A (1, k) Conv2D over [1, L, E] does what Conv1D would, but stays in tfmot's QAT set.
The Embedding stays float under QAT (tfmot cannot annotate it on int ids). ReLU is the
conv's own activation: tfmot's transform for a separate ReLU layer after a biased conv
drops the conv's weight quantizer (and with it PQAT's sparsity mask).
"""

from __future__ import annotations

import tf_keras as keras

from vdg_tf.models.encoders.blocks import regularizer
from vdg_tf.models.layers import AttentionMask, PaddingMask, PositionEmbedding, TokenMask, TokenMean
from vdg_tf.models.sequence import attention_block

TEXT_ENCODERS = ("conv", "transformer", "gru", "lstm")


def text_encoder(
    inp,
    max_tokens: int,
    vocab_size: int,
    embed_dim: int = 32,
    out_dim: int = 64,
    l2: float = 0.0,
    kind: str = "conv",
    layers: int = 2,
    heads: int = 2,
):
    """[B, L] int ids -> [B, out_dim]."""
    if kind not in TEXT_ENCODERS:
        raise ValueError(
            f"model.text_encoder: unknown '{kind}' (known: {', '.join(TEXT_ENCODERS)})"
        )
    x = keras.layers.Embedding(vocab_size, embed_dim, name="text_embed")(inp)
    if kind == "transformer":
        return _transformer(inp, x, max_tokens, out_dim, l2, layers, heads)
    if kind in ("gru", "lstm"):
        return _recurrent(inp, x, kind, out_dim, l2)
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


def _transformer(ids, x, max_tokens: int, out_dim: int, l2: float, layers: int, heads: int):
    """Positions, `layers` Transformer blocks that ignore padding, the mean over real
    tokens, and a ReLU projection to `out_dim`."""
    keep = TokenMask(name="text_keep")(ids)
    mask = AttentionMask(name="text_attention_mask")(keep)
    x = PositionEmbedding(max_tokens, name="text_positions")(x)
    for i in range(layers):
        x = attention_block(x, heads, mask=mask, l2=l2, name=f"text_block{i + 1}")
    x = TokenMean(name="text_pool")([x, keep])
    return keras.layers.Dense(
        out_dim, activation="relu", kernel_regularizer=regularizer(l2), name="text_proj"
    )(x)


def _recurrent(ids, x, kind: str, out_dim: int, l2: float):
    """A GRU or LSTM over the tokens that skips padding (id 0); its last state, projected.

    The padding mask comes from `PaddingMask` (not the Embedding's `mask_zero`, which
    would make the Embedding a masking layer tfmot and TFLite handle worse); the recurrent
    layer reads it as its `mask`, so padded positions leave the state unchanged.
    """
    keep = PaddingMask(name="text_keep")(ids)
    rnn = keras.layers.GRU if kind == "gru" else keras.layers.LSTM
    x = rnn(out_dim, kernel_regularizer=regularizer(l2), name=f"text_{kind}")(x, mask=keep)
    return keras.layers.Dense(
        out_dim, activation="relu", kernel_regularizer=regularizer(l2), name="text_proj"
    )(x)

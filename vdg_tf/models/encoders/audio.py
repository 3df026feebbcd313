"""Audio encoder: a small 2D CNN over the log-mel spectrogram [frames, mels, 1]."""

from __future__ import annotations

import tf_keras as keras

from vdg_tf.models.encoders.blocks import conv_bn_relu, separable_block


def audio_encoder(
    inp, spec_frames: int, mels: int, width: int = 32, out_dim: int = 64, l2: float = 0.0
):
    """[B, F, M, 1] -> [B, out_dim].

    After three stride-2 stages a (1, M/8) 'valid' conv reads all mel bands at once, so
    pitch (which band is loud) survives; then the mean over time.
    """
    x = conv_bn_relu(inp, width // 2, 3, strides=2, l2=l2, name="audio_stem")
    x = separable_block(x, width, l2=l2, name="audio_b1")
    x = separable_block(x, width * 2, l2=l2, name="audio_b2")
    bands = int(x.shape[2])
    x = conv_bn_relu(x, 16, 1, l2=l2, name="audio_squeeze")
    x = conv_bn_relu(x, out_dim, (1, bands), padding="valid", l2=l2, name="audio_bands")
    return keras.layers.GlobalAveragePooling2D(name="audio_pool")(x)

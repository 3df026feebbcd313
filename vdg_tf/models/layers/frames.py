"""Fold a clip's frames into the batch axis and back, so per-frame image backbones run on it.

An image backbone from `tf_keras.applications` takes [N, H, W, 3]; a clip is
[B, T, H, W, 3]. `FoldFrames` gives [B*T, H, W, 3] (every frame an image), and
`UnfoldFrames` turns the per-frame features [B*T, ...] back into [B, T, ...] for temporal
modelling. Both are plain reshapes with a dynamic batch, written as layers (rather than
`Reshape`, which cannot touch the batch axis, or `TimeDistributed`, which tfmot's QAT
refuses) so that QAT can annotate them with a no-op `QuantizeConfig`
(`vdg_tf.compression.quantize.PASS_THROUGH`): values pass unchanged, so there is nothing to
quantize, and the convolutions on either side stay int8.

Example:

    x = FoldFrames(name="video_fold_frames")(video)          # [B*T, H, W, 3]
    f = keras.layers.GlobalAveragePooling2D()(backbone(x))   # [B*T, C]
    seq = UnfoldFrames(frames=8, name="video_unfold_frames")(f)  # [B, 8, C]
"""

from __future__ import annotations

import tensorflow as tf
import tf_keras as keras


@keras.saving.register_keras_serializable(package="vdg_tf")
class FoldFrames(keras.layers.Layer):
    """[B, T, *rest] -> [B*T, *rest]: every frame of every clip becomes one batch item."""

    def call(self, x):
        rest = x.shape[2:]
        if any(d is None for d in rest):
            raise ValueError(f"{self.name}: frame shape must be static, got {x.shape}")
        return tf.reshape(x, [-1, *rest])

    def compute_output_shape(self, input_shape):
        shape = tf.TensorShape(input_shape)
        batch = None if shape[0] is None or shape[1] is None else shape[0] * shape[1]
        return tf.TensorShape([batch, *shape[2:]])

    def get_config(self) -> dict:
        return super().get_config()


@keras.saving.register_keras_serializable(package="vdg_tf")
class UnfoldFrames(keras.layers.Layer):
    """[B*T, *rest] -> [B, T, *rest], the inverse of `FoldFrames` for `frames` = T.

    Args:
        frames: T, the number of frames each clip was folded from.
    """

    def __init__(self, frames: int, **kwargs):
        super().__init__(**kwargs)
        if frames < 1:
            raise ValueError(f"UnfoldFrames: frames must be >= 1, got {frames}")
        self.frames = int(frames)

    def call(self, x):
        return tf.reshape(x, [-1, self.frames, *x.shape[1:]])

    def compute_output_shape(self, input_shape):
        shape = tf.TensorShape(input_shape)
        batch = None if shape[0] is None else shape[0] // self.frames
        return tf.TensorShape([batch, self.frames, *shape[1:]])

    def get_config(self) -> dict:
        return {**super().get_config(), "frames": self.frames}


@keras.saving.register_keras_serializable(package="vdg_tf")
class CausalFrameStack(keras.layers.Layer):
    """[B, T, *rest, C] -> [B, T - k + 1, *rest, k * C]: each frame with the k - 1 before it.

    Output frame i holds input frames i, i + 1, ..., i + k - 1 (oldest first) side by side
    on the channel axis, so a plain 2D conv after `FoldFrames` is a causal space-time conv
    of temporal kernel k: it reads a frame and the k - 1 frames before it, never a later one.
    The first k - 1 frames are context only (no output of their own, no padding): an output
    depends on frames inside the input alone, which is what lets a stream feed the last
    k - 1 frames back as state (MoViNet's stream buffer) and give the very same output
    (`vdg_tf/export/incremental.py`). The time axis may be dynamic (a stream's chunk).

    Args:
        kernel: k, the temporal kernel (>= 2).
    """

    def __init__(self, kernel: int = 3, **kwargs):
        super().__init__(**kwargs)
        if kernel < 2:
            raise ValueError(f"CausalFrameStack: kernel must be >= 2, got {kernel}")
        self.kernel = int(kernel)

    def call(self, x):
        k = self.kernel
        # a static length when known: LiteRT runs static slices without per-call allocation
        frames = x.shape[1] if x.shape[1] is not None else tf.shape(x)[1]
        steps = frames - (k - 1)
        return tf.concat([x[:, i : i + steps] for i in range(k)], axis=-1)

    def compute_output_shape(self, input_shape):
        shape = tf.TensorShape(input_shape)
        frames = None if shape[1] is None else shape[1] - (self.kernel - 1)
        channels = None if shape[-1] is None else shape[-1] * self.kernel
        return tf.TensorShape([shape[0], frames, *shape[2:-1], channels])

    def get_config(self) -> dict:
        return {**super().get_config(), "kernel": self.kernel}

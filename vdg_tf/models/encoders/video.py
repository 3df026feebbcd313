"""Video encoder: a per-frame 2D CNN with frames folded into the height axis, then temporal conv.

Folding time into height (a Reshape) keeps every layer a Conv2D, which tfmot can
quantize and TFLite can run as int8; Conv3D and TimeDistributed are refused by QAT.
With frames stacked on the height axis, a Conv2D dilated by the frame height in rows
reads the same pixel in neighbouring frames: a (3 x 1 x 3) space-time filter, which is
what sees motion.

`frames="independent"` is the streamable variant: frames are folded into the batch
(`FoldFrames`), each is encoded alone (a plain 3x3 conv where the motion conv was), and
motion is left to the temporal conv over frame embeddings. A frame's embedding then
depends on that frame only, so a stream computes it once and keeps it in a ring buffer
(`vdg_tf/export/incremental.py`); the folded default mixes neighbouring frames in its stem
and motion convs and cannot be split that way.

`frames="causal"` keeps the motion conv but makes it causal, as MoViNet's stream mode does:
stem and first block run per frame (folded into the batch), then each frame's feature map
is stacked with those of the `MOTION_KERNEL - 1` frames before it (`CausalFrameStack`) and
one conv reads the three; the first two frames of a clip are context only, so a T-frame
clip gives T - 2 frame embeddings. A stream feeds the last two frames' maps back as state
(`motion_state`), and each new frame costs one per-frame pass.
"""

from __future__ import annotations

import tf_keras as keras

from vdg_tf.models.encoders.blocks import conv_bn_relu, regularizer, separable_block
from vdg_tf.models.layers import CausalFrameStack, FoldFrames, PositionEmbedding, UnfoldFrames
from vdg_tf.models.sequence import attention_block

STRIDES = 3
TEMPORAL = (
    "conv",
    "pool",
    "gru",
    "attention",
)  # three stride-2 stages: a frame of S pixels becomes S/8 rows
# folded: frames stacked on the height axis, a space-time motion conv (the default);
# independent: each frame encoded alone, streamable frame by frame
# causal: per-frame stem, a motion conv over each frame and the two before it (streamable
# with its state, MoViNet-style)
FRAMES = ("folded", "independent", "causal")
MOTION_KERNEL = 3  # frames the motion conv reads (k_t); a causal stream keeps k_t - 1


def video_encoder(
    inp,
    frames: int,
    size: int,
    width: int = 32,
    out_dim: int = 64,
    l2: float = 0.0,
    temporal: str = "conv",
    heads: int = 2,
    frames_mode: str = "folded",
):
    """[B, T, S, S, 3] -> [B, out_dim].

    Per frame: a stride-2 conv and a separable block; then a space-time conv across
    neighbouring frames (motion); one more separable block; the mean over each frame's
    positions; then temporal modelling over the frame sequence, by `temporal`:
    conv: a (3, 1) temporal conv, then the mean over time (int8-friendly, the default);
    pool: a per-frame projection, then the mean; gru: a GRU over frames; attention: a
    Transformer block over frames, then the mean (gru and attention stay float).
    `frames_mode`: folded (the default), independent or causal (see the module docstring).
    """
    if temporal not in TEMPORAL:
        raise ValueError(f"model.temporal: unknown '{temporal}' (known: {', '.join(TEMPORAL)})")
    if frames_mode not in FRAMES:
        raise ValueError(
            f"model.video_frames: unknown '{frames_mode}' (known: {', '.join(FRAMES)})"
        )
    if size % (2**STRIDES):
        raise ValueError(f"data.video.size: {size} must be a multiple of {2**STRIDES}")
    if frames_mode == "independent":
        x = independent_frame_features(inp, frames, size, width, l2)
        return temporal_features(x, frames, int(x.shape[-1]), out_dim, l2, temporal, heads)
    if frames_mode == "causal":
        x = causal_frame_features(inp, frames, size, width, l2)
        kept = frames - (MOTION_KERNEL - 1)
        return temporal_features(x, kept, int(x.shape[-1]), out_dim, l2, temporal, heads)
    x = keras.layers.Reshape((frames * size, size, 3), name="video_fold")(inp)
    x = conv_bn_relu(x, width // 2, 3, strides=2, l2=l2, name="video_stem")
    x = separable_block(x, width, l2=l2, name="video_b1")
    rows = size // 4  # rows per frame at this stage
    x = conv_bn_relu(x, width, 3, dilation=(rows, 1), l2=l2, name="video_motion")
    x = separable_block(x, width * 2, l2=l2, name="video_b2")
    cell = size // 2**STRIDES
    x = keras.layers.Reshape((frames, cell * cell, width * 2), name="video_unfold")(x)
    x = keras.layers.AveragePooling2D((1, cell * cell), name="video_frame_pool")(x)  # [B, T, 1, C]
    return temporal_features(x, frames, width * 2, out_dim, l2, temporal, heads)


def independent_frame_features(inp, frames: int, size: int, width: int = 32, l2: float = 0.0):
    """[B, T, S, S, 3] -> per-frame features [B, T, 1, C], each frame encoded alone.

    The same stages as the folded encoder, on frames folded into the batch; a plain 3x3
    conv (`video_spatial`) takes the motion conv's place, so no layer reads another frame.
    Each frame is pooled to a 2x2 grid of cells (C = 4 x 2 * width) rather than to one
    vector, so that the temporal conv can still see where things move between frames
    (the global mean alone loses the direction of motion the sample task is named by).
    """
    x = FoldFrames(name="video_fold_frames")(inp)  # [B*T, S, S, 3]
    x = conv_bn_relu(x, width // 2, 3, strides=2, l2=l2, name="video_stem")
    x = separable_block(x, width, l2=l2, name="video_b1")
    x = conv_bn_relu(x, width, 3, l2=l2, name="video_spatial")
    x = separable_block(x, width * 2, l2=l2, name="video_b2")
    cell = size // 2**STRIDES
    grid = 2 if cell % 2 == 0 else 1
    x = keras.layers.AveragePooling2D(cell // grid, name="video_frame_pool")(x)
    channels = grid * grid * width * 2
    x = keras.layers.Reshape((channels,), name="video_frame_flat")(x)  # [B*T, C]
    x = UnfoldFrames(frames, name="video_unfold_frames")(x)  # [B, T, C]
    return keras.layers.Reshape((frames, 1, channels), name="video_frames")(x)


def causal_frame_features(inp, frames: int, size: int, width: int = 32, l2: float = 0.0):
    """[B, T, S, S, 3] -> per-frame features [B, T - 2, 1, 2 * width], causal in time.

    The folded encoder's stages with its motion conv made causal: stem and first block per
    frame; `CausalFrameStack` puts each frame's map beside the two before it and a (1, 3)
    conv over the stacked channels reads the same row of the three frames, as the folded
    motion conv's (3 x 1 x 3) space-time kernel does (same weights count), but never a
    later frame; then the second block and the mean over each frame's positions.
    """
    if frames < MOTION_KERNEL:
        raise ValueError(
            f"data.video.frames: {frames} is too few for model.video_frames: causal "
            f"(its motion conv reads {MOTION_KERNEL} frames)"
        )
    x = FoldFrames(name="video_fold_frames")(inp)  # [B*T, S, S, 3]
    x = conv_bn_relu(x, width // 2, 3, strides=2, l2=l2, name="video_stem")
    x = separable_block(x, width, l2=l2, name="video_b1")  # the per-frame maps a stream keeps
    x = UnfoldFrames(frames, name="video_unfold_maps")(x)  # [B, T, S/4, S/4, width]
    x = CausalFrameStack(MOTION_KERNEL, name="video_stack_frames")(x)  # [B, T-2, .., 3 * width]
    x = FoldFrames(name="video_fold_motion")(x)
    x = conv_bn_relu(x, width, (1, 3), l2=l2, name="video_motion")
    x = separable_block(x, width * 2, l2=l2, name="video_b2")
    cell = size // 2**STRIDES
    x = keras.layers.AveragePooling2D(cell, name="video_frame_pool")(x)
    x = keras.layers.Reshape((width * 2,), name="video_frame_flat")(x)
    kept = frames - (MOTION_KERNEL - 1)
    x = UnfoldFrames(kept, name="video_unfold_frames")(x)  # [B, T-2, C]
    return keras.layers.Reshape((kept, 1, width * 2), name="video_frames")(x)


def temporal_features(
    x, frames: int, channels: int, out_dim: int, l2: float, temporal: str, heads: int = 2
):
    """Per-frame features [B, T, 1, C] -> [B, out_dim], by `temporal` (see `video_encoder`).

    Shared by the default encoder and the image backbones (`vdg_tf.models.backbones`).
    """
    if temporal not in TEMPORAL:
        raise ValueError(f"model.temporal: unknown '{temporal}' (known: {', '.join(TEMPORAL)})")
    if temporal in ("conv", "pool"):
        kernel = (3, 1) if temporal == "conv" else 1
        x = conv_bn_relu(x, out_dim, kernel, l2=l2, name="video_temporal")
        return keras.layers.GlobalAveragePooling2D(name="video_pool")(x)
    x = keras.layers.Reshape((frames, channels), name="video_sequence")(x)  # [B, T, C]
    if temporal == "gru":
        return keras.layers.GRU(out_dim, kernel_regularizer=regularizer(l2), name="video_gru")(x)
    x = keras.layers.Dense(out_dim, kernel_regularizer=regularizer(l2), name="video_proj")(x)
    x = PositionEmbedding(frames, name="video_positions")(x)
    x = attention_block(x, heads, l2=l2, name="video_temporal")
    return keras.layers.GlobalAveragePooling1D(name="video_pool")(x)

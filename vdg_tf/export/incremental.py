"""Split a model for incremental (ring-buffer) inference, and export it as one `.tflite`.

A stream at stride = window/4 shares 3/4 of each window's frames with the window before;
re-running the whole model recomputes every frame's embedding four times. A model whose
video encoder sees each frame alone (`FoldFrames` ... `UnfoldFrames`: the image backbones
and `model.video_frames: independent`) splits exactly into:

- `encode_frame`: one frame `[N, S, S, 3]` in [0, 1] -> its embedding `[N, C]`;
- `encode_audio`: the window's log-mel `[N, F, M, 1]` -> the audio embedding `[N, D]`;
- `head`: the window's `frame_embeddings` `[N, T, C]`, `audio_embedding`, `text` and the
  `*_mask` inputs -> `probs` (temporal model, fusion, task head);
- `serving_default`: the whole window, as `vdg_tf.export.tflite.convert` exports it.

Audio is not cached per hop: the log-mel of a window is scaled to that window's own peak
(`vdg_tf/data/features.py`), so a hop's features depend on the whole window; the audio
branch runs once per window on the window's log-mel (its share of the cost is in
BENCHMARKS.md). The default video encoder (`model.video_frames: folded`) mixes neighbouring
frames in its stem and motion convs: it cannot be split, and `split_reason` says so.

The causal encoder (`model.video_frames: causal`) splits with state, as MoViNet's stream
buffers do: its `encode_frame` takes a chunk of consecutive frames of one stream and
`motion_state`, the first block's maps of the 2 frames before the chunk (zeros at a
stream's start), and gives each frame's embedding and the state after the chunk. A frame's
embedding depends on it and the two frames before it only, so the head's T - 2 embeddings
of a window are exactly those the whole model computes (the window's first two frames are
its context).

Example:

    data = convert_incremental(model, ExportConfig("edge-int8", representative))
    # LiteRT: interpreter.get_signature_runner("encode_frame")(frame=x)["embedding"]
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras as keras

from vdg_tf.export.targets import get_target
from vdg_tf.export.tflite import ExportConfig, configure_converter, finish, run_converter
from vdg_tf.models.builder import inference_model
from vdg_tf.models.layers import CausalFrameStack
from vdg_tf.models.serving import OUTPUT_NAME, serving_function

SIGNATURES = ("encode_frame", "encode_audio", "head", "serving_default")
FOLD, UNFOLD, AUDIO_OUT = "video_fold_frames", "video_unfold_frames", "audio_masked"
FRAME_IN, EMBEDDING = "frame", "embedding"
HEAD_FRAMES, HEAD_AUDIO = "frame_embeddings", "audio_embedding"
# the causal encoder's layers around its motion conv, and the state a stream carries
MAPS_UNFOLD, STACK, MOTION_FOLD = "video_unfold_maps", "video_stack_frames", "video_fold_motion"
STATE = "motion_state"
# edge-int4 rewrites one graph's weights after conversion (export/int4.py): not with four
TARGETS = ("float32", "gpu-fp16", "edge-int8", "cpu-dynamic")
# the metadata entry that says the file holds the incremental signatures (and their shapes)
METADATA_KEY = "incremental"


@dataclass
class MotionState:
    """The causal encoder's stream pieces (sharing the model's weights).

    `maps`: frames [N, S, S, 3] -> their first-block maps [N, h, w, C] (per frame);
    `motion`: maps stacked with the `context` frames' before each [N, h, w, k*C] -> the
    frames' embeddings [N, D]; `kernel`: the frames the motion conv reads (k_t).
    """

    maps: keras.Model
    motion: keras.Model
    kernel: int

    @property
    def context(self) -> int:
        """Frames of state a stream keeps: k_t - 1."""
        return self.kernel - 1

    @property
    def state_shape(self) -> tuple[int, ...]:
        return (self.context, *self.maps.output.shape[1:])

    def chunk(self, frames, state) -> tuple:
        """N consecutive frames of one stream and the maps of the `context` frames before
        them -> (their embeddings [N, D], the state after them). MoViNet's stream buffer:
        the state and the new maps make one sequence, the causal conv reads it without
        padding, and its last `context` maps are the next state."""
        seq = tf.concat([state, self.maps(frames, training=False)], axis=0)
        stacked = CausalFrameStack(self.kernel)(seq[None])[0]
        return self.motion(stacked, training=False), seq[-self.context :]


@dataclass
class Parts:
    """The pieces of a split model, sharing the whole model's weights.

    `encode_audio` is None for a model without audio; `head` takes `frame_embeddings`,
    `audio_embedding` (with audio) and the model's other inputs by name. A causal
    encoder has `motion` (its per-frame pieces and state) and no stateless `encode_frame`.
    """

    encode_frame: keras.Model | None
    encode_audio: keras.Model | None
    head: keras.Model
    whole: keras.Model
    frames: int
    motion: MotionState | None = None

    @property
    def head_inputs(self) -> list[str]:
        return [_name(t) for t in self.head.inputs]

    def info(self) -> dict:
        """What a runtime needs to drive the signatures (stored in the file's metadata)."""
        per_frame = self.motion.motion if self.motion else self.encode_frame
        return {
            "frames": self.frames,
            "frame_dim": int(per_frame.output.shape[-1]),
            "context": self.motion.context if self.motion else 0,
            "audio_dim": None
            if self.encode_audio is None
            else int(self.encode_audio.output.shape[-1]),
            "signatures": [s for s in SIGNATURES if s != "encode_audio" or self.encode_audio],
        }


def _name(tensor) -> str:
    return tensor.name.split(":")[0]


def _layer(model: keras.Model, name: str) -> keras.layers.Layer | None:
    """The layer `name`, or its QAT wrapper `quant_<name>`; None when absent."""
    for layer in model.layers:
        if layer.name in (name, f"quant_{name}"):
            return layer
    return None


def split_reason(model: keras.Model) -> str | None:
    """Why `model` cannot run incrementally (one line), or None when it can."""
    names = {_name(t) for t in model.inputs}
    if "video" not in names:
        return "the model has no video input, so there are no frames to cache"
    if _layer(model, FOLD) is None or _layer(model, UNFOLD) is None:
        return (
            "its video encoder mixes neighbouring frames (model.video_frames: folded); "
            "train with model.video_frames: causal or independent (or a video backbone) to "
            "cache frames"
        )
    return None


def _io(model: keras.Model, layer: keras.layers.Layer) -> tuple:
    """(input, output) of `layer` where `model`'s graph calls it.

    Not `layer.input`: a layer shared with another graph (a QAT clone leaves unwrapped
    layers such as `audio_masked` shared with the float model) answers with its first
    call, which may be in that other graph.
    """
    for i in range(len(layer._inbound_nodes)):  # noqa: SLF001 (no public per-graph lookup)
        if f"{layer.name}_ib-{i}" in model._network_nodes:  # noqa: SLF001
            return layer.get_input_at(i), layer.get_output_at(i)
    raise ValueError(f"incremental export: layer {layer.name} is not in {model.name}")


def split_model(model: keras.Model) -> Parts:
    """`model` (training or inference form, float or QAT) as encode_frame / encode_audio /
    head sub-models over its own layers; raises ValueError with `split_reason` otherwise."""
    reason = split_reason(model)
    if reason:
        raise ValueError(f"incremental export: {reason}")
    whole = inference_model(model)
    (_, folded), (per_frame, unfolded) = (_io(whole, _layer(whole, n)) for n in (FOLD, UNFOLD))
    motion = _motion_state(whole, folded, per_frame)
    encode_frame = None if motion else keras.Model(folded, per_frame, name="encode_frame")
    raw = {_name(t): t for t in whole.inputs}
    cut = [unfolded]  # the head starts where these tensors are
    fresh = [keras.Input(unfolded.shape[1:], name=HEAD_FRAMES)]
    encode_audio = None
    audio = _layer(whole, AUDIO_OUT)
    if audio is not None and "audio" in raw:
        emb = _io(whole, audio)[0][0]
        encode_audio = keras.Model(raw["audio"], emb, name="encode_audio")
        cut.append(emb)
        fresh.append(keras.Input(emb.shape[1:], name=HEAD_AUDIO))
    rest = [t for n, t in raw.items() if n not in ("video", "audio")]
    fresh += [keras.Input(t.shape[1:], dtype=t.dtype, name=_name(t)) for t in rest]
    head_inner = keras.Model([*cut, *rest], whole.output, name="head_inner")
    head = keras.Model(fresh, head_inner(fresh), name="head")
    return Parts(encode_frame, encode_audio, head, whole, int(unfolded.shape[1]), motion)


def _motion_state(whole: keras.Model, folded, per_frame) -> MotionState | None:
    """The causal encoder's `MotionState` (from `folded` frames to `per_frame` embeddings),
    or None for an encoder without `CausalFrameStack`."""
    stack = _layer(whole, STACK)
    if stack is None:
        return None
    maps = _io(whole, _layer(whole, MAPS_UNFOLD))[0]
    stacked = _io(whole, _layer(whole, MOTION_FOLD))[1]
    kernel = (stack.layer if hasattr(stack, "layer") else stack).kernel  # QAT wraps it
    return MotionState(
        keras.Model(folded, maps, name="encode_maps"),
        keras.Model(stacked, per_frame, name="encode_motion"),
        int(kernel),
    )


def _spec(name: str, shape, dtype, batch: int | None) -> tf.TensorSpec:
    return tf.TensorSpec([batch, *shape], dtype, name=name)


def signature_functions(
    parts: Parts, batch: int | None = 1, frame_batch: int | None = None
) -> dict:
    """The four concrete functions, keyed by signature name, inputs and outputs by name.

    `batch` is the batch axis of whole windows (`serving_default`, `encode_audio`, `head`);
    `frame_batch` that of `encode_frame`, dynamic by default: a window brings several new
    frames (T/4 at stride = window/4), and one call for all of them saves LiteRT's
    per-call cost (about 60 us here, a fifth of a whole tiny model).
    """
    encode_frame = _frame_function(parts, frame_batch)
    head_spec = {_name(t): _spec(_name(t), t.shape[1:], t.dtype, batch) for t in parts.head.inputs}

    @tf.function(input_signature=[head_spec])
    def head(x):
        return {OUTPUT_NAME: parts.head([x[n] for n in parts.head_inputs], training=False)}

    out = {
        "encode_frame": encode_frame,
        "head": head.get_concrete_function(),
        "serving_default": serving_function(parts.whole, batch),
    }
    if parts.encode_audio is not None:
        audio_spec = {
            "audio": _spec("audio", parts.encode_audio.input.shape[1:], tf.float32, batch)
        }

        @tf.function(input_signature=[audio_spec])
        def encode_audio(x):
            return {EMBEDDING: parts.encode_audio(x["audio"], training=False)}

        out["encode_audio"] = encode_audio.get_concrete_function()
    return out


def _frame_function(parts: Parts, frame_batch: int | None):
    """The `encode_frame` concrete function: frames -> embeddings, or, for a causal encoder,
    a chunk of `frame_batch` frames (1 when None) and `motion_state` -> embeddings and the
    next state."""
    if parts.motion is None:
        shape = parts.encode_frame.input.shape[1:]
        spec = {FRAME_IN: _spec(FRAME_IN, shape, tf.float32, frame_batch)}

        @tf.function(input_signature=[spec])
        def encode_frame(x):
            return {EMBEDDING: parts.encode_frame(x[FRAME_IN], training=False)}

        return encode_frame.get_concrete_function()
    motion = parts.motion
    spec = {
        # one frame a call: LiteRT ran a dynamic chunk 3-13x slower a frame (BENCHMARKS.md)
        FRAME_IN: _spec(FRAME_IN, motion.maps.input.shape[1:], tf.float32, frame_batch or 1),
        STATE: tf.TensorSpec(motion.state_shape, tf.float32, name=STATE),
    }

    @tf.function(input_signature=[spec])
    def encode_chunk(x):
        embeddings, state = motion.chunk(x[FRAME_IN], x[STATE])
        return {EMBEDDING: embeddings, STATE: state}

    return encode_chunk.get_concrete_function()


def _frame_pairs(parts: Parts, video: np.ndarray) -> Iterator[tuple[str, dict]]:
    """`encode_frame` calibration inputs of one window [1, T, S, S, 3]: each frame alone,
    or (causal) each frame with the state the frames before it leave (zeros first)."""
    if parts.motion is None:
        for t in range(video.shape[1]):
            yield "encode_frame", {FRAME_IN: video[:, t]}
        return
    m, state = parts.motion, np.zeros(parts.motion.state_shape, np.float32)
    for t in range(video.shape[1]):  # one frame a call, the state carried along
        yield "encode_frame", {FRAME_IN: video[0, t : t + 1], STATE: state}
        state = np.asarray(m.chunk(video[0, t : t + 1], state)[1])


def window_embeddings(parts: Parts, video: np.ndarray) -> np.ndarray:
    """The head's `frame_embeddings` [B, T', D] of whole windows `video` [B, T, ...] by
    the float encoder pieces (T' = T, or T - context for a causal encoder)."""
    if parts.motion is None:
        frames = parts.encode_frame(video.reshape(-1, *video.shape[2:]), training=False)
        return np.asarray(frames).reshape(len(video), parts.frames, -1)
    m = parts.motion
    zero = np.zeros(m.state_shape, np.float32)
    return np.stack([np.asarray(m.chunk(v, zero)[0])[m.context :] for v in video])


def calibration_pairs(parts: Parts, windows: list[dict]) -> Iterator[tuple[str, dict]]:
    """`(signature, inputs)` pairs for int8 calibration of every signature, from
    whole-window model inputs (batch 1 each): the window itself, each of its frames, its
    log-mel, and the head fed with the embeddings the float encoders give."""
    for d in windows:
        d = {k: np.asarray(v) for k, v in d.items()}
        yield "serving_default", {k: d[k] for k in (_name(t) for t in parts.whole.inputs)}
        video = d["video"].astype(np.float32)
        yield from _frame_pairs(parts, video)
        feed = {HEAD_FRAMES: window_embeddings(parts, video)}
        if parts.encode_audio is not None:
            yield "encode_audio", {"audio": d["audio"].astype(np.float32)}
            feed[HEAD_AUDIO] = np.asarray(parts.encode_audio(d["audio"], training=False))
        for n in parts.head_inputs:
            if n not in feed:
                feed[n] = d[n]
        yield "head", feed


def convert_incremental(
    model: keras.Model, cfg: ExportConfig, frame_batch: int | None = None
) -> bytes:
    """One `.tflite` with `encode_frame`, `encode_audio`, `head` and `serving_default`
    for `cfg.target` (float32, gpu-fp16, edge-int8 ...; int8 calibrates every signature
    from `cfg.representative`'s whole-window inputs); `encode_frame` takes `frame_batch`
    frames a call (None: any number). Raises ValueError (one line) for a model that
    cannot be split."""
    if cfg.target not in TARGETS:
        raise ValueError(
            f"incremental export: --target {cfg.target} is not supported (known: {', '.join(TARGETS)})"
        )
    parts = split_model(model)
    functions = signature_functions(parts, cfg.batch, frame_batch)
    holder = tf.Module()
    holder.models = [parts.whole, parts.head] + [
        m for m in (parts.encode_frame, parts.encode_audio) if m is not None
    ]
    if parts.motion is not None:
        holder.models += [parts.motion.maps, parts.motion.motion]
    with tempfile.TemporaryDirectory() as tmp:
        saved = str(Path(tmp) / "saved")
        tf.saved_model.save(holder, saved, signatures=functions)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved, signature_keys=list(functions))
        configure_converter(converter, cfg)
        if get_target(cfg.target).int8:
            rep = cfg.representative
            converter.representative_dataset = lambda: calibration_pairs(parts, list(rep()))
        data = run_converter(converter)
    return finish(data, cfg, {METADATA_KEY: json.dumps(parts.info())})

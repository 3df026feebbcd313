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
from vdg_tf.models.serving import OUTPUT_NAME, serving_function

SIGNATURES = ("encode_frame", "encode_audio", "head", "serving_default")
FOLD, UNFOLD, AUDIO_OUT = "video_fold_frames", "video_unfold_frames", "audio_masked"
FRAME_IN, EMBEDDING = "frame", "embedding"
HEAD_FRAMES, HEAD_AUDIO = "frame_embeddings", "audio_embedding"
# edge-int4 rewrites one graph's weights after conversion (export/int4.py): not with four
TARGETS = ("float32", "gpu-fp16", "edge-int8", "cpu-dynamic")
# the metadata entry that says the file holds the incremental signatures (and their shapes)
METADATA_KEY = "incremental"


@dataclass
class Parts:
    """The pieces of a split model, sharing the whole model's weights.

    `encode_audio` is None for a model without audio; `head` takes `frame_embeddings`,
    `audio_embedding` (with audio) and the model's other inputs by name.
    """

    encode_frame: keras.Model
    encode_audio: keras.Model | None
    head: keras.Model
    whole: keras.Model
    frames: int

    @property
    def head_inputs(self) -> list[str]:
        return [_name(t) for t in self.head.inputs]

    def info(self) -> dict:
        """What a runtime needs to drive the signatures (stored in the file's metadata)."""
        return {
            "frames": self.frames,
            "frame_dim": int(self.encode_frame.output.shape[-1]),
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
            "train with model.video_frames: independent (or a video backbone) to cache frames"
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
    encode_frame = keras.Model(folded, per_frame, name="encode_frame")
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
    return Parts(encode_frame, encode_audio, head, whole, int(unfolded.shape[1]))


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
    frame_shape = parts.encode_frame.input.shape[1:]
    frame_spec = {FRAME_IN: _spec(FRAME_IN, frame_shape, tf.float32, frame_batch)}

    @tf.function(input_signature=[frame_spec])
    def encode_frame(x):
        return {EMBEDDING: parts.encode_frame(x[FRAME_IN], training=False)}

    head_spec = {_name(t): _spec(_name(t), t.shape[1:], t.dtype, batch) for t in parts.head.inputs}

    @tf.function(input_signature=[head_spec])
    def head(x):
        return {OUTPUT_NAME: parts.head([x[n] for n in parts.head_inputs], training=False)}

    out = {
        "encode_frame": encode_frame.get_concrete_function(),
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


def calibration_pairs(parts: Parts, windows: list[dict]) -> Iterator[tuple[str, dict]]:
    """`(signature, inputs)` pairs for int8 calibration of every signature, from
    whole-window model inputs (batch 1 each): the window itself, each of its frames, its
    log-mel, and the head fed with the embeddings the float encoders give."""
    for d in windows:
        d = {k: np.asarray(v) for k, v in d.items()}
        yield "serving_default", {k: d[k] for k in (_name(t) for t in parts.whole.inputs)}
        video = d["video"].astype(np.float32)
        for t in range(video.shape[1]):
            yield "encode_frame", {FRAME_IN: video[:, t]}
        frames = parts.encode_frame(video.reshape(-1, *video.shape[2:]), training=False)
        feed = {HEAD_FRAMES: np.asarray(frames).reshape(len(video), parts.frames, -1)}
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
    holder.models = [parts.whole, parts.encode_frame, parts.head] + (
        [parts.encode_audio] if parts.encode_audio is not None else []
    )
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

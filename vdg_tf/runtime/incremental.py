"""Incremental (ring-buffer) inference: each frame is encoded once, each window runs the head.

`IncrementalRunner` keeps the embeddings of the last window's T frames; a new window runs
`encode_frame` only on frames it has not seen (at stride = window/4, a quarter of them),
`encode_audio` on its log-mel (audio is not cached, see `vdg_tf/export/incremental.py`),
then `head` on the T cached embeddings. Frames are matched by their decoded pixels (a
digest of the uint8 frame), so reuse never depends on timing arithmetic: a frame the
window shares with the one before is, pixel for pixel, the frame that was encoded.

The signatures come from an incremental `.tflite` (`LiteRTParts`) or from a Keras model
split in memory (`KerasParts`); both give the same three callables.

Example:

    runner = IncrementalRunner(LiteRTParts("model.tflite"))
    probs = runner.outputs(inputs, [w.frames for w in windows])   # [B, C]
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras as keras

from vdg_tf._quiet import silenced_stderr
from vdg_tf.export.incremental import (
    EMBEDDING,
    FRAME_IN,
    HEAD_AUDIO,
    HEAD_FRAMES,
    METADATA_KEY,
    split_model,
    split_reason,
)
from vdg_tf.export.tflite import read_metadata
from vdg_tf.models.serving import OUTPUT_NAME


class KerasParts:
    """encode_frame / encode_audio / head of a Keras model split in memory."""

    def __init__(self, model: keras.Model):
        parts = split_model(model)
        self.frames, self.head_inputs = parts.frames, parts.head_inputs
        self._frame = tf.function(lambda x: parts.encode_frame(x, training=False))
        self._audio = (
            tf.function(lambda x: parts.encode_audio(x, training=False))
            if parts.encode_audio is not None
            else None
        )
        self._head = tf.function(lambda xs: parts.head(xs, training=False))
        self.has_audio = self._audio is not None

    def encode_frame(self, frames: np.ndarray) -> np.ndarray:
        return self._frame(tf.constant(frames, tf.float32)).numpy()

    def encode_audio(self, audio: np.ndarray) -> np.ndarray:
        return self._audio(tf.constant(audio, tf.float32)).numpy()

    def head(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        return self._head([tf.constant(feed[n]) for n in self.head_inputs]).numpy()


class LiteRTParts:
    """The incremental signatures of a `.tflite` in LiteRT; a batch-1 signature is run
    once per item, a dynamic-batch one once per call."""

    def __init__(self, path: str | Path, num_threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        self.path = Path(path)
        info = json.loads(read_metadata(self.path).get(METADATA_KEY, "{}") or "{}")
        with warnings.catch_warnings(), silenced_stderr():
            warnings.simplefilter("ignore")
            self.interpreter = Interpreter(model_path=str(self.path), num_threads=num_threads)
        signatures = self.interpreter.get_signature_list()
        missing = [s for s in ("encode_frame", "head") if s not in signatures]
        if missing or not info:
            raise ValueError(
                f"{self.path}: no incremental signatures ({', '.join(missing) or 'metadata'} "
                f"missing); export it with `vdg export ... --incremental`"
            )
        self.frames = int(info["frames"])
        self.has_audio = "encode_audio" in signatures
        self._runners = {s: self.interpreter.get_signature_runner(s) for s in signatures}
        self._details = {s: r.get_input_details() for s, r in self._runners.items()}
        with silenced_stderr():  # LiteRT applies (and logs) its delegate on the first run
            for s, runner in self._runners.items():
                runner(**{n: np.zeros(d["shape"], d["dtype"]) for n, d in self._details[s].items()})

    def _run(self, name: str, feed: dict[str, np.ndarray], out: str) -> np.ndarray:
        runner, details = self._runners[name], self._details[name]
        feed = {k: np.asarray(feed[k]).astype(d["dtype"]) for k, d in details.items()}
        n = len(next(iter(feed.values())))
        if all(d["shape_signature"][0] == -1 for d in details.values()) or n == 1:
            return np.asarray(runner(**feed)[out])
        return np.concatenate([np.asarray(runner(**{k: v[i : i + 1] for k, v in feed.items()})[out])
                               for i in range(n)])  # fmt: skip

    def encode_frame(self, frames: np.ndarray) -> np.ndarray:
        return self._run("encode_frame", {FRAME_IN: frames}, EMBEDDING)

    def encode_audio(self, audio: np.ndarray) -> np.ndarray:
        return self._run("encode_audio", {"audio": audio}, EMBEDDING)

    def head(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        return self._run("head", feed, OUTPUT_NAME)


def incremental_reason(model) -> str | None:
    """Why a Keras model or `.tflite` path cannot run incrementally, or None."""
    if isinstance(model, str | Path):
        path = Path(model)
        if METADATA_KEY not in read_metadata(path):
            return f"{path.name} has no incremental signatures (export it with --incremental)"
        return None
    return split_reason(model)


def frame_key(frame: np.ndarray) -> bytes:
    """A digest of one decoded uint8 frame: equal keys mean equal pixels."""
    return hashlib.blake2b(np.ascontiguousarray(frame).tobytes(), digest_size=16).digest()


class IncrementalRunner:
    """Window outputs from cached frame embeddings (see the module docstring).

    `encoded` counts the frames `encode_frame` has run on, `reused` those taken from
    the ring buffer.
    """

    def __init__(self, parts: KerasParts | LiteRTParts):
        self.parts = parts
        self.ring: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self.encoded = self.reused = 0

    def reset(self) -> None:
        """Forget cached frames (a new source starts)."""
        self.ring.clear()

    def outputs(self, inputs: dict[str, np.ndarray], frames: list[np.ndarray]) -> np.ndarray:
        """Outputs [B, ...] of a batch of consecutive windows: `inputs` are their model
        inputs (`video` [B, T, S, S, 3] ...), `frames` their decoded uint8 frames [T, S, S, 3]
        (the ring buffer's keys)."""
        keys = [[frame_key(f) for f in window] for window in frames]
        self._encode_new(inputs["video"], keys)
        feed = {HEAD_FRAMES: np.stack([np.stack([self.ring[k] for k in ks]) for ks in keys])}
        if self.parts.has_audio:
            feed[HEAD_AUDIO] = self.parts.encode_audio(inputs["audio"])
        for name, value in inputs.items():
            if name not in ("video", "audio"):
                feed[name] = value
        out = self.parts.head(feed)
        for k in [k for k in self.ring if k not in set(keys[-1])]:  # keep the last window's
            del self.ring[k]
        return out

    def _encode_new(self, video: np.ndarray, keys: list[list[bytes]]) -> None:
        """Encode (in one call) the frames of the batch the ring buffer lacks."""
        todo: dict[bytes, tuple[int, int]] = {}
        for i, ks in enumerate(keys):
            for t, k in enumerate(ks):
                if k not in self.ring and k not in todo:
                    todo[k] = (i, t)
        self.reused += sum(len(ks) for ks in keys) - len(todo)
        if not todo:
            return
        batch = np.stack([video[i, t] for i, t in todo.values()]).astype(np.float32)
        for k, emb in zip(todo, self.parts.encode_frame(batch), strict=True):
            self.ring[k] = emb
        self.encoded += len(todo)

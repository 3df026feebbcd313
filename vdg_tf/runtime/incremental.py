"""Incremental (ring-buffer) inference: each frame is encoded once, each window runs the head.

`IncrementalRunner` keeps the embeddings of the last window's T frames; a new window runs
`encode_frame` only on frames it has not seen (at stride = window/4, a quarter of them),
`encode_audio` on its log-mel (audio is not cached, see `vdg_tf/export/incremental.py`),
then `head` on the T cached embeddings. Frames are matched by their sample time and
then checked byte for byte against the pixels that were encoded, so reuse is exact: a
frame the window shares with the one before is, pixel for pixel, the frame encoded.

The signatures come from an incremental `.tflite` (`LiteRTParts`) or from a Keras model
split in memory (`KerasParts`); both give the same three callables.

Example:

    runner = IncrementalRunner(LiteRTParts("model.tflite"), cfg.data.video)
    probs = runner.outputs(inputs, windows)   # [B, C]; inputs: the windows' model inputs
"""

from __future__ import annotations

import json
import warnings
from collections import OrderedDict
from collections.abc import Hashable
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras as keras

from vdg_tf._quiet import silenced_stderr
from vdg_tf.config import VideoSpec
from vdg_tf.export.incremental import (
    EMBEDDING,
    FRAME_IN,
    HEAD_AUDIO,
    HEAD_FRAMES,
    METADATA_KEY,
    STATE,
    split_model,
    split_reason,
)
from vdg_tf.export.tflite import read_metadata
from vdg_tf.media.decode import sample_times
from vdg_tf.media.windows import Window
from vdg_tf.models.serving import OUTPUT_NAME


class KerasParts:
    """encode_frame / encode_audio / head of a Keras model split in memory."""

    def __init__(self, model: keras.Model):
        parts = split_model(model)
        self.frames, self.head_inputs = parts.frames, parts.head_inputs
        # the number of new frames and windows changes from call to call: one trace for all
        fn = tf.function(reduce_retracing=True)
        motion = parts.motion
        self.state_shape = motion.state_shape if motion else None
        self._chunk = fn(lambda x, s: motion.chunk(x, s)) if motion else None
        self._frame = fn(lambda x: parts.encode_frame(x, training=False)) if not motion else None
        self._audio = (
            fn(lambda x: parts.encode_audio(x, training=False))
            if parts.encode_audio is not None
            else None
        )
        self._head = fn(lambda xs: parts.head(xs, training=False))
        self.has_audio = self._audio is not None

    def encode_frame(self, frames: np.ndarray) -> np.ndarray:
        return self._frame(tf.constant(frames, tf.float32)).numpy()

    def encode_chunk(self, frames: np.ndarray, state: np.ndarray) -> tuple:
        """Causal encoder: consecutive frames and the state before them -> (embeddings, state)."""
        emb, state = self._chunk(tf.constant(frames, tf.float32), tf.constant(state, tf.float32))
        return emb.numpy(), state.numpy()

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
        state = self._details["encode_frame"].get(STATE)
        self.state_shape = tuple(int(d) for d in state["shape"]) if state else None
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

    def encode_chunk(self, frames: np.ndarray, state: np.ndarray) -> tuple:
        """Causal encoder: consecutive frames and the state before them -> (embeddings, state)."""
        runner, frames = self._runners["encode_frame"], np.asarray(frames, np.float32)
        step = int(self._details["encode_frame"][FRAME_IN]["shape_signature"][0])
        step = len(frames) if step == -1 else step  # a static chunk: that many frames a call
        out = []
        for i in range(0, len(frames), step):
            got = runner(**{FRAME_IN: frames[i : i + step], STATE: np.asarray(state, np.float32)})
            out.append(np.asarray(got[EMBEDDING]))
            state = got[STATE]
        return np.concatenate(out), np.asarray(state)

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


def frame_keys(window: Window, spec: VideoSpec) -> list[int]:
    """The ring-buffer keys of a window's frames: their sample times in microseconds
    (`sample_times`, as the decoder chose them), so a frame shared by two windows has one key."""
    return [int(round(t * 1e6)) for t in sample_times(window.start, window.end, spec)]


class IncrementalRunner:
    """Window outputs from cached frame embeddings (see the module docstring).

    A cached embedding is used only when the frame's time matches and its pixels are
    byte for byte those encoded (a cheap compare, unlike hashing every frame: 28 us a
    64 px frame, as much as a whole tiny model a window), so reuse is exact.
    `encoded` counts the frames `encode_frame` has run on, `reused` those taken from the
    ring buffer.

    Args:
        parts: the signatures (`LiteRTParts` or `KerasParts`).
        spec: the model's `data.video` (how frames were sampled from each window).
    """

    def __init__(self, parts: KerasParts | LiteRTParts, spec: VideoSpec):
        self.parts, self.spec = parts, spec
        self.ring: OrderedDict[Hashable, tuple[bytes, np.ndarray]] = OrderedDict()
        self.encoded = self.reused = 0

    def reset(self) -> None:
        """Forget cached frames (a new source starts)."""
        self.ring.clear()

    def outputs(self, inputs: dict[str, np.ndarray], windows: list[Window]) -> np.ndarray:
        """Outputs [B, ...] of a batch of consecutive windows of one source: `inputs` are
        their model inputs (`video` [B, T, S, S, 3] ...), `windows` the decoded windows."""
        return ring_outputs(self.parts, inputs, [(self, windows)])

    def _plan(self, windows: list[Window], first: int) -> tuple[list[list[Hashable]], dict]:
        """Each window's ring keys, and the frames the ring lacks: key -> (pixels, row of
        the batch, frame); `first` is the batch row of `windows[0]`."""
        keys: list[list[Hashable]] = []
        todo: dict[Hashable, tuple[bytes, int, int]] = {}
        for i, w in enumerate(windows, first):
            keys.append([])
            for t, k in enumerate(frame_keys(w, self.spec)):
                pixels = w.frames[t].tobytes()
                known = self.ring.get(k) or todo.get(k)  # (pixels, ...) or None
                if known is not None and known[0] == pixels:
                    keys[-1].append(k)
                    continue
                if known is not None:  # the same time, other pixels: an entry of its own
                    k = (k, i, t)
                todo[k] = (pixels, i, t)
                keys[-1].append(k)
        self.reused += sum(len(ks) for ks in keys) - len(todo)
        self.encoded += len(todo)
        return keys, todo


def ring_outputs(
    parts: KerasParts | LiteRTParts,
    inputs: dict[str, np.ndarray],
    groups: list[tuple[IncrementalRunner, list[Window]]],
) -> np.ndarray:
    """Outputs [B, ...] of windows of several sources in one batch: `groups` are each
    source's ring runner and its consecutive windows, in the order of `inputs`' rows.
    The new frames of every source are encoded in one `encode_frame` call, and every
    window runs in one `head` call, so many feeds cost one model call each."""
    plans, first = [], 0
    for runner, windows in groups:
        plans.append((runner, *runner._plan(windows, first)))
        first += len(windows)
    todo = [(runner, k, v) for runner, _, new in plans for k, v in new.items()]
    if todo:
        video = inputs["video"]
        batch = np.stack([video[i, t] for _, _, (_, i, t) in todo]).astype(np.float32)
        for (runner, k, (pixels, _, _)), emb in zip(todo, parts.encode_frame(batch), strict=True):
            runner.ring[k] = (pixels, emb)
    rows = [np.stack([r.ring[k][1] for k in ks]) for r, keys, _ in plans for ks in keys]
    feed = {HEAD_FRAMES: np.stack(rows)}
    if parts.has_audio:
        feed[HEAD_AUDIO] = parts.encode_audio(inputs["audio"])
    for name, value in inputs.items():
        if name not in ("video", "audio"):
            feed[name] = value
    out = parts.head(feed)
    for runner, keys, _ in plans:  # each ring keeps its last window's frames
        last = set(keys[-1]) if keys else set()
        for k in [k for k in runner.ring if k not in last]:
            del runner.ring[k]
    return out

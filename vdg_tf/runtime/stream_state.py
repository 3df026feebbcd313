"""Streaming a causal video encoder: each frame encoded once, carrying the motion conv's state.

`model.video_frames: causal` reads each frame with the two before it (MoViNet's causal conv);
its `encode_frame` takes a chunk of consecutive frames and `motion_state`, the first
block's maps of the frames before the chunk, and returns their embeddings and the state
after them (`vdg_tf/export/incremental.py`). `CausalRunner` keeps that state between
windows, like MoViNet's stream buffers: a window at stride = window/4 runs `encode_frame`
on its new frames only, from the state the window before left, then `head` on the window's
T - 2 embeddings (its first two frames are context). No running pool sums are needed:
the temporal conv and mean over a window's embeddings are in `head`, which re-runs each
window on the cached embeddings.

Reuse is exact, as in `IncrementalRunner`: an embedding is taken from the ring only when
the frame's sample time matches and its pixels and the pixels of the frames before it it
read are byte for byte those encoded; the state is carried on only when the chunk's
context frames are the last ones encoded. Anything else (a stream's start, a jump, a
stride that is not a whole number of frame steps) restarts from a zero state two frames
earlier, whose embeddings are dropped, so every window's output equals the whole model's.

Example:

    runner = make_runner(LiteRTParts("model.tflite"), cfg.data.video)
    probs = runner.outputs(inputs, windows)   # [B, C]
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from vdg_tf.config import VideoSpec
from vdg_tf.export.incremental import HEAD_AUDIO, HEAD_FRAMES
from vdg_tf.media.windows import Window
from vdg_tf.runtime.incremental import IncrementalRunner, KerasParts, LiteRTParts, frame_keys


class CausalRunner:
    """Window outputs of a causal encoder from its stream state (see the module docstring).

    `encoded` counts the frames `encode_frame` has run on (restarts' context frames too),
    `reused` the embeddings taken from the ring, `restarts` the chunks begun from zero state.

    Args:
        parts: the signatures (`LiteRTParts` or `KerasParts` of a causal model).
        spec: the model's `data.video` (how frames were sampled from each window).
    """

    def __init__(self, parts: KerasParts | LiteRTParts, spec: VideoSpec):
        if parts.state_shape is None:
            raise ValueError("CausalRunner: the model's encode_frame carries no motion_state")
        self.parts, self.spec = parts, spec
        self.context = int(parts.state_shape[0])
        self.ring: OrderedDict[int, tuple[bytes, np.ndarray]] = OrderedDict()
        # the last `context` frames encoded in order, as (key, pixels), and the state after them
        self.chain: tuple[list[tuple[int, bytes]], np.ndarray] | None = None
        self.encoded = self.reused = self.restarts = 0

    def reset(self) -> None:
        """Forget cached frames and the state (a new source starts)."""
        self.ring.clear()
        self.chain = None

    def outputs(self, inputs: dict[str, np.ndarray], windows: list[Window]) -> np.ndarray:
        """Outputs [B, ...] of a batch of consecutive windows of one source: `inputs` are
        their model inputs (`video` [B, T, S, S, 3] ...), `windows` the decoded windows."""
        video = inputs["video"]
        feed = {HEAD_FRAMES: np.stack([self._window(video[i], w) for i, w in enumerate(windows)])}
        if self.parts.has_audio:
            feed[HEAD_AUDIO] = self.parts.encode_audio(inputs["audio"])
        for name, value in inputs.items():
            if name not in ("video", "audio"):
                feed[name] = value
        return self.parts.head(feed)

    def _window(self, video: np.ndarray, window: Window) -> np.ndarray:
        """The head's embeddings [T - context, D] of one window, encoding what is missing."""
        keys, c = frame_keys(window, self.spec), self.context
        pixels = [window.frames[t].tobytes() for t in range(len(keys))]
        seen = [b"".join(pixels[max(t - c, 0) : t + 1]) for t in range(len(keys))]
        first = next(
            (t for t in range(c, len(keys)) if (self.ring.get(keys[t]) or (None,))[0] != seen[t]),
            None,
        )
        if first is not None:
            start, state = self._start(keys, pixels, first)
            emb, after = self.parts.encode_chunk(video[start:].astype(np.float32), state)
            self.encoded += len(keys) - start
            for t in range(first, len(keys)):
                self.ring[keys[t]] = (seen[t], emb[t - start])
            self.chain = ([(keys[t], pixels[t]) for t in range(len(keys) - c, len(keys))], after)
        self.reused += (len(keys) if first is None else first) - c
        out = np.stack([self.ring[keys[t]][1] for t in range(c, len(keys))])
        keep = set(keys)
        for k in [k for k in self.ring if k not in keep]:  # keep this window's frames
            del self.ring[k]
        return out

    def _start(self, keys: list[int], pixels: list[bytes], first: int) -> tuple[int, np.ndarray]:
        """Where a chunk ending the window starts and the state before it: at `first` from
        the chain's state when the chain's frames are the ones just before it; else
        `context` frames earlier from zero state (their embeddings are not kept)."""
        c = self.context
        before = [(keys[t], pixels[t]) for t in range(first - c, first)]
        if self.chain is not None and self.chain[0] == before:
            return first, self.chain[1]
        self.restarts += 1
        return first - c, np.zeros(self.parts.state_shape, np.float32)


def make_runner(
    parts: KerasParts | LiteRTParts, spec: VideoSpec
) -> IncrementalRunner | CausalRunner:
    """The runner for `parts`: `CausalRunner` when its `encode_frame` carries a state,
    else the stateless ring buffer `IncrementalRunner`."""
    if getattr(parts, "state_shape", None) is not None:
        return CausalRunner(parts, spec)
    return IncrementalRunner(parts, spec)

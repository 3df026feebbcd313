"""Every frame of a video, with its time, as a per-frame model sees it (and, when asked, as
it was): what detection runs on, frame by frame.

Frames are resized exactly as training resizes them (`media.convert.resize`: short side +
centre crop, long side + black pad, or the whole frame stretched: detection's), so a box a detector finds in that square view maps
back to the original frame with `view_to_frame` (and `frame_to_view` is the inverse used
to compare with annotations given on the original frame).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from vdg_tf.media.convert import resize, thread_scaler
from vdg_tf.media.decode import DecodeError, require_video


@dataclass
class Frame:
    """One decoded frame: `t` seconds from the start, `view` uint8 [S, S, 3] (the model's
    input), `width`/`height` of the original, and `image` uint8 [H, W, 3] (the original,
    RGB) when it was asked for."""

    t: float
    view: np.ndarray
    width: int
    height: int
    image: np.ndarray | None = None


def iter_frames(
    path: str | Path, size: int, mode: str = "crop", *, original: bool = False
) -> Iterator[Frame]:
    """Every frame of `path` in order; raises DecodeError naming the file when it cannot
    be opened. `original`: also keep each frame as it was (for drawing on it)."""
    path = str(path)
    if not Path(path).is_file():
        raise DecodeError(path, "file not found")
    scaler = thread_scaler()
    try:
        with av.open(path) as container:
            stream = require_video(container, path)
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                t = float(frame.time) if frame.time is not None else 0.0
                yield Frame(
                    t,
                    resize(frame, size, mode, scaler),
                    frame.width,
                    frame.height,
                    frame.to_ndarray(format="rgb24") if original else None,
                )
    except DecodeError:
        raise
    except (av.FFmpegError, OSError, ValueError) as e:
        raise DecodeError(path, f"cannot decode: {e}") from None


def _placement(width: int, height: int, size: int, mode: str) -> tuple[float, float, float]:
    """(scale, x offset, y offset) of the original frame inside the square view, in view
    pixels (negative offsets: the crop cut that much away); `stretch` maps each axis alone,
    so relative boxes need no change (scale 1 marks it)."""
    if mode == "stretch":  # the whole frame: relative boxes are the same boxes
        return 1.0, 0.0, 0.0
    scale = size / min(width, height) if mode == "crop" else size / max(width, height)
    nw, nh = max(1, round(width * scale)), max(1, round(height * scale))
    if mode == "crop":
        return scale, -float((nw - size) // 2), -float((nh - size) // 2)
    return scale, float((size - nw) // 2), float((size - nh) // 2)


def view_to_frame(box: list[float], width: int, height: int, size: int, mode: str) -> list[float]:
    """A relative `[x1, y1, x2, y2]` box of the square view -> relative to the original
    frame, clipped to it (a crop's box may reach past the view's edge only by rounding)."""
    if mode == "stretch":
        return [min(max(float(v), 0.0), 1.0) for v in box]
    scale, ox, oy = _placement(width, height, size, mode)
    x1, y1, x2, y2 = (float(v) * size for v in box)
    out = [(x1 - ox) / scale / width, (y1 - oy) / scale / height,
           (x2 - ox) / scale / width, (y2 - oy) / scale / height]  # fmt: skip
    return [min(max(v, 0.0), 1.0) for v in out]


def frame_to_view(box: list[float], width: int, height: int, size: int, mode: str) -> list[float]:
    """A relative `[x1, y1, x2, y2]` box of the original frame -> relative to the view
    (not clipped: a crop may cut part of it away)."""
    if mode == "stretch":
        return [float(v) for v in box]
    scale, ox, oy = _placement(width, height, size, mode)
    x1, y1, x2, y2 = box
    return [(x1 * width * scale + ox) / size, (y1 * height * scale + oy) / size,
            (x2 * width * scale + ox) / size, (y2 * height * scale + oy) / size]  # fmt: skip

"""Draw boxes and labels on frames, and write them as a video a person can look at.

Boxes are drawn with Pillow (outlines, a filled label tag with the label, score and track
id) when it is installed, else with numpy (outlines and a plain tag, no text). The video
is encoded by PyAV (H.264 in an mp4, the container following the suffix) under a temp name
and renamed when complete, so a stopped run never leaves half a file under the real name.
"""

from __future__ import annotations

import contextlib
import zlib
from pathlib import Path

import av
import numpy as np

from vdg_tf.files import atomic_path

# colours people tell apart (Tableau 10), one per label or track
PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]  # fmt: skip


CONTAINERS = {".mp4": "mp4", ".mkv": "matroska", ".mov": "mov", ".webm": "webm"}


def colour(box: dict) -> tuple[int, int, int]:
    """A box's colour: by its track id when it has one, else by its label (stable across
    runs: a hash of the name, not Python's salted one)."""
    key = box.get("track")
    key = key if key is not None else zlib.crc32(str(box.get("label", "")).encode())
    return PALETTE[int(key) % len(PALETTE)]


def caption(box: dict) -> str:
    """`label 0.87 #3`: label, score, track id where known."""
    text = f"{box.get('label', '')} {box.get('score', 0.0):.2f}"
    return f"{text} #{box['track']}" if box.get("track") is not None else text


def _pixels(box: list[float], width: int, height: int) -> tuple[int, int, int, int]:
    x1, y1, x2, y2 = box
    return (int(round(x1 * (width - 1))), int(round(y1 * (height - 1))),
            int(round(x2 * (width - 1))), int(round(y2 * (height - 1))))  # fmt: skip


def draw_boxes(image: np.ndarray, boxes: list[dict]) -> np.ndarray:
    """A copy of uint8 RGB `image` [H, W, 3] with each box ([x1, y1, x2, y2] relative)
    outlined in its colour and tagged with its caption."""
    height, width = image.shape[:2]
    line = max(2, round(min(height, width) / 160))
    try:
        from PIL import Image, ImageDraw
    except ImportError:
        return _draw_numpy(image, boxes, line)
    picture = Image.fromarray(np.ascontiguousarray(image))
    pen = ImageDraw.Draw(picture)
    for box in boxes:
        x1, y1, x2, y2 = _pixels(box["box"], width, height)
        pen.rectangle((x1, y1, x2, y2), outline=colour(box), width=line)
        text = caption(box)
        left, top, right, bottom = pen.textbbox((0, 0), text)
        ty = y1 - (bottom - top) - 4 if y1 - (bottom - top) - 4 >= 0 else y1 + line
        pen.rectangle((x1, ty, x1 + right - left + 4, ty + bottom - top + 4), fill=colour(box))
        pen.text((x1 + 2 - left, ty + 2 - top), text, fill=(255, 255, 255))
    return np.asarray(picture)


def _draw_numpy(image: np.ndarray, boxes: list[dict], line: int) -> np.ndarray:
    """Outlines and a small filled tag at each box's top-left corner (no text)."""
    out = np.array(image, copy=True)
    height, width = out.shape[:2]
    for box in boxes:
        x1, y1, x2, y2 = _pixels(box["box"], width, height)
        c = colour(box)
        out[y1 : y1 + line, x1 : x2 + 1] = c
        out[max(y2 - line + 1, 0) : y2 + 1, x1 : x2 + 1] = c
        out[y1 : y2 + 1, x1 : x1 + line] = c
        out[y1 : y2 + 1, max(x2 - line + 1, 0) : x2 + 1] = c
        out[max(y1 - 3 * line, 0) : y1, x1 : min(x1 + 6 * line, width)] = c
    return out


class BoxVideoWriter:
    """Frames with boxes drawn, encoded into `path` (H.264 unless the suffix says another
    container); written under a temp name and renamed on `close` (removed on an error).

    Example:
      with BoxVideoWriter("out.mp4", fps=25) as w:
          w.write(frame_rgb, boxes)
    """

    def __init__(self, path: str | Path, fps: float):
        self.path, self.fps = Path(path), fps
        self.format = CONTAINERS.get(self.path.suffix.lower())
        if self.format is None:
            raise ValueError(f"--draw {self.path}: give a .mp4, .mkv, .mov or .webm file")
        self._stack = contextlib.ExitStack()
        self._container = None
        self._stream = None
        self.frames = 0

    def __enter__(self) -> BoxVideoWriter:
        tmp = self._stack.enter_context(atomic_path(self.path))
        self._container = av.open(str(tmp), "w", format=self.format)
        return self

    def write(self, image: np.ndarray, boxes: list[dict]) -> None:
        """One frame (uint8 RGB [H, W, 3], the original size) with `boxes` drawn."""
        if self._stream is None:
            from fractions import Fraction

            codec = "libvpx-vp9" if self.path.suffix.lower() == ".webm" else "h264"
            rate = Fraction(self.fps).limit_denominator(1001)
            self._stream = self._container.add_stream(codec, rate=rate)
            # 4:2:0 needs even sides: an odd last row or column is dropped
            self._stream.height, self._stream.width = (d - d % 2 for d in image.shape[:2])
            self._stream.pix_fmt = "yuv420p"
            self._stream.options = {"preset": "veryfast", "crf": "20"} if codec == "h264" else {}
        drawn = draw_boxes(image, boxes)[: self._stream.height, : self._stream.width]
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(drawn), format="rgb24")
        self._container.mux(self._stream.encode(frame))
        self.frames += 1

    def __exit__(self, kind, value, tb) -> None:
        """Finish the file and rename it into place; after an error (or no frame at all)
        remove the temp file instead."""
        try:
            if self._stream is not None and kind is None:
                self._container.mux(self._stream.encode())
            self._container.close()
            if kind is None and self.frames == 0:
                raise ValueError(f"--draw {self.path}: no frame to write")
        except BaseException as e:
            self._stack.__exit__(type(e), e, e.__traceback__)
            raise
        self._stack.__exit__(kind, value, tb)

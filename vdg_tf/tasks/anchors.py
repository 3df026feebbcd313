"""Anchor boxes and the SSD box coder shared by the detection head, its loss and its export.

The coder is the TF Object Detection API's `FasterRcnnBoxCoder` with scales (10, 10, 5, 5),
the one `TFLite_Detection_PostProcess` decodes with, so a box encoding trained here
decodes to the same box in Keras, in LiteRT and in MediaPipe's ObjectDetector.

Layout (the contract between head, loss and export):
- anchors are `[A, 4]` float32 `(ycenter, xcenter, h, w)` relative to the frame (0-1),
  level by level in `strides` order, then row-major over the level's grid (y, then x),
  then one per aspect ratio: the order a `[B, fh, fw, k * 4]` conv output has once reshaped
  to `[B, fh * fw * k, 4]`;
- boxes are relative `[ymin, xmin, ymax, xmax]` on the coder side (TFLite's order); the
  manifest's `[x1, y1, x2, y2]` converts with `xyxy_to_yxyx`.

Example:
  spec = AnchorSpec(image_size=(96, 128), strides=(8, 16, 32), sizes=(16, 32, 64))
  anchors = anchor_boxes(spec)                     # [A, 4]
  enc = encode(np.array([[0.1, 0.2, 0.5, 0.6]]), anchors[:1])
  decode(enc, anchors[:1])                         # [[0.1, 0.2, 0.5, 0.6]]
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

BOX_SCALES = (10.0, 10.0, 5.0, 5.0)  # y, x, h, w: what TFLite_Detection_PostProcess uses


@dataclass(frozen=True)
class AnchorSpec:
    """Where anchors sit: the input frame size, one stride and base size (pixels) per
    feature level, and the aspect ratios (w / h) at every cell."""

    image_size: tuple[int, int]  # (height, width) of the frame the model sees
    strides: tuple[int, ...] = (8, 16, 32)
    sizes: tuple[float, ...] = (16.0, 32.0, 64.0)
    aspect_ratios: tuple[float, ...] = (1.0, 2.0, 0.5)

    def __post_init__(self) -> None:
        if len(self.strides) != len(self.sizes):
            raise ValueError(f"anchors: {len(self.strides)} strides but {len(self.sizes)} sizes")

    @property
    def per_cell(self) -> int:
        """Anchors at each grid cell (the head's `k`)."""
        return len(self.aspect_ratios)

    def grid(self, level: int) -> tuple[int, int]:
        """(rows, columns) of the feature map at `level` ('same' padding, ceil)."""
        h, w = self.image_size
        stride = self.strides[level]
        return math.ceil(h / stride), math.ceil(w / stride)

    def to_dict(self) -> dict:
        """JSON-ready form (what a run folder stores to rebuild the anchors)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> AnchorSpec:
        """Inverse of `to_dict`."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def anchor_boxes(spec: AnchorSpec) -> np.ndarray:
    """All anchors of `spec` as `[A, 4]` float32 `(ycenter, xcenter, h, w)`, relative."""
    height, width = spec.image_size
    levels = []
    for level, (stride, size) in enumerate(zip(spec.strides, spec.sizes, strict=True)):
        rows, cols = spec.grid(level)
        yc = (np.arange(rows) + 0.5) * stride / height
        xc = (np.arange(cols) + 0.5) * stride / width
        ratios = np.asarray(spec.aspect_ratios, np.float64)
        h = size / np.sqrt(ratios) / height
        w = size * np.sqrt(ratios) / width
        y, x, k = np.meshgrid(yc, xc, np.arange(len(ratios)), indexing="ij")
        levels.append(np.stack([y, x, h[k], w[k]], axis=-1).reshape(-1, 4))
    return np.concatenate(levels).astype(np.float32)


def xyxy_to_yxyx(boxes: np.ndarray) -> np.ndarray:
    """Manifest `[x1, y1, x2, y2]` -> coder `[ymin, xmin, ymax, xmax]` (either way round)."""
    boxes = np.asarray(boxes, np.float32)
    return boxes[..., [1, 0, 3, 2]]


def encode(boxes: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """Box encodings `(ty, tx, th, tw)` of `[..., 4]` yxyx boxes against matching anchors."""
    boxes = np.asarray(boxes, np.float32)
    h = np.maximum(boxes[..., 2] - boxes[..., 0], 1e-8)
    w = np.maximum(boxes[..., 3] - boxes[..., 1], 1e-8)
    yc = boxes[..., 0] + h / 2
    xc = boxes[..., 1] + w / 2
    ay, ax, ah, aw = (anchors[..., i] for i in range(4))
    sy, sx, sh, sw = BOX_SCALES
    return np.stack(
        [sy * (yc - ay) / ah, sx * (xc - ax) / aw, sh * np.log(h / ah), sw * np.log(w / aw)],
        axis=-1,
    ).astype(np.float32)


def decode(encodings: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """yxyx boxes of `[..., A, 4]` encodings: the inverse of `encode`."""
    enc = np.asarray(encodings, np.float32)
    ay, ax, ah, aw = (anchors[..., i] for i in range(4))
    sy, sx, sh, sw = BOX_SCALES
    yc = enc[..., 0] / sy * ah + ay
    xc = enc[..., 1] / sx * aw + ax
    h = np.exp(enc[..., 2] / sh) * ah
    w = np.exp(enc[..., 3] / sw) * aw
    return np.stack([yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2], axis=-1)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU `[N, M]` of yxyx (or xyxy: the formula is symmetric) boxes."""
    a = np.asarray(a, np.float32)[:, None, :]
    b = np.asarray(b, np.float32)[None, :, :]
    inter_h = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    inter_w = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = inter_h * inter_w
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / np.maximum(area_a + area_b - inter, 1e-8)


def corners(anchors: np.ndarray) -> np.ndarray:
    """Anchors as yxyx boxes (what matching by IoU compares against)."""
    yc, xc, h, w = (anchors[..., i] for i in range(4))
    return np.stack([yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2], axis=-1)

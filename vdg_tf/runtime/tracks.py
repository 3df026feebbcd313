"""Link boxes across frames into tracks: Hungarian assignment on IoU (scipy).

Each live track predicts where its box is next (its last box moved by its last step:
constant velocity), and the new frame's boxes are assigned to tracks by
`scipy.optimize.linear_sum_assignment` on 1 - IoU between prediction and box, only between
boxes of the same label and only where the IoU reaches `iou_threshold`. The prediction is
what keeps two objects that cross apart: where their boxes overlap, each track still
expects its own object on its own side. A box left unassigned starts a new track; a track
with no box for more than `max_missed` frames ends, and its id is never reused.

Example:
  tracker = IoUTracker()
  for frame_boxes in frames:              # [{"box": [x1, y1, x2, y2], "label", "score"}]
      frame_boxes = tracker.update(frame_boxes)   # each box gains "track": int
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from vdg_tf.tasks.anchors import iou


@dataclass
class _Track:
    id: int
    label: str
    box: np.ndarray  # the last box seen, [x1, y1, x2, y2]
    step: np.ndarray  # its move over the last frame it was seen in
    missed: int = 0

    def predicted(self) -> np.ndarray:
        """Where the box should be now: moved by its last step once per frame since."""
        return self.box + self.step * (self.missed + 1)


class IoUTracker:
    """Track ids for per-frame boxes (see the module docstring).

    Args:
      iou_threshold: the least IoU between a track's predicted box and a box to link them.
      max_missed: frames a track may go unseen before it ends.
    """

    def __init__(self, iou_threshold: float = 0.3, max_missed: int = 5):
        if not 0.0 < iou_threshold <= 1.0:
            raise ValueError(f"track IoU threshold: must be in (0, 1], got {iou_threshold}")
        if max_missed < 0:
            raise ValueError(f"track max missed frames: must be >= 0, got {max_missed}")
        self.iou_threshold, self.max_missed = iou_threshold, max_missed
        self.tracks: list[_Track] = []
        self.next_id = 1

    def update(self, boxes: list[dict]) -> list[dict]:
        """The frame's boxes, each with a `track` id (copies; the input is not changed)."""
        out = [dict(b) for b in boxes]
        pairs = self._assign(out)
        seen = set()
        for ti, bi in pairs:
            track, box = self.tracks[ti], np.asarray(out[bi]["box"], np.float64)
            track.step = (box - track.box) / (track.missed + 1)
            track.box, track.missed = box, 0
            out[bi]["track"] = track.id
            seen.add(ti)
        for ti, track in enumerate(self.tracks):
            if ti not in seen:
                track.missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        for b in out:
            if "track" not in b:
                box = np.asarray(b["box"], np.float64)
                self.tracks.append(_Track(self.next_id, b["label"], box, np.zeros(4)))
                b["track"] = self.next_id
                self.next_id += 1
        return out

    def _assign(self, boxes: list[dict]) -> list[tuple[int, int]]:
        """(track index, box index) pairs of the best total IoU, same label, IoU high enough."""
        if not self.tracks or not boxes:
            return []
        predicted = np.stack([t.predicted() for t in self.tracks])
        found = np.asarray([b["box"] for b in boxes], np.float64)
        overlap = iou(predicted, found).astype(np.float64)
        same = np.array([[t.label == b["label"] for b in boxes] for t in self.tracks])
        overlap = np.where(same, overlap, 0.0)
        rows, cols = linear_sum_assignment(1.0 - overlap)
        return [(r, c) for r, c in zip(rows, cols, strict=True)
                if overlap[r, c] >= self.iou_threshold]  # fmt: skip

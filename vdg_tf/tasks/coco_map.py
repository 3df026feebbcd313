"""COCO mAP of per-frame box predictions, computed by pycocotools' `COCOeval`.

Detection is judged the way every published detector is: COCO's mean average precision
over IoU thresholds 0.50:0.95, plus AP at 0.50 and 0.75 and AP per class. The average
precision itself is pycocotools' (101-point interpolated precision, greedy matching by
score); this module only turns vdg_tf's boxes into COCO's in-memory records, so figures
here compare with figures anywhere else.

Boxes are relative `[x1, y1, x2, y2]` in 0-1 of the frame, labels are strings; COCO wants
absolute `[x, y, w, h]` pixels and integer category ids, so each frame's size converts
them (IoU does not depend on it; COCO's small/medium/large areas do). Nothing touches the
disk, and pycocotools' progress prints (`loading annotations...`, the summary table) are
captured and logged at DEBUG so they never reach the caller's stdout.

Example:
  gt = [[{"box": [0.1, 0.1, 0.5, 0.5], "label": "cat"}]]
  pred = [[{"box": [0.1, 0.1, 0.5, 0.5], "label": "cat", "score": 0.9}]]
  coco_map(gt, pred, frame_size=(640, 480))["map"]  # 1.0
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
from collections.abc import Mapping, Sequence

import numpy as np

log = logging.getLogger(__name__)

FrameSize = tuple[int, int]  # (width, height) in pixels


def coco_map(
    ground_truth: Sequence[Sequence[Mapping]],
    predictions: Sequence[Sequence[Mapping]],
    *,
    frame_size: FrameSize | Sequence[FrameSize] = (640, 480),
    labels: Sequence[str] | None = None,
    max_detections: int = 100,
) -> dict:
    """COCO mAP of `predictions` against `ground_truth`, frame by frame.

    Args:
      ground_truth: per frame, a list of `{"box": [x1, y1, x2, y2], "label": str}` (0-1
        of the frame). A frame with no box is a background frame: every prediction on it
        is a false positive.
      predictions: per frame (same order and length), a list of `{"box", "label",
        "score"}`.
      frame_size: (width, height) of every frame, or one (width, height) per frame.
      labels: the class vocabulary; None takes the labels the boxes name. A label
        outside an explicit vocabulary is an error (a typo would otherwise vanish).
      max_detections: COCO's per-frame cap on predictions (highest scores kept).

    Returns:
      {"map", "map_50", "map_75", "per_class_ap": {label: ap}}: AP in 0-1, None where
      it is undefined (no ground-truth box at all, or none of that class).
    """
    if len(ground_truth) != len(predictions):
        raise ValueError(
            f"predictions: {len(predictions)} frames, ground truth has {len(ground_truth)}"
        )
    sizes = _frame_sizes(frame_size, len(ground_truth))
    vocab = _vocabulary(ground_truth, predictions, labels)
    ids = {name: i + 1 for i, name in enumerate(vocab)}  # COCO category ids start at 1
    gt_anns = _annotations(ground_truth, sizes, ids, "ground_truth", scored=False)
    dt_anns = _annotations(predictions, sizes, ids, "predictions", scored=True)
    if not gt_anns:
        return {"map": None, "map_50": None, "map_75": None, "per_class_ap": dict.fromkeys(vocab)}
    images = [{"id": i + 1, "width": w, "height": h} for i, (w, h) in enumerate(sizes)]
    categories = [{"id": ids[n], "name": n} for n in vocab]
    return _evaluate(images, categories, gt_anns, dt_anns, vocab, max_detections)


def _evaluate(
    images: list[dict],
    categories: list[dict],
    gt_anns: list[dict],
    dt_anns: list[dict],
    vocab: list[str],
    max_detections: int,
) -> dict:
    """Run COCOeval on in-memory records with its prints captured (logged at DEBUG)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        gt, dt = COCO(), COCO()
        gt.dataset = {"images": images, "categories": categories, "annotations": gt_anns}
        dt.dataset = {"images": images, "categories": categories, "annotations": dt_anns}
        gt.createIndex()
        dt.createIndex()
        ev = COCOeval(gt, dt, iouType="bbox")
        ev.params.maxDets = [1, 10, max_detections]
        ev.evaluate()
        ev.accumulate()  # (summarize() would only print what is read off ev.eval below)
    if captured.getvalue().strip():
        log.debug("pycocotools:\n%s", captured.getvalue().rstrip())
    # precision: [iou threshold, recall point, category, area range, max dets]; -1 = no gt
    precision = ev.eval["precision"][:, :, :, 0, -1]
    thresholds = ev.params.iouThrs
    per_class = {}
    for k, cat_id in enumerate(ev.params.catIds):
        per_class[vocab[cat_id - 1]] = _mean_ap(precision[:, :, k])
    return {
        "map": _mean_ap(precision),
        "map_50": _mean_ap(precision[np.isclose(thresholds, 0.5)]),
        "map_75": _mean_ap(precision[np.isclose(thresholds, 0.75)]),
        "per_class_ap": per_class,
    }


def _mean_ap(precision: np.ndarray) -> float | None:
    """COCO's summary: the mean of the defined (> -1) interpolated precisions."""
    valid = precision[precision > -1]
    return float(valid.mean()) if valid.size else None


def _frame_sizes(frame_size: FrameSize | Sequence[FrameSize], frames: int) -> list[FrameSize]:
    """One (width, height) per frame, each a pair of positive numbers."""
    if len(frame_size) == 2 and all(_finite(v) for v in frame_size):
        sizes = [tuple(frame_size)] * frames
    else:
        sizes = [tuple(s) for s in frame_size]
        if len(sizes) != frames:
            raise ValueError(f"frame_size: {len(sizes)} sizes for {frames} frames")
    for i, size in enumerate(sizes):
        if len(size) != 2 or not all(_finite(v) and v > 0 for v in size):
            raise ValueError(f"frame_size: frame {i} size {size} is not (width, height) > 0")
    return [(float(w), float(h)) for w, h in sizes]


def _vocabulary(
    ground_truth: Sequence[Sequence[Mapping]],
    predictions: Sequence[Sequence[Mapping]],
    labels: Sequence[str] | None,
) -> list[str]:
    """The class names in category-id order: `labels`, or every label the boxes name."""
    if labels is not None:
        return list(labels)
    names = {b.get("label") for frame in (*ground_truth, *predictions) for b in frame}
    return sorted(str(n) for n in names if n is not None)


def _annotations(
    frames: Sequence[Sequence[Mapping]],
    sizes: list[FrameSize],
    ids: dict[str, int],
    what: str,
    scored: bool,
) -> list[dict]:
    """COCO annotation records (absolute x, y, w, h) of every box, checked one by one."""
    anns = []
    for f, (boxes, (width, height)) in enumerate(zip(frames, sizes, strict=True)):
        for b, item in enumerate(boxes):
            where = f"{what}: frame {f} box {b}"
            x1, y1, x2, y2 = _box(item.get("box"), where)
            label = item.get("label")
            if label not in ids:
                known = ", ".join(list(ids)[:8]) + (" ..." if len(ids) > 8 else "")
                raise ValueError(f"{where}: label {label!r} not in labels (known: {known})")
            w, h = (x2 - x1) * width, (y2 - y1) * height
            ann = {
                "id": len(anns) + 1,
                "image_id": f + 1,
                "category_id": ids[label],
                "bbox": [x1 * width, y1 * height, w, h],
                "area": w * h,
                "iscrowd": 0,
            }
            if scored:
                score = item.get("score")
                if isinstance(score, bool) or not _finite(score):
                    raise ValueError(f"{where}: score {score!r} is not a finite number")
                ann["score"] = float(score)
            anns.append(ann)
    return anns


def _box(box: object, where: str) -> tuple[float, float, float, float]:
    """A relative [x1, y1, x2, y2] with x1 < x2 and y1 < y2, as floats."""
    if not isinstance(box, (list, tuple)) or len(box) != 4 or not all(_finite(v) for v in box):
        raise ValueError(f"{where}: box {box!r} is not four finite numbers [x1, y1, x2, y2]")
    x1, y1, x2, y2 = (float(v) for v in box)
    if x2 <= x1 or y2 <= y1:
        raise ValueError(f"{where}: box {list(box)} needs x1 < x2 and y1 < y2")
    return x1, y1, x2, y2


def _finite(value: object) -> bool:
    """Whether `value` is a real number (not a bool, not NaN or infinite)."""
    return (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )

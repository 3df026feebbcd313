"""COCO mAP of a detector (a detection run in Keras, or any of its `.tflite` exports in
LiteRT) on the annotated frames of a manifest: how an export is verified.

Each row's annotated times (`times`, else the times its boxes name) pick the frame shown
at that time (the last frame at or before it, as training samples it); the detector runs
on that frame as `vdg predict` runs it (`runtime/detect.py`, boxes back on the original
frame) and pycocotools scores the boxes against the row's good boxes (`tasks/coco_map.py`).
A bad box is left out of the truth and counted by reason; a video that does not decode is
skipped and named. The detector's own time per frame (LiteRT or Keras, without decoding)
is measured on the same frames.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from pathlib import Path

from vdg_tf.bundle import Bundle
from vdg_tf.manifest import ClipRow, read_manifest
from vdg_tf.media.decode import DecodeError
from vdg_tf.media.frames import Frame, iter_frames
from vdg_tf.runtime.detect import BoxDetector
from vdg_tf.tasks.boxes import box_problem
from vdg_tf.tasks.coco_map import coco_map

MAP_SCORE = 0.05  # boxes kept for mAP (COCO practice: low, so recall is not cut)


def box_map(
    model: str | Path | Bundle | BoxDetector,
    data: str | Path,
    *,
    trust_model: bool = False,
    max_frames: int | None = None,
) -> dict:
    """mAP of `model` on the annotated frames of manifest `data`.

    Returns:
      {"map", "map_50", "map_75", "per_class_ap", "frames", "ms_per_frame" (median),
       "skipped_boxes", "skipped_box_reasons", "skipped", "skipped_files"}
    """
    det = model if isinstance(model, BoxDetector) else BoxDetector(
        model, trust_model=trust_model, score_threshold=MAP_SCORE)  # fmt: skip
    rows, problems = read_manifest(data)
    truth, found, sizes, ms = [], [], [], []
    reasons: Counter = Counter()
    skipped = list(problems)
    for row in rows:
        if max_frames is not None and len(truth) >= max_frames:
            break
        try:
            for frame, boxes in _annotated_frames(row, det, reasons):
                start = time.perf_counter()
                found.append(det.frame_boxes(frame))
                ms.append((time.perf_counter() - start) * 1000)
                truth.append(boxes)
                sizes.append((frame.width, frame.height))
        except DecodeError as e:
            skipped.append(str(e))
    if not truth:
        raise ValueError(f"{data}: no annotated frame to score (rows need boxes or times)")
    r = coco_map(truth, found, frame_size=sizes, labels=det.labels)
    return {
        "map": r["map"], "map_50": r["map_50"], "map_75": r["map_75"],
        "per_class_ap": r["per_class_ap"], "frames": len(truth),
        "ms_per_frame": statistics.median(ms),
        "skipped_boxes": sum(reasons.values()), "skipped_box_reasons": dict(reasons),
        "skipped": len(skipped), "skipped_files": skipped,
    }  # fmt: skip


def _annotated_frames(row: ClipRow, det: BoxDetector, reasons: Counter):
    """(frame, good boxes) at each annotated time of `row`."""
    truth: dict[float, list[dict]] = {}
    for t, box, label in row.boxes or ():
        known = label if label in det.labels else None
        problem = box_problem(box, t, None, known)
        if problem is not None:
            reasons[problem[0]] += 1
            continue
        truth.setdefault(float(t), []).append({"box": [float(v) for v in box], "label": label})
    times = sorted(set(row.times or ()) | set(truth))
    if not times:
        return
    frames = list(iter_frames(row.video, det.size, det.resize))
    if not frames:
        raise DecodeError(row.video, "no frame decoded")
    for t in times:
        yield _shown_at(frames, t), truth.get(t, [])


def _shown_at(frames: list[Frame], t: float) -> Frame:
    """The frame on screen at time `t`: the last one starting at or before it."""
    shown = frames[0]
    for f in frames:
        if f.t > t + 1e-3:
            break
        shown = f
    return shown

"""Temporal-localisation mAP: ActivityNet's official detection evaluator, without pandas.

THUMOS14 and ActivityNet score "when does each action happen" as mean average precision
at temporal-IoU thresholds. This module computes it exactly as ActivityNet's
`Evaluation/eval_detection.py` (`compute_average_precision_detection`, `segment_iou` and
`interpolated_prec_rec` in activitynet/ActivityNet, MIT licence) does, so numbers here
are comparable with published ones:

- per class, predictions are sorted by score (highest first, ties in the order of the
  official `argsort()[::-1]`);
- at each tIoU threshold each prediction takes the unmatched ground-truth segment of its
  video with the highest tIoU if that tIoU is >= the threshold (a segment already taken
  is passed over for the next best); otherwise it is a false positive;
- AP is VOC-style interpolated (precision made monotone, summed over recall steps);
- mAP at a threshold is the mean over the classes that have ground truth; "average mAP"
  is the mean of mAP over tIoU 0.5:0.05:0.95 (ActivityNet), and THUMOS14 reports
  tIoU 0.3, 0.4, 0.5, 0.6, 0.7.

The official code depends on pandas and joblib (and MMAction2's copy on torch/mmcv); this
one is numpy only and imports no TensorFlow, so evaluation runs anywhere.

Records are mappings: ground truth `{"video", "start", "end", "label"}`, predictions the
same plus `"score"` (`"source"` is read where `"video"` is absent, so the
`{source, start, end, label, score}` records of `vdg_tf.runtime.segments` go in as they
are). `flatten_segments` turns manifest rows with `segments` into ground-truth records.

Example:
  gt = [{"video": "a.mp4", "start": 2.0, "end": 6.0, "label": "jump"}]
  pred = [{"source": "a.mp4", "start": 2.5, "end": 6.0, "label": "jump", "score": 0.9}]
  evaluate_segments(gt, pred)["tmap_50"]  # 1.0 (tIoU 3.5 / 4 = 0.875)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

ACTIVITYNET_TIOUS = np.linspace(0.5, 0.95, 10)  # the official default, float for float
THUMOS_TIOUS = np.array([0.3, 0.4, 0.5, 0.6, 0.7])


def segment_iou(target: Sequence[float], candidates: np.ndarray) -> np.ndarray:
    """Temporal IoU of one `[start, end]` segment with each row of `candidates` [N, 2].

    Intersection clipped at 0 over the union of the two lengths, as the official code.
    """
    candidates = np.asarray(candidates, dtype=float).reshape(-1, 2)
    lo = np.maximum(target[0], candidates[:, 0])
    hi = np.minimum(target[1], candidates[:, 1])
    inter = (hi - lo).clip(0)
    union = (candidates[:, 1] - candidates[:, 0]) + (target[1] - target[0]) - inter
    return inter.astype(float) / union


def interpolated_ap(precision: np.ndarray, recall: np.ndarray) -> float:
    """VOC 2011 interpolated AP: precision made non-increasing from the right, then summed
    over the points where recall changes (recall padded with 0 and 1, precision with 0)."""
    mprec = np.hstack([[0.0], precision, [0.0]])
    mrec = np.hstack([[0.0], recall, [1.0]])
    for i in range(len(mprec) - 1)[::-1]:
        mprec[i] = max(mprec[i], mprec[i + 1])
    idx = np.where(mrec[1:] != mrec[:-1])[0] + 1
    return float(np.sum((mrec[idx] - mrec[idx - 1]) * mprec[idx]))


def class_average_precision(
    gt_videos: Sequence[str],
    gt_segments: np.ndarray,
    pred_videos: Sequence[str],
    pred_segments: np.ndarray,
    pred_scores: np.ndarray,
    tiou_thresholds: Sequence[float] = ACTIVITYNET_TIOUS,
) -> np.ndarray:
    """AP of one class at each threshold (the official `compute_average_precision_detection`).

    Args:
      gt_videos, gt_segments: the class's ground truth: video of each, `[start, end]` rows.
      pred_videos, pred_segments, pred_scores: the class's predictions.
      tiou_thresholds: where to measure.

    Returns:
      float array [len(tiou_thresholds)]; zeros when there is no prediction.
    """
    thresholds = np.asarray(tiou_thresholds, dtype=float)
    ap = np.zeros(len(thresholds))
    if len(pred_scores) == 0:
        return ap
    gt_segments = np.asarray(gt_segments, dtype=float).reshape(-1, 2)
    by_video: dict[str, list[int]] = {}
    for i, video in enumerate(gt_videos):
        by_video.setdefault(video, []).append(i)
    order = np.asarray(pred_scores, dtype=float).argsort()[::-1]
    lock = np.full((len(thresholds), len(gt_segments)), -1)
    tp = np.zeros((len(thresholds), len(order)))
    fp = np.zeros((len(thresholds), len(order)))
    for idx, p in enumerate(order):
        mine = by_video.get(pred_videos[p])
        if mine is None:  # no ground truth of this class in that video
            fp[:, idx] = 1
            continue
        tiou = segment_iou(pred_segments[p], gt_segments[mine])
        best_first = tiou.argsort()[::-1]
        for t, threshold in enumerate(thresholds):
            for j in best_first:
                if tiou[j] < threshold:
                    break
                if lock[t, mine[j]] >= 0:
                    continue
                tp[t, idx] = 1
                lock[t, mine[j]] = idx
                break
            if tp[t, idx] == 0:
                fp[t, idx] = 1
    tp_sum, fp_sum = np.cumsum(tp, axis=1), np.cumsum(fp, axis=1)
    recall = tp_sum / float(len(gt_segments))
    precision = tp_sum / (tp_sum + fp_sum)
    for t in range(len(thresholds)):
        ap[t] = interpolated_ap(precision[t], recall[t])
    return ap


def average_precision(
    ground_truth: Iterable[Mapping],
    predictions: Iterable[Mapping],
    tiou_thresholds: Sequence[float] = ACTIVITYNET_TIOUS,
    labels: Sequence[str] | None = None,
) -> np.ndarray:
    """Per-class AP at each threshold: float array [len(tiou_thresholds), len(labels)].

    Args:
      ground_truth: `{"video", "start", "end", "label"}` records.
      predictions: the same plus `"score"`.
      tiou_thresholds: where to measure (ActivityNet's 0.5:0.05:0.95 by default).
      labels: the classes, in column order; default `ground_truth_labels(ground_truth)`
        (sorted). Predictions of a label outside it are ignored (the official evaluator
        fails on them); a listed class with no ground truth scores AP 0.

    Raises:
      ValueError: a record lacks a key or holds a non-number time or score (names it).
    """
    gt = [_record(r, i, "ground truth", False) for i, r in enumerate(ground_truth)]
    pred = [_record(r, i, "prediction", True) for i, r in enumerate(predictions)]
    labels = list(labels) if labels is not None else sorted({g[3] for g in gt})
    ap = np.zeros((len(tiou_thresholds), len(labels)))
    for c, label in enumerate(labels):
        g = [r for r in gt if r[3] == label]
        if not g:
            continue
        p = [r for r in pred if r[3] == label]
        ap[:, c] = class_average_precision(
            [r[0] for r in g],
            np.array([r[1:3] for r in g], dtype=float).reshape(-1, 2),
            [r[0] for r in p],
            np.array([r[1:3] for r in p], dtype=float).reshape(-1, 2),
            np.array([r[4] for r in p], dtype=float),
            tiou_thresholds,
        )
    return ap


def evaluate_segments(ground_truth: Iterable[Mapping], predictions: Iterable[Mapping]) -> dict:
    """THUMOS14 and ActivityNet figures of a set of predicted segments.

    Returns:
      {"tmap_30", "tmap_40", "tmap_50", "tmap_60", "tmap_70" (mAP at tIoU 0.3 ... 0.7),
       "thumos_average_map" (their mean, as THUMOS14 tables add), "average_map" (mean
       mAP over tIoU 0.5:0.05:0.95, ActivityNet's figure), "class_ap_50" ({label: AP at
       tIoU 0.5}), "labels", "n_ground_truth", "n_predictions",
       "ignored_predictions" (of a label with no ground truth)}.

    Raises:
      ValueError: no ground-truth segment, or a malformed record.
    """
    ground_truth, predictions = list(ground_truth), list(predictions)
    if not ground_truth:
        raise ValueError("ground truth: no segments to evaluate against")
    labels = ground_truth_labels(ground_truth)
    thumos = average_precision(ground_truth, predictions, THUMOS_TIOUS, labels)
    anet = average_precision(ground_truth, predictions, ACTIVITYNET_TIOUS, labels)
    report = {
        f"tmap_{round(t * 100)}": float(m)
        for t, m in zip(THUMOS_TIOUS, thumos.mean(1), strict=True)
    }
    report["thumos_average_map"] = float(thumos.mean(axis=1).mean())
    report["average_map"] = float(anet.mean(axis=1).mean())
    report["class_ap_50"] = {label: float(a) for label, a in zip(labels, thumos[2], strict=True)}
    report["labels"] = labels
    report["n_ground_truth"] = len(ground_truth)
    report["n_predictions"] = len(predictions)
    known = set(labels)
    report["ignored_predictions"] = sum(1 for p in predictions if p.get("label") not in known)
    return report


def ground_truth_labels(ground_truth: Iterable[Mapping]) -> list[str]:
    """Sorted labels that have at least one ground-truth segment (mAP's classes)."""
    return sorted({str(r["label"]) for r in ground_truth})


def flatten_segments(rows: Iterable[Mapping]) -> list[dict]:
    """Ground-truth records from manifest rows `{"video", "segments": [{start, end, label}]}`.

    Rows without `segments` add nothing (an unannotated video has no ground truth).
    """
    out = []
    for row in rows:
        for seg in row.get("segments") or ():
            out.append(
                {"video": row["video"], "start": seg["start"], "end": seg["end"],
                 "label": seg["label"]}
            )  # fmt: skip
    return out


def _record(rec: Mapping, i: int, what: str, scored: bool) -> tuple:
    """(video, start, end, label, score) of one record, or a one-line error naming it."""
    video = rec.get("video", rec.get("source"))
    keys = ("start", "end", "label", "score") if scored else ("start", "end", "label")
    missing = [k for k in keys if k not in rec] + ([] if video is not None else ["video"])
    if missing:
        raise ValueError(f"{what} record {i}: missing key '{missing[0]}' (has: {', '.join(rec)})")
    try:
        start, end = float(rec["start"]), float(rec["end"])
        score = float(rec["score"]) if scored else 0.0
    except (TypeError, ValueError):
        raise ValueError(f"{what} record {i}: start, end and score must be numbers") from None
    return (str(video), start, end, str(rec["label"]), score)

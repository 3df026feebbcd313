"""Temporal mAP against hand-computed AP and against ActivityNet's official evaluator.

The reference functions at the end of this file are copied from activitynet/ActivityNet
(`Evaluation/utils.py`, `Evaluation/eval_detection.py`, commit 82304fa9), which is:

  The MIT License (MIT) -- Copyright (c) 2015 ActivityNet
  Permission is hereby granted, free of charge, to any person obtaining a copy of this
  software and associated documentation files (the "Software"), to deal in the Software
  without restriction, including without limitation the rights to use, copy, modify,
  merge, publish, distribute, sublicense, and/or sell copies of the Software, and to
  permit persons to whom the Software is furnished to do so, subject to the following
  conditions: The above copyright notice and this permission notice shall be included in
  all copies or substantial portions of the Software. THE SOFTWARE IS PROVIDED "AS IS",
  WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT NOT LIMITED TO THE
  WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT.
  IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR
  OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT
  OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.

They are the reference implementation for these tests only; vdg_tf does not ship them.
`OFFICIAL` below holds the numbers the unmodified official code (with pandas 3.1.1,
numpy 2.4.6, `np.float = float`) printed for `FIXTURE`; the pandas-free port of
`compute_average_precision_detection` here reproduces them, and vdg_tf must too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from vdg_tf.tasks import temporal_map
from vdg_tf.tasks.temporal_map import (
    ACTIVITYNET_TIOUS,
    THUMOS_TIOUS,
    average_precision,
    evaluate_segments,
    flatten_segments,
    segment_iou,
)

# fmt: off
FIXTURE = {
    "gt": [["v0", 4.49, 9.0, "throw"], ["v0", 11.62, 21.07, "jump"], ["v0", 26.02, 28.1, "throw"],
           ["v1", 2.47, 12.01, "jump"], ["v1", 15.03, 18.48, "run"], ["v1", 24.02, 28.43, "throw"],
           ["v2", 2.78, 10.8, "run"], ["v2", 15.75, 21.36, "jump"], ["v2", 25.59, 34.75, "throw"],
           ["v3", 2.72, 10.89, "jump"], ["v3", 14.89, 17.78, "throw"],
           ["v3", 23.63, 25.74, "throw"]],
    "pred": [["v0", 6.02, 9.07, "throw", 0.8537], ["v0", 5.04, 10.71, "throw", 0.3265],
             ["v0", 5.07, 8.92, "run", 0.4289], ["v0", 12.34, 22.0, "run", 0.9433],
             ["v0", 12.66, 21.91, "jump", 0.1028], ["v0", 11.78, 21.88, "jump", 0.4679],
             ["v1", 3.27, 10.99, "jump", 0.9817], ["v1", 2.86, 11.27, "jump", 0.4776],
             ["v1", 3.04, 9.74, "jump", 0.4381], ["v1", 13.13, 18.15, "run", 0.6194],
             ["v2", 18.73, 22.04, "jump", 0.5849], ["v2", 15.45, 20.56, "jump", 0.9265],
             ["v2", 24.72, 32.95, "throw", 0.9649], ["v2", 25.7, 34.14, "throw", 0.6791],
             ["v3", 0.1, 12.94, "jump", 0.4084], ["v3", 4.72, 9.57, "jump", 0.4816],
             ["v3", 16.98, 17.48, "throw", 0.8855], ["v3", 14.19, 19.64, "throw", 0.8053],
             ["v3", 15.1, 17.45, "throw", 0.2359], ["v3", 24.45, 26.45, "throw", 0.4783],
             ["v3", 26.79, 31.89, "jump", 0.6113], ["v0", 23.0, 25.79, "jump", 0.6085],
             ["v4", 35.61, 36.65, "throw", 0.3907], ["v4", 28.02, 29.08, "throw", 0.0785],
             ["v3", 8.56, 11.55, "jump", 0.0944], ["v2", 16.97, 21.47, "run", 0.8442],
             ["v4", 39.33, 45.18, "throw", 0.2767], ["v4", 22.04, 26.9, "throw", 0.8321]],
}
OFFICIAL = {  # per class: AP at ActivityNet's tIoU 0.5:0.05:0.95, then THUMOS' 0.3:0.1:0.7
    "activitynet": {
        "jump": [0.75, 0.75, 0.7, 0.59375, 0.59375, 0.59375, 0.59375, 0.125, 0.03125, 0.0],
        "run": [0.16666666666666666, 0.16666666666666666] + [0.0] * 8,
        "throw": [0.37777777777777777, 0.32323232323232326, 0.32323232323232326,
                  0.32323232323232326, 0.19696969696969696, 0.06060606060606061,
                  0.06060606060606061, 0.027777777777777776, 0.027777777777777776, 0.0],
    },
    "thumos": {
        "jump": [0.75, 0.75, 0.75, 0.7, 0.59375],
        "run": [0.16666666666666666] * 3 + [0.0, 0.0],
        "throw": [0.473015873015873, 0.473015873015873, 0.37777777777777777,
                  0.32323232323232326, 0.19696969696969696],
    },
    "average_map": 0.22619318181818185,
    "thumos_map": [0.4632275132275132, 0.4632275132275132, 0.4314814814814814,
                   0.3410774410774411, 0.2635732323232323],
}
# fmt: on
LABELS = ["jump", "run", "throw"]


def _records(fixture: dict) -> tuple[list[dict], list[dict]]:
    gt = [dict(zip(("video", "start", "end", "label"), g, strict=True)) for g in fixture["gt"]]
    pred = [
        dict(zip(("source", "start", "end", "label", "score"), p, strict=True))
        for p in fixture["pred"]
    ]
    return gt, pred


def test_hand_computed_ap():
    """One video; class "a": ground truth g1 = [0, 10], g2 = [20, 30]; predictions by score:
    p1 [0, 8] 0.9 (tIoU g1 8/10 = 0.8), p2 [1, 10] 0.8 (tIoU g1 9/10 = 0.9),
    p3 [22, 30] 0.7 (tIoU g2 0.8), p4 [40, 45] 0.6 (no overlap).

    tIoU 0.5: p1 takes g1 (highest score first, although p2 fits g1 better), p2 finds g1
    taken -> FP, p3 TP, p4 FP. TP cum [1,1,2,2], FP cum [0,1,1,2]: precision
    [1, 1/2, 2/3, 1/2], recall [1/2, 1/2, 1, 1]. Interpolated precision at recall 1/2 is
    max(1, 1/2, 2/3, 1/2) = 1, at recall 1 it is 2/3: AP = 1/2 * 1 + 1/2 * 2/3 = 5/6.

    tIoU 0.85: p1 FP (0.8), p2 TP (0.9), p3 FP, p4 FP. precision [0, 1/2, 1/3, 1/4],
    recall [0, 1/2, 1/2, 1/2]: AP = 1/2 * max(0, 1/2, 1/3, 1/4) + 1/2 * 0 = 1/4.

    Class "b" (ground truth [50, 60]) has no prediction: AP 0. A prediction of label "c"
    (no ground truth) is ignored. mAP at 0.5 = (5/6 + 0) / 2 = 5/12.
    """
    gt = [
        {"video": "v", "start": 0, "end": 10, "label": "a"},
        {"video": "v", "start": 20, "end": 30, "label": "a"},
        {"video": "v", "start": 50, "end": 60, "label": "b"},
    ]
    pred = [
        {"video": "v", "start": 22, "end": 30, "label": "a", "score": 0.7},
        {"video": "v", "start": 0, "end": 8, "label": "a", "score": 0.9},
        {"video": "v", "start": 40, "end": 45, "label": "a", "score": 0.6},
        {"video": "v", "start": 1, "end": 10, "label": "a", "score": 0.8},
        {"video": "v", "start": 50, "end": 60, "label": "c", "score": 0.99},
    ]
    ap = average_precision(gt, pred, [0.5, 0.85])
    np.testing.assert_allclose(ap, [[5 / 6, 0.0], [1 / 4, 0.0]])
    report = evaluate_segments(gt, pred)
    assert report["tmap_50"] == pytest.approx(5 / 12)
    assert report["class_ap_50"] == {"a": pytest.approx(5 / 6), "b": 0.0}
    assert report["ignored_predictions"] == 1
    assert report["labels"] == ["a", "b"]


def test_segment_iou_matches_official():
    cands = np.array([[0.0, 10.0], [5.0, 15.0], [20.0, 30.0], [2.0, 4.0]])
    np.testing.assert_allclose(segment_iou([0.0, 10.0], cands), [1.0, 5 / 15, 0.0, 0.2])
    np.testing.assert_array_equal(
        segment_iou([3.0, 12.0], cands), ref_segment_iou(np.array([3.0, 12.0]), cands)
    )


def test_fixture_matches_official_numbers():
    gt, pred = _records(FIXTURE)
    for name, tious in (("activitynet", ACTIVITYNET_TIOUS), ("thumos", THUMOS_TIOUS)):
        expected = np.array([OFFICIAL[name][k] for k in LABELS]).T
        np.testing.assert_allclose(average_precision(gt, pred, tious), expected, rtol=0, atol=1e-12)
    report = evaluate_segments(gt, pred)
    got = [report[f"tmap_{t}"] for t in (30, 40, 50, 60, 70)]
    np.testing.assert_allclose(got, OFFICIAL["thumos_map"], rtol=0, atol=1e-12)
    assert report["average_map"] == pytest.approx(OFFICIAL["average_map"], abs=1e-12)
    assert report["thumos_average_map"] == pytest.approx(np.mean(OFFICIAL["thumos_map"]))
    assert report["class_ap_50"]["throw"] == pytest.approx(OFFICIAL["activitynet"]["throw"][0])


def test_reference_port_reproduces_official_numbers():
    """The pandas-free port below is faithful: it gives the official code's printed numbers."""
    gt, pred = _records(FIXTURE)
    for k in LABELS:
        ap = ref_class_ap(gt, pred, k, ACTIVITYNET_TIOUS)
        np.testing.assert_allclose(ap, OFFICIAL["activitynet"][k], rtol=0, atol=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_random_cases_match_reference(seed):
    """Many segments per video, near-duplicates and misses: vdg_tf == the official loop."""
    rng = np.random.default_rng(seed)
    gt, pred = [], []
    for v in range(3):
        for _ in range(int(rng.integers(1, 6))):
            s = float(rng.uniform(0, 50))
            gt.append({"video": f"v{v}", "start": s, "end": s + float(rng.uniform(0.5, 9)),
                       "label": str(rng.choice(["x", "y"]))})  # fmt: skip
    for g in gt:
        for _ in range(int(rng.integers(0, 4))):
            s, e = g["start"] + rng.normal(0, 1), g["end"] + rng.normal(0, 1)
            pred.append({"video": g["video"], "start": float(s), "end": float(max(e, s + 0.1)),
                         "label": g["label"], "score": float(rng.uniform())})  # fmt: skip
    labels = sorted({g["label"] for g in gt})
    ap = average_precision(gt, pred, ACTIVITYNET_TIOUS)
    expected = np.array([ref_class_ap(gt, pred, k, ACTIVITYNET_TIOUS) for k in labels]).T
    np.testing.assert_allclose(ap, expected, rtol=0, atol=1e-12)


def test_no_predictions_and_bad_records():
    gt, _ = _records(FIXTURE)
    assert evaluate_segments(gt, [])["average_map"] == 0.0
    with pytest.raises(ValueError, match="ground truth: no segments"):
        evaluate_segments([], [])
    with pytest.raises(ValueError, match="prediction record 0: missing key 'score'"):
        average_precision(gt, [{"video": "v0", "start": 1, "end": 2, "label": "run"}])
    with pytest.raises(ValueError, match="ground truth record 0: start, end and score"):
        average_precision([{"video": "v", "start": "soon", "end": 2, "label": "a"}], [])


def test_module_docstring_example():
    gt = [{"video": "a.mp4", "start": 2.0, "end": 6.0, "label": "jump"}]
    pred = [{"source": "a.mp4", "start": 2.5, "end": 6.0, "label": "jump", "score": 0.9}]
    report = evaluate_segments(gt, pred)
    assert report["tmap_50"] == 1.0  # tIoU 3.5 / 4 = 0.875
    assert report["average_map"] == pytest.approx(0.8)  # matched at 0.5 ... 0.85 of 0.5 ... 0.95


def test_flatten_segments_from_manifest_rows():
    rows = [
        {"video": "a.mp4", "segments": [{"start": 1.0, "end": 2.0, "label": "x"}]},
        {"video": "b.mp4"},
    ]
    assert flatten_segments(rows) == [{"video": "a.mp4", "start": 1.0, "end": 2.0, "label": "x"}]


def test_module_imports_no_tensorflow():
    """Evaluation must run where TensorFlow is not installed: numpy and the stdlib only."""
    tree = ast.parse(Path(temporal_map.__file__).read_text())
    names = {
        a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    }
    names |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert names <= {"__future__", "collections", "numpy"}, names


# ---- reference: ActivityNet's official code (MIT licence above) ----------------------------


def ref_interpolated_prec_rec(prec, rec):
    """Interpolated AP - VOCdevkit from VOC 2011. (Evaluation/utils.py, verbatim)"""
    mprec = np.hstack([[0], prec, [0]])
    mrec = np.hstack([[0], rec, [1]])
    for i in range(len(mprec) - 1)[::-1]:
        mprec[i] = max(mprec[i], mprec[i + 1])
    idx = np.where(mrec[1::] != mrec[0:-1])[0] + 1
    ap = np.sum((mrec[idx] - mrec[idx - 1]) * mprec[idx])
    return ap


def ref_segment_iou(target_segment, candidate_segments):
    """Evaluation/utils.py segment_iou, verbatim."""
    tt1 = np.maximum(target_segment[0], candidate_segments[:, 0])
    tt2 = np.minimum(target_segment[1], candidate_segments[:, 1])
    # Intersection including Non-negative overlap score.
    segments_intersection = (tt2 - tt1).clip(0)
    # Segment union.
    segments_union = (
        (candidate_segments[:, 1] - candidate_segments[:, 0])
        + (target_segment[1] - target_segment[0])
        - segments_intersection
    )
    # Compute overlap as the ratio of the intersection
    # over union of two segments.
    tIoU = segments_intersection.astype(float) / segments_union
    return tIoU


def ref_class_ap(gt_records, pred_records, label, tiou_thresholds):
    """Evaluation/eval_detection.py compute_average_precision_detection for one class.

    Ported off pandas only: data frames become lists of (video-id, t-start, t-end[, score]);
    `groupby('video-id').get_group` becomes a dict of lists whose 'index' is the row's index
    in the class's ground truth; the matching loop and the AP arithmetic are unchanged.
    """
    ground_truth = [(g["video"], g["start"], g["end"]) for g in gt_records if g["label"] == label]
    prediction = [
        (p.get("video", p.get("source")), p["start"], p["end"], p["score"])
        for p in pred_records
        if p["label"] == label
    ]
    ap = np.zeros(len(tiou_thresholds))
    if len(prediction) == 0:
        return ap

    npos = float(len(ground_truth))
    lock_gt = np.ones((len(tiou_thresholds), len(ground_truth))) * -1
    # Sort predictions by decreasing score order.
    sort_idx = np.array([p[3] for p in prediction]).argsort()[::-1]
    prediction = [prediction[i] for i in sort_idx]

    # Initialize true positive and false positive vectors.
    tp = np.zeros((len(tiou_thresholds), len(prediction)))
    fp = np.zeros((len(tiou_thresholds), len(prediction)))

    # Adaptation to query faster
    ground_truth_gbvn = {}
    for index, g in enumerate(ground_truth):
        ground_truth_gbvn.setdefault(g[0], []).append((index, g[1], g[2]))

    # Assigning true positive to truly grount truth instances.
    for idx, this_pred in enumerate(prediction):
        if this_pred[0] not in ground_truth_gbvn:
            fp[:, idx] = 1
            continue

        this_gt = ground_truth_gbvn[this_pred[0]]
        tiou_arr = ref_segment_iou(
            np.array(this_pred[1:3]), np.array([[g[1], g[2]] for g in this_gt])
        )
        # We would like to retrieve the predictions with highest tiou score.
        tiou_sorted_idx = tiou_arr.argsort()[::-1]
        for tidx, tiou_thr in enumerate(tiou_thresholds):
            for jdx in tiou_sorted_idx:
                if tiou_arr[jdx] < tiou_thr:
                    fp[tidx, idx] = 1
                    break
                if lock_gt[tidx, this_gt[jdx][0]] >= 0:
                    continue
                # Assign as true positive after the filters above.
                tp[tidx, idx] = 1
                lock_gt[tidx, this_gt[jdx][0]] = idx
                break

            if fp[tidx, idx] == 0 and tp[tidx, idx] == 0:
                fp[tidx, idx] = 1

    tp_cumsum = np.cumsum(tp, axis=1).astype(float)
    fp_cumsum = np.cumsum(fp, axis=1).astype(float)
    recall_cumsum = tp_cumsum / npos

    precision_cumsum = tp_cumsum / (tp_cumsum + fp_cumsum)

    for tidx in range(len(tiou_thresholds)):
        ap[tidx] = ref_interpolated_prec_rec(precision_cumsum[tidx, :], recall_cumsum[tidx, :])

    return ap

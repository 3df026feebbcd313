"""Segments from window scores, on synthetic score tracks whose true segments are known.

A window's score for a class is what an ideal window classifier gives: the fraction of the
window the class's segments cover, times a confidence, plus seeded noise. Boundaries must
come back within one stride, whatever the threshold.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vdg_tf.runtime.segments import find_segments, segments_from_windows, temporal_nms
from vdg_tf.tasks.temporal_map import evaluate_segments

LABELS = ["background", "jump", "run"]
TRUTH = [(10.0, 18.0, "jump"), (25.3, 31.1, "run"), (40.2, 44.0, "jump"), (52.0, 60.0, "run")]
WINDOW, STRIDE, LENGTH = 2.0, 0.5, 60.0


def score_track(truth=TRUTH, noise=0.03, confidence=0.9, seed=0):
    """(starts, ends, scores [windows, labels]) of windows sliding over `LENGTH` seconds."""
    rng = np.random.default_rng(seed)
    starts = np.arange(0.0, LENGTH - WINDOW + 1e-9, STRIDE)
    ends = starts + WINDOW
    scores = np.zeros((len(starts), len(LABELS)))
    for s, e, label in truth:
        cover = (np.minimum(ends, e) - np.maximum(starts, s)).clip(0) / WINDOW
        scores[:, LABELS.index(label)] += confidence * cover
    scores[:, 1:] += rng.normal(0, noise, size=(len(starts), len(LABELS) - 1))
    scores[:, 0] = 1 - scores[:, 1:].sum(axis=1)
    return starts, ends, scores.clip(0, 1)


def _assert_found(segments, truth=TRUTH, tolerance=STRIDE):
    assert [s["label"] for s in segments] == [t[2] for t in truth], segments
    for seg, (s, e, _) in zip(segments, truth, strict=True):
        assert abs(seg["start"] - s) <= tolerance and abs(seg["end"] - e) <= tolerance, (seg, s, e)
        assert seg["source"] == "long.mp4" and 0.8 <= seg["score"] <= 1.0


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_segments_within_a_stride_at_any_threshold(threshold):
    starts, ends, scores = score_track()
    found = find_segments(starts, ends, scores, LABELS, source="long.mp4", threshold=threshold)
    _assert_found(found)
    report = evaluate_segments(
        [{"video": "long.mp4", "start": s, "end": e, "label": x} for s, e, x in TRUTH], found
    )
    assert report["tmap_50"] == 1.0 and report["tmap_70"] == 1.0


def test_refinement_beats_window_edges_and_is_exact_without_noise():
    starts, ends, scores = score_track(noise=0.0)
    refined = find_segments(starts, ends, scores, LABELS, source="long.mp4")
    _assert_found(refined, tolerance=1e-9)  # linear ramps: the half-peak crossing is exact
    plain = find_segments(starts, ends, scores, LABELS, source="long.mp4", refine=False)
    plain_err = max(
        abs(p["start"] - t[0]) + abs(p["end"] - t[1]) for p, t in zip(plain, TRUTH, strict=True)
    )
    assert plain_err >= WINDOW / 2  # window edges overshoot: the windows that barely touch


def test_run_starting_below_half_its_peak_is_refined_inside_the_run():
    """threshold 0.3 < half the peak (0.45): the crossing lies between the windows scoring
    0.35 and 0.9 (centres 3.0 and 3.5, also 5.0 and 5.5), not before the run."""
    track = np.array([0, 0, 0.0, 0.35, 0.9, 0.9, 0.9, 0.9, 0.35, 0, 0])
    starts = np.arange(len(track)) * 0.5 + 0.5  # centres 1.5, 2.0, ... with 2 s windows
    scores = np.stack([1 - track, track], axis=1)
    (seg,) = find_segments(starts, starts + 2.0, scores, ["background", "jump"], threshold=0.3)
    assert seg["start"] == pytest.approx(3.0 + (0.45 - 0.35) / 0.55 * 0.5)
    assert seg["end"] == pytest.approx(5.0 + (0.9 - 0.45) / 0.55 * 0.5)


def test_segment_at_the_video_edge_keeps_the_window_edge():
    truth = [(0.0, 5.0, "jump"), (50.0, LENGTH, "run")]
    starts, ends, scores = score_track(truth, noise=0.0)
    found = find_segments(starts, ends, scores, LABELS, source="long.mp4")
    _assert_found(found, truth, tolerance=1e-9)


def test_two_close_segments_of_one_class_stay_two_and_meet_in_the_dip():
    """A short gap whose scores dip below the threshold but not below half the peak."""
    truth = [(10.0, 20.0, "jump"), (20.8, 30.0, "jump")]
    starts, ends, scores = score_track(truth, noise=0.0)
    found = find_segments(starts, ends, scores, LABELS, source="long.mp4", threshold=0.85)
    assert [s["label"] for s in found] == ["jump", "jump"]
    assert found[0]["end"] == found[1]["start"]
    assert 20.0 <= found[0]["end"] <= 20.8
    assert abs(found[0]["start"] - 10.0) <= STRIDE and abs(found[1]["end"] - 30.0) <= STRIDE


def test_missing_windows_split_a_run():
    starts, ends, scores = score_track([(10.0, 30.0, "jump")], noise=0.0)
    keep = (starts < 18.0) | (starts > 22.0)  # windows lost between 18 and 24 s
    found = find_segments(starts[keep], ends[keep], scores[keep], LABELS, source="long.mp4")
    assert [(s["start"], s["end"]) for s in found] == [
        pytest.approx((10.0, 19.5)),  # the last window before the gap ends at 17.5 + 2
        pytest.approx((22.5, 30.0)),
    ]


def test_background_and_short_segments_are_not_reported():
    starts, ends, scores = score_track()
    found = find_segments(starts, ends, scores, LABELS, source="long.mp4", min_length=5.0)
    assert {s["label"] for s in found} <= {"jump", "run"}
    assert all(s["end"] - s["start"] >= 5.0 for s in found)
    assert len(found) == 3  # 40.2-44.0 is 3.8 s long


def test_temporal_nms_keeps_the_best_per_class_and_source():
    segs = [
        {"source": "a", "start": 0.0, "end": 10.0, "label": "x", "score": 0.6},
        {"source": "a", "start": 1.0, "end": 10.0, "label": "x", "score": 0.9},  # tIoU 0.9
        {"source": "a", "start": 1.0, "end": 10.0, "label": "y", "score": 0.5},  # other class
        {"source": "b", "start": 0.0, "end": 10.0, "label": "x", "score": 0.4},  # other video
        {"source": "a", "start": 8.0, "end": 20.0, "label": "x", "score": 0.7},  # tIoU 2/19
    ]
    kept = temporal_nms(segs, 0.5)
    assert [s["score"] for s in kept] == [0.9, 0.7, 0.5, 0.4]


def test_from_predict_window_records_per_source():
    starts, ends, scores = score_track()
    records = []
    for source in ("a.mp4", "b.mp4"):
        for s, e, row in zip(starts, ends, scores, strict=True):
            top = sorted(zip(LABELS, row, strict=True), key=lambda t: -t[1])
            records.append({"source": source, "start": s, "end": e,
                            "top": [{"label": k, "score": float(v)} for k, v in top]})  # fmt: skip
    found = segments_from_windows(records)
    assert [s["source"] for s in found] == ["a.mp4"] * 4 + ["b.mp4"] * 4
    same = segments_from_windows(
        {"source": r["source"], "start": r["start"], "end": r["end"],
         "scores": {t["label"]: t["score"] for t in r["top"]}} for r in records
    )  # fmt: skip
    assert same == found
    for seg, (s, _, label) in zip(found[:4], TRUTH, strict=True):
        assert seg["label"] == label and abs(seg["start"] - s) <= STRIDE


def test_bad_inputs_are_named():
    starts, ends, scores = score_track()
    assert find_segments([], [], np.zeros((0, 3)), LABELS) == []  # no window: no segment
    with pytest.raises(ValueError, match="do not fit 2 labels"):
        find_segments(starts, ends, scores, LABELS[:2])
    with pytest.raises(ValueError, match="window 0 ends before it starts"):
        find_segments(ends, starts, scores, LABELS)
    with pytest.raises(ValueError, match="window 0: no 'scores'"):
        segments_from_windows([{"source": "a", "start": 0, "end": 1}])


def _oracle_windows(path, fps: int, window: float, stride: float) -> list[dict]:
    """Window records as `vdg predict` gives them, from an oracle that sees the decoded
    pixels: per class, the fraction of the window's frames showing the square, for the
    direction the square's centre moves in the window (a model's ideal scores)."""
    import av

    with av.open(str(path)) as c:
        frames = [f.to_ndarray(format="rgb24").max(axis=2) > 130 for f in c.decode(video=0)]
    centres = [np.argwhere(m).mean(axis=0) if m.sum() > 20 else None for m in frames]
    labels = ["left", "right", "up", "down"]
    records = []
    for s in np.arange(0.0, len(frames) / fps - window + 1e-9, stride):
        seen = [(t, c) for t, c in enumerate(centres[round(s * fps) : round((s + window) * fps)])
                if c is not None]  # fmt: skip
        scores = dict.fromkeys(labels, 0.0)
        if len(seen) >= 2:
            dy, dx = seen[-1][1] - seen[0][1]
            way = (
                ("right" if dx > 0 else "left")
                if abs(dx) > abs(dy)
                else ("down" if dy > 0 else "up")
            )
            scores[way] = len(seen) / round(window * fps)
        records.append({"source": str(path), "start": float(s), "end": float(s + window),
                        "scores": scores})  # fmt: skip
    return records


def test_localises_actions_in_generated_untrimmed_videos(tmp_path):
    """Real mp4 files from `make_untrimmed_sample`, scored per window by a pixel oracle:
    every action comes back within a stride, and mAP at tIoU 0.5 and 0.7 is 1."""
    from vdg_tf.data.sample_untrimmed import UntrimmedSpec, make_untrimmed_sample
    from vdg_tf.tasks.temporal_map import flatten_segments

    spec = UntrimmedSpec(width=64, height=48, fps=8, min_gap=1.5, max_gap=4.0, noise=False)
    info = make_untrimmed_sample(tmp_path / "u", videos=2, seconds=30, seed=2, spec=spec)
    truth, found = [], []
    for manifest in (info["manifest_train"], info["manifest_eval"]):
        for line in Path(manifest).read_text().splitlines():
            row = json.loads(line)
            row["video"] = str(Path(manifest).parent / row["video"])
            truth += flatten_segments([row])
            found += segments_from_windows(_oracle_windows(row["video"], spec.fps, 2.0, 0.5))
    assert len(found) == len(truth) == info["segments"]
    for seg, gt in zip(sorted(found, key=_key), sorted(truth, key=_key), strict=True):
        assert seg["label"] == gt["label"]
        assert abs(seg["start"] - gt["start"]) <= 0.5 and abs(seg["end"] - gt["end"]) <= 0.5
    report = evaluate_segments(truth, found)
    assert report["tmap_50"] == 1.0 and report["tmap_70"] == 1.0


def _key(r: dict) -> tuple:
    return (r.get("video", r.get("source")), r["start"])

"""Segments from window scores: when each action starts and ends in a long video.

`vdg predict` scores fixed windows (`start`, `end`, a score per class) along a video.
Localisation turns that score track into `{source, start, end, label, score}` records:

1. **threshold**: per class, the windows whose score is >= `threshold`;
2. **merge**: consecutive such windows form one run (a gap of more than 1.5 window steps,
   e.g. windows missing from the track, ends a run);
3. **refine**: the run's boundaries move to where the score track crosses half the run's
   peak, linearly interpolated between the centres of the two windows on either side;
4. **per-class temporal NMS**: of two segments of one class with tIoU > `nms_iou`, the
   lower-scored one is dropped.

Why half the peak, between window centres: a window of length L sliding into an action
covers it for a fraction that grows from 0 to 1 as its centre moves from L/2 before the
action's start to L/2 after it, and a model trained on windows scores roughly that
coverage times its confidence on the action. The score therefore ramps over one window
length, and is at half its plateau (the peak) when the window's centre sits on the true
boundary. Taking the windows above `threshold` instead puts the boundary wherever the
threshold cuts the ramp, up to half a window off and moving with the threshold; plain
window edges (`refine=False`) overshoot by up to a window. Interpolating between centres
gives sub-stride boundaries from the same scores, at no model cost. A run that touches the
first or last window keeps that window's outer edge (the action may go on past it).

Numpy only: the same code serves `vdg predict --segments`, evaluation and benchmarks.

Example:
  starts = np.arange(0, 60, 0.5); ends = starts + 2.0
  scores = ...  # [windows, classes], e.g. the `scores` of each `vdg predict` window
  find_segments(starts, ends, scores, ["jump", "run"], source="a.mp4")
  # [{"source": "a.mp4", "start": 12.4, "end": 19.0, "label": "jump", "score": 0.93}, ...]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from vdg_tf.tasks.temporal_map import segment_iou

BACKGROUND = ("background",)  # labels that never become segments


def find_segments(
    starts: Sequence[float],
    ends: Sequence[float],
    scores: np.ndarray,
    labels: Sequence[str],
    *,
    source: str = "",
    threshold: float = 0.5,
    refine: bool = True,
    nms_iou: float = 0.5,
    min_length: float = 0.0,
    background: Iterable[str] = BACKGROUND,
) -> list[dict]:
    """The segments of one video from its window scores.

    Args:
      starts, ends: each window's span in seconds (any order; sorted here).
      scores: float [windows, len(labels)], a score per window and class in [0, 1].
      labels: the class names, in score column order.
      source: the video, copied into each record.
      threshold: a window belongs to a class's segment when its score is >= this.
      refine: move boundaries to the half-peak crossing (see the module docstring);
        False keeps the outer edges of the run's first and last windows.
      nms_iou: same-class segments overlapping more than this (tIoU) keep the best one.
      min_length: drop segments shorter than this many seconds.
      background: labels never reported (a background class).

    Returns:
      `{source, start, end, label, score}` records sorted by start then label; `score`
      is the run's peak window score.
    """
    starts, ends = np.asarray(starts, dtype=float), np.asarray(ends, dtype=float)
    if not len(starts):
        return []
    scores = np.asarray(scores, dtype=float).reshape(len(starts), -1)
    _check(starts, ends, scores, labels, threshold, nms_iou)
    order = np.argsort(starts, kind="stable")
    starts, ends, scores = starts[order], ends[order], scores[order]
    centres = (starts + ends) / 2
    breaks = _breaks(centres)
    skip = set(background)
    found = []
    for c, label in enumerate(labels):
        if label in skip:
            continue
        track = scores[:, c]
        runs = _runs(track >= threshold, breaks)
        for k, (i0, i1) in enumerate(runs):
            peak = float(track[i0 : i1 + 1].max())
            if refine:
                lo = _dip(track, runs[k - 1][1], i0, i0) if k else 0
                hi = _dip(track, i1, runs[k + 1][0], i1) if k + 1 < len(runs) else len(track) - 1
                s, e = _refined(track, centres, starts, ends, breaks, i0, i1, lo, hi, peak)
            else:
                s, e = starts[i0], ends[i1]
            if e - s >= min_length and e > s:
                found.append({"source": source, "start": float(s), "end": float(e),
                              "label": label, "score": peak})  # fmt: skip
    kept = temporal_nms(found, nms_iou)
    return sorted(kept, key=lambda r: (r["start"], r["label"]))


SEGMENT_KEYS = frozenset({"source", "start", "end", "label", "score"})


def is_segment(record: Mapping) -> bool:
    """Whether a `vdg predict` record is a segment (`{source, start, end, label, score}`)."""
    return set(record) == SEGMENT_KEYS


def segments_from_windows(
    windows: Iterable[Mapping], labels: Sequence[str] | None = None, **options
) -> list[dict]:
    """Segments from `vdg predict` window records, per `source`, in first-seen order.

    A record is `{source, start, end, scores: {label: score}}` or `{source, start, end,
    top: [{label, score}]}`; a label missing from `top` scores 0 there, so ask predict for
    every label (`top` = the number of labels) when segments are wanted.

    Args:
      windows: the records.
      labels: the classes; default every label seen, in first-seen order.
      **options: `find_segments`' keyword options.
    """
    by_source: dict[str, list[tuple[float, float, dict]]] = {}
    seen: dict[str, None] = {}
    for i, w in enumerate(windows):
        table = _scores_of(w, i)
        seen.update(dict.fromkeys(table))
        by_source.setdefault(str(w.get("source", "")), []).append(
            (float(w["start"]), float(w["end"]), table)
        )
    names = list(labels) if labels is not None else list(seen)
    out = []
    for source, rows in by_source.items():
        matrix = np.array([[t.get(n, 0.0) for n in names] for _, _, t in rows], dtype=float)
        out += find_segments(
            [r[0] for r in rows], [r[1] for r in rows], matrix.reshape(len(rows), len(names)),
            names, source=source, **options,
        )  # fmt: skip
    return out


def temporal_nms(segments: list[dict], iou: float = 0.5) -> list[dict]:
    """Per (source, label), keep the best-scored segments; drop any with tIoU > `iou` with
    one already kept (greedy, highest score first, as detection NMS)."""
    kept: list[dict] = []
    for seg in sorted(segments, key=lambda r: -r["score"]):
        mine = [k for k in kept if k["label"] == seg["label"] and k["source"] == seg["source"]]
        if mine:
            spans = np.array([[k["start"], k["end"]] for k in mine])
            if segment_iou([seg["start"], seg["end"]], spans).max() > iou:
                continue
        kept.append(seg)
    return kept


def _breaks(centres: np.ndarray) -> np.ndarray:
    """bool [windows]: True where window i+1 does not continue window i (its centre is more
    than 1.5 median steps later), so a run never bridges missing windows."""
    steps = np.diff(centres)
    if not len(steps):
        return np.zeros(len(centres), bool)
    step = np.median(steps[steps > 0]) if (steps > 0).any() else 0.0
    return np.append(steps > 1.5 * step, False)


def _runs(active: np.ndarray, breaks: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) index of each maximal run of active windows with no break inside."""
    runs, first = [], None
    for i, on in enumerate(active):
        if first is not None and (not on or breaks[i - 1]):
            runs.append((first, i - 1))
            first = None
        if on and first is None:
            first = i
    if first is not None:
        runs.append((first, len(active) - 1))
    return runs


def _dip(track: np.ndarray, left_end: int, right_start: int, own: int) -> int:
    """The lowest window between two runs of one class (where their segments may meet);
    `own` (the run's own edge window: no walk) when the runs are adjacent, split by a gap
    in the track rather than by low scores."""
    if right_start - left_end <= 1:
        return own
    return left_end + 1 + int(np.argmin(track[left_end + 1 : right_start]))


def _refined(track, centres, starts, ends, breaks, i0, i1, lo, hi, peak) -> tuple[float, float]:
    """Half-peak crossings left of run [i0, i1] (not past index lo) and right (not past hi).

    Where the score stays above half the peak up to a limit, the boundary is that window's
    centre (the dip between two runs of one class: they meet there), or its outer edge at
    the first or last window or a gap in the track.
    """
    half = peak / 2
    above = i0 + np.flatnonzero(track[i0 : i1 + 1] >= half)  # the run's windows above half
    j = int(above[0])  # a run may begin below half its peak when threshold < peak / 2
    while j > lo and not breaks[j - 1] and track[j - 1] >= half:
        j -= 1
    if j > lo and not breaks[j - 1]:  # track[j - 1] < half <= track[j]
        start = _cross(centres[j - 1], centres[j], track[j - 1], track[j], half)
    else:
        start = starts[j] if j == 0 or breaks[j - 1] else centres[j]
    j = int(above[-1])
    while j < hi and not breaks[j] and track[j + 1] >= half:
        j += 1
    if j < hi and not breaks[j]:
        end = _cross(centres[j + 1], centres[j], track[j + 1], track[j], half)
    else:
        end = ends[j] if j == len(track) - 1 or breaks[j] else centres[j]
    return start, end


def _cross(t_low: float, t_high: float, s_low: float, s_high: float, level: float) -> float:
    """Where the line from (t_low, s_low) to (t_high, s_high) reaches `level`."""
    if s_high == s_low:
        return t_high
    return t_low + (level - s_low) / (s_high - s_low) * (t_high - t_low)


def _scores_of(w: Mapping, i: int) -> dict[str, float]:
    """{label: score} of one window record, or a one-line error naming it."""
    if "start" not in w or "end" not in w:
        raise ValueError(f"window {i}: missing 'start'/'end' (has: {', '.join(w)})")
    if isinstance(w.get("scores"), Mapping):
        return {str(k): float(v) for k, v in w["scores"].items()}
    if isinstance(w.get("top"), list):
        return {str(t["label"]): float(t["score"]) for t in w["top"]}
    raise ValueError(f"window {i}: no 'scores' {{label: score}} or 'top' [{{label, score}}]")


def _check(starts, ends, scores, labels, threshold: float, nms_iou: float) -> None:
    """One-line errors for inputs that cannot make segments."""
    if len(ends) != len(starts) or scores.shape != (len(starts), len(labels)):
        raise ValueError(
            f"segments: {len(starts)} starts, {len(ends)} ends and scores {scores.shape} "
            f"do not fit {len(labels)} labels"
        )
    if (ends <= starts).any():
        raise ValueError(f"segments: window {int(np.argmax(ends <= starts))} ends before it starts")
    if not 0 < threshold <= 1 or not 0 <= nms_iou <= 1:
        raise ValueError(
            f"segments: need 0 < threshold <= 1 and 0 <= nms_iou <= 1, got {threshold}, {nms_iou}"
        )

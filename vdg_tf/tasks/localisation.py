"""Temporal localisation: when each action starts and ends in an untrimmed video.

A row is a whole video with `segments: [{"start", "end", "label"}]`; time outside every
segment is background. The model is a window classifier over the actions plus
`background`, and segments come from its scores along the video (`runtime.segments`:
threshold, half-peak boundary refinement, per-class temporal NMS).

Why window classification rather than a per-timestep head (ActionFormer): the window is
the unit every other task trains, exports (int8, fp16) and streams on (`vdg predict`, the
incremental ring buffer), so localisation inherits all of it unchanged, and the half-peak
refinement recovers boundaries finer than the stride from the same scores at no model
cost (measured in BENCHMARKS.md, "Localisation").

Training windows (`clips`): windows of `data.audio.seconds` every half window over the
whole video. An action's share of a window is their overlap over the shorter of the two
(a short action wholly inside a window fills it). A window is the action's with the
largest share when that share is at least 0.7, background when no action's share is over
0.3, and otherwise ambiguous and not trained on. The band is centred on 0.5, where a long
action's boundary sits on the window's centre: the score then crosses half its peak there,
which is where `find_segments` puts the boundary (a band of 0.1-0.5 pushed every boundary
outward by ~0.4 s and halved ActivityNet's average mAP: BENCHMARKS.md, "Localisation").
"""

from __future__ import annotations

from dataclasses import replace

from vdg_tf.manifest import ClipRow
from vdg_tf.tasks.classification import Classification
from vdg_tf.tasks.registry import register_task
from vdg_tf.tasks.temporal_map import evaluate_segments

BACKGROUND = "background"
ACTION_SHARE = 0.7  # of the window, or of the action's segment when it is shorter
BACKGROUND_SHARE = 0.3  # no action has more than this share of a background window
SLACK_S = 1.0  # a segment may end this far past the video (annotations and files disagree)


@register_task
class Localisation(Classification):
    """Untrimmed `segments` -> labelled windows; reports window accuracy and temporal mAP."""

    name = "localisation"
    key = "segments"
    untrimmed = True

    def labels(self, rows: list[ClipRow]) -> list[str]:
        actions = {s[2] for r in rows for s in (r.segments or ())}
        actions |= {r.label for r in rows if r.label is not None}
        return [BACKGROUND] + sorted(actions - {BACKGROUND})

    def names(self, row: ClipRow) -> list[str]:
        # an untrimmed row has no one name: validation holds out whole videos, unstratified
        return [row.label] if row.label is not None else []

    def problem(self, row: ClipRow, labels: list[str]) -> str | None:
        if row.segments is None and row.label is None:
            return f"{row.where}: missing key 'segments' for task localisation"
        if row.segments is not None and (row.start is not None or row.end is not None):
            return f"{row.where}: a row with 'segments' is a whole video: drop 'start'/'end'"
        unknown = sorted({s[2] for s in row.segments or ()} - set(labels))
        if unknown:
            return f"{row.where}: segment label {unknown[0]!r} is not one of the model's labels"
        return _overlap(row)

    def clips(self, row: ClipRow, duration: float, window: float) -> list[ClipRow]:
        """The labelled training windows of an untrimmed row (rules: module doc)."""
        if row.segments is None:
            return [row]
        late = [s for s in row.segments if s[1] > duration + SLACK_S]
        if late:
            raise ValueError(
                f"{row.where}: segment {late[0][0]:g}-{late[0][1]:g} s ({late[0][2]}) ends "
                f"after the video ({duration:.2f} s)"
            )
        stride, out, i = window / 2, [], 0
        while i * stride + window <= duration + 1e-6:
            s = i * stride
            label = window_label(s, s + window, row.segments)
            if label is not None:
                out.append(replace(row, start=s, end=s + window, label=label, segments=None))
            i += 1
        return out

    def segment_report(self, truth: list[dict], found: list[dict]) -> dict:
        """Temporal mAP of `found` segments against the rows' `truth` (ActivityNet's
        protocol, `temporal_map`): `tmap_30` ... `tmap_70`, `average_map`, AP per class."""
        return evaluate_segments(truth, found)


def _overlap(row: ClipRow) -> str | None:
    """A row problem when two segments of one class overlap (one action twice would teach
    and score it twice); None when none do."""
    last: dict[str, tuple[float, float]] = {}
    for s, e, label in row.segments or ():  # sorted by start
        if label in last and s < last[label][1]:
            a, b = last[label]
            return (
                f"{row.where}: segments {a:g}-{b:g} and {s:g}-{e:g} s of {label!r} overlap: "
                "merge them into one"
            )
        last[label] = (s, e)
    return None


def window_label(start: float, end: float, segments) -> str | None:
    """The label a window [start, end) trains on: an action, `background`, or None
    (ambiguous: a boundary near its centre, or two actions filling it). An action's share
    of a window is their overlap over the shorter of the two (a short action wholly inside
    a window fills it)."""
    actions: set[str] = set()
    most = 0.0
    for s, e, label in segments:
        overlap = min(end, e) - max(start, s)
        if overlap <= 0:
            continue
        share = overlap / min(end - start, e - s)
        most = max(most, share)
        if share >= ACTION_SHARE - 1e-9:
            actions.add(label)
    if len(actions) > 1:
        return None  # two actions fill the window: neither label is its truth
    if actions:
        return actions.pop()
    return BACKGROUND if most <= BACKGROUND_SHARE else None

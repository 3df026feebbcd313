"""Why a manifest box cannot be a detection target: one rule for importers and training.

The importers (`vdg_tf/data/box_importers.py`) and the detection task (`tasks/detection.py`)
skip the same bad boxes for the same reasons, counted by reason: a box outside [0, 1],
with x2 <= x1 or y2 <= y1, at a time outside the clip, with an unknown label, or not four
numbers. A bad box is never clipped into a target that says something else.
"""

from __future__ import annotations

import math

NOT_A_BOX = "not four numbers"
OUTSIDE = "outside [0, 1]"
EMPTY = "x2 <= x1 or y2 <= y1"
TIME = "time outside the clip"
UNKNOWN_LABEL = "unknown label"


def box_problem(
    box: object, t: object, duration: float | None = None, label: str | None = ""
) -> tuple[str, str] | None:
    """Why a relative box at time `t` cannot be a target, as (reason, detail), or None.

    `duration` (seconds, None when unknown) bounds `t`; a `label` of None is unknown.
    """
    if not isinstance(box, (list, tuple)) or len(box) != 4 or not all(is_number(v) for v in box):
        return NOT_A_BOX, f"box {box!r}"
    if not is_number(t):
        return TIME, f"t {t!r} is not a number"
    x1, y1, x2, y2 = (float(v) for v in box)
    if label is None:
        return UNKNOWN_LABEL, f"box {[x1, y1, x2, y2]}"
    if not all(0.0 <= v <= 1.0 for v in (x1, y1, x2, y2)):
        return OUTSIDE, f"box {[x1, y1, x2, y2]}"
    if x2 <= x1 or y2 <= y1:
        return EMPTY, f"box {[x1, y1, x2, y2]}"
    if t < 0 or (duration is not None and t >= duration):
        end = f"{duration:g} s" if duration is not None else "?"
        return TIME, f"t {float(t):g} s, clip 0-{end}"
    return None


def is_number(value: object) -> bool:
    """Whether `value` is a finite real number (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

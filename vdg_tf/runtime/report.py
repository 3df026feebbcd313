"""What `vdg predict` shows a person: a line per window or event, and a timeline plot."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from vdg_tf.files import atomic_path  # noqa: E402
from vdg_tf.runtime.events import clock, describe  # noqa: E402
from vdg_tf.runtime.segments import is_segment  # noqa: E402


def format_record(record: dict) -> str:
    """`clip.mp4  00:02.0-00:04.0  dog 0.91, cat 0.05` (or the task's value, or an event)."""
    where = shown_name(record["source"])
    if "event" in record:
        return f"{where}  EVENT {describe(record)}"
    if "boxes" in record:  # a frame's detections: label, score and box (x1 y1 x2 y2)
        found = ", ".join(
            f"{b['label']} {b['score']:.2f} [{' '.join(f'{v:.2f}' for v in b['box'])}]"
            for b in record["boxes"]
        )
        return f"{where}  {clock(record['t'])}  {found or '-'}"
    span = f"{clock(record['start'])}-{clock(record['end'])}"
    if is_segment(record):
        return f"{where}  {span}  SEGMENT {record['label']} {record['score']:.2f}"
    if "top" in record:
        what = ", ".join(f"{t['label']} {t['score']:.2f}" for t in record["top"])
        if "labels" in record:
            what = f"[{', '.join(record['labels'])}]  {what}"
    else:
        what = ", ".join(
            f"{k} {v}" for k, v in record.items() if k not in ("source", "start", "end")
        )
    return f"{where}  {span}  {what}"


def shown_name(source: str) -> str:
    """The file name of `source` as text any terminal or font can show: a name that is not
    UTF-8 (Python keeps its bytes as surrogates, which cannot be encoded) shows them as
    `\\xff` escapes instead of failing the line or the plot."""
    name = Path(str(source)).name or str(source)
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def plot_timeline(
    timeline: list[tuple[str, float, float, dict[str, float]]],
    path: str | Path,
    events: list[dict] = (),
    top: int = 5,
) -> Path:
    """Scores over time (window centres), one line per series that ever scores high (the
    `top` by peak), one panel per source; events shaded."""
    sources = list(dict.fromkeys(t[0] for t in timeline)) or [""]
    fig, axes = plt.subplots(len(sources), 1, figsize=(10, 2.6 * len(sources)), squeeze=False)
    for ax, source in zip(axes[:, 0], sources, strict=True):
        rows = [t for t in timeline if t[0] == source]
        if not rows:
            continue
        centres = np.array([(s + e) / 2 for _, s, e, _ in rows])
        names = list(rows[0][3])
        peaks = {n: max(r[3][n] for r in rows) for n in names}
        for name in sorted(names, key=lambda n: -peaks[n])[:top]:
            ax.plot(centres, [r[3][name] for r in rows], label=name, lw=1.5)
        for e in events:
            if e.get("source") == source:
                ax.axvspan(e["start"], e["end"], color="C3", alpha=0.15)
        values = [r[3][n] for r in rows for n in names]
        if min(values) >= 0 and max(values) <= 1:
            ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("score")
        ax.set_title(shown_name(source), fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return Path(path)

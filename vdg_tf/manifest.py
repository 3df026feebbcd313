"""Manifest reading and validation: one JSON object per line, paths relative to the file.

Each row becomes a `ClipRow` with absolute paths, so the decoder never guesses where a
file is. A bad row is reported by its manifest and line number and the problem; values
are checked by type (a path is a string, `true` is not a number) and range (`start` and
`end` finite, `start` >= 0 and before `end`), so no bad value reaches the decoder.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from vdg_tf.files import atomic_write_text


@dataclass(frozen=True)
class ClipRow:
    """One validated manifest row; `line` is its 1-based line number in `manifest` (the
    manifest's path), which together name the row in error messages and skip counts."""

    line: int
    video: str
    text: str = ""
    label: str | None = None
    labels: tuple[str, ...] = ()
    target: float | None = None
    audio: str | None = None
    question: str | None = None
    answer: str | None = None
    start: float | None = None
    end: float | None = None
    manifest: str = ""
    # localisation: (start, end, label) of each action in an untrimmed video; None: no key
    segments: tuple[tuple[float, float, str], ...] | None = None
    # detection: (t, box, label) as written (checked by the task, which skips and counts
    # bad boxes), and every annotated frame time; None: no key
    boxes: tuple[tuple[object, object, object], ...] | None = None
    times: tuple[float, ...] | None = None

    @property
    def where(self) -> str:
        """`manifest.jsonl line 3 (clip.mp4)`: the row for a person reading a message."""
        name = f"{Path(self.manifest).name} " if self.manifest else ""
        return f"{name}line {self.line} ({Path(self.video).name})"

    @property
    def place(self) -> str:
        """`manifest.jsonl line 3`: where the row is written."""
        return f"{self.manifest} line {self.line}" if self.manifest else f"line {self.line}"

    @property
    def key(self) -> tuple[str, int]:
        """The row's identity across manifests: (manifest path, line)."""
        return (self.manifest, self.line)


class ManifestError(ValueError):
    """A manifest line that cannot become a clip: message names the line and the problem."""


def parse_row(obj: object, line: int, root: Path, manifest: str = "") -> ClipRow:
    """Validate one decoded JSON value and resolve its paths against `root`."""
    if not isinstance(obj, dict):
        raise ManifestError(f"line {line}: expected a JSON object, got {type(obj).__name__}")
    if not obj.get("video"):
        raise ManifestError(f"line {line}: missing key 'video' (a path to a video file)")
    _string(obj, "video", line)
    text = _string(obj, "text", line, "")
    audio = _string(obj, "audio", line)
    question, answer = _string(obj, "question", line), _string(obj, "answer", line)
    label = obj.get("label")
    if label is not None and (isinstance(label, bool) or not isinstance(label, str | int)):
        raise ManifestError(f"line {line}: 'label' must be a string, got {_shown(label)}")
    labels = obj.get("labels", ())
    if not isinstance(labels, list | tuple) or not all(isinstance(x, str) for x in labels):
        raise ManifestError(f"line {line}: 'labels' must be a list of strings")
    start, end, target = (_number(obj, k, line) for k in ("start", "end", "target"))
    if start is not None and start < 0:
        raise ManifestError(f"line {line}: 'start' must be >= 0 seconds, got {start:g}")
    if end is not None and end <= (start or 0.0):
        raise ManifestError(f"line {line}: 'end' ({end:g}) must be after 'start' ({start or 0:g})")
    return ClipRow(
        line=line,
        video=str(root / obj["video"]),
        text=text,
        label=None if label is None else str(label),
        labels=tuple(labels),
        target=target,
        audio=None if not audio else str(root / audio),
        question=question,
        answer=answer,
        start=start,
        end=end,
        manifest=manifest,
        segments=_segments(obj, line),
        boxes=_boxes(obj, line),
        times=_times(obj, line),
    )


def _boxes(obj: dict, line: int) -> tuple[tuple[object, object, object], ...] | None:
    """`obj["boxes"]` as (t, box, label) triples, values as written (lists as tuples): a
    bad box is the detection task's to skip and count, not a row problem; a list that is
    not of objects is."""
    value = obj.get("boxes")
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(b, dict) for b in value):
        raise ManifestError(f"line {line}: 'boxes' must be a list of objects {{t, box, label}}")
    return tuple(
        (b.get("t"), tuple(b["box"]) if isinstance(b.get("box"), list) else b.get("box"),
         b.get("label"))
        for b in value
    )  # fmt: skip


def _times(obj: dict, line: int) -> tuple[float, ...] | None:
    """`obj["times"]`: annotated frame times in seconds (>= 0), sorted and distinct."""
    value = obj.get("times")
    if value is None:
        return None
    ok = isinstance(value, list) and all(
        isinstance(t, int | float) and not isinstance(t, bool) and math.isfinite(t) and t >= 0
        for t in value
    )
    if not ok:
        raise ManifestError(f"line {line}: 'times' must be a list of seconds >= 0")
    return tuple(sorted({float(t) for t in value}))


def _segments(obj: dict, line: int) -> tuple[tuple[float, float, str], ...] | None:
    """`obj["segments"]` as (start, end, label) tuples in time order; a segment that is
    not `{"start", "end", "label"}` with 0 <= start < end is a row problem naming it."""
    value = obj.get("segments")
    if value is None:
        return None
    if not isinstance(value, list):
        raise ManifestError(f"line {line}: 'segments' must be a list, got {_shown(value)}")
    out = []
    for i, seg in enumerate(value):
        if not isinstance(seg, dict):
            raise ManifestError(f"line {line}: segments[{i}] must be an object, got {_shown(seg)}")
        where = f"line {line}: segments[{i}]"
        start, end = (_number(seg, k, line) for k in ("start", "end"))
        label = seg.get("label")
        if start is None or end is None or not isinstance(label, str) or not label:
            raise ManifestError(f"{where}: needs 'start', 'end' (seconds) and a 'label'")
        if start < 0 or end <= start:
            raise ManifestError(f"{where}: needs 0 <= start < end, got {start:g}-{end:g}")
        out.append((start, end, label))
    return tuple(sorted(out))


def _string(obj: dict, key: str, line: int, default: str | None = None) -> str | None:
    """`obj[key]` when it is a string (or null / absent: `default`); else a row problem."""
    value = obj.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise ManifestError(f"line {line}: '{key}' must be a string, got {_shown(value)}")
    return value


def _number(obj: dict, key: str, line: int) -> float | None:
    """`obj[key]` as a finite float (null / absent: None). `true` is not a number, and
    NaN or Infinity (which Python's JSON reader accepts) is no time or target."""
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ManifestError(f"line {line}: '{key}' must be a number, got {_shown(value)}")
    if not math.isfinite(value):
        raise ManifestError(
            f"line {line}: '{key}' must be a finite number, got {json.dumps(value)}"
        )
    return float(value)


def _shown(value: object) -> str:
    """A JSON value as the user wrote it, and its JSON type."""
    kind = {bool: "boolean", int: "number", float: "number", str: "string", list: "list"}
    text = json.dumps(value)
    text = text if len(text) <= 40 else text[:37] + "..."
    return f"{text} ({kind.get(type(value), 'object')})"


def read_manifest(path: str | Path, strict: bool = False) -> tuple[list[ClipRow], list[str]]:
    """Read a manifest; returns (rows, problems). In `strict` mode the first problem raises.

    Problems are one-line strings `"data/manifest.jsonl line 3: ..."` (the path as given);
    the rows that parsed are still returned, so a long run goes on without the bad ones.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ManifestError(f"{path}: cannot read manifest: {e.strerror}") from None
    rows: list[ClipRow] = []
    problems: list[str] = []
    for i, line_bytes in enumerate(raw.splitlines(), start=1):
        if not line_bytes.strip():
            continue
        try:
            text = line_bytes.decode("utf-8")
            rows.append(parse_row(json.loads(text), i, path.parent, str(path)))
        except UnicodeDecodeError:
            problems.append(f"{path} line {i}: not valid UTF-8")
        except json.JSONDecodeError as e:
            problems.append(f"{path} line {i}: invalid JSON ({e.msg})")
        except ManifestError as e:
            problems.append(f"{path} {e}")
        if problems and strict:
            raise ManifestError(problems[0])
    if not rows and not problems:
        raise ManifestError(f"{path}: manifest has no rows")
    return rows, problems


def label_vocabulary(rows: list[ClipRow]) -> list[str]:
    """Sorted distinct labels of single- and multi-label rows."""
    names = {r.label for r in rows if r.label is not None}
    for r in rows:
        names.update(r.labels)
    return sorted(names)


def write_manifest(path: str | Path, rows: list[dict]) -> None:
    """Write dict rows as JSON Lines atomically (temp file, then rename)."""
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))

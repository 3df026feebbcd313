"""Manifest reading and validation: one JSON object per line, paths relative to the file.

Each row becomes a `ClipRow` with absolute paths, so the decoder never guesses where a
file is. A bad row is reported by its manifest line number and the problem.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from vdg_tf.files import atomic_write_text


@dataclass(frozen=True)
class ClipRow:
    """One validated manifest row; `line` is its 1-based line number for error messages."""

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

    @property
    def where(self) -> str:
        return f"line {self.line} ({Path(self.video).name})"


class ManifestError(ValueError):
    """A manifest line that cannot become a clip: message names the line and the problem."""


def parse_row(obj: object, line: int, root: Path) -> ClipRow:
    """Validate one decoded JSON value and resolve its paths against `root`."""
    if not isinstance(obj, dict):
        raise ManifestError(f"line {line}: expected a JSON object, got {type(obj).__name__}")
    if "video" not in obj or not isinstance(obj["video"], str) or not obj["video"]:
        raise ManifestError(f"line {line}: missing key 'video' (a path to a video file)")
    text = obj.get("text", "")
    if not isinstance(text, str):
        raise ManifestError(f"line {line}: 'text' must be a string, got {type(text).__name__}")
    labels = obj.get("labels", ())
    if not isinstance(labels, list | tuple) or not all(isinstance(x, str) for x in labels):
        raise ManifestError(f"line {line}: 'labels' must be a list of strings")
    for key in ("start", "end", "target"):
        if key in obj and not isinstance(obj[key], int | float):
            raise ManifestError(f"line {line}: '{key}' must be a number, got {obj[key]!r}")
    start, end = obj.get("start"), obj.get("end")
    if start is not None and end is not None and end <= start:
        raise ManifestError(f"line {line}: 'end' ({end}) must be after 'start' ({start})")
    audio = obj.get("audio")
    return ClipRow(
        line=line,
        video=str(root / obj["video"]),
        text=text,
        label=None if obj.get("label") is None else str(obj["label"]),
        labels=tuple(labels),
        target=None if obj.get("target") is None else float(obj["target"]),
        audio=None if not audio else str(root / audio),
        question=obj.get("question"),
        answer=obj.get("answer"),
        start=None if start is None else float(start),
        end=None if end is None else float(end),
    )


def read_manifest(path: str | Path, strict: bool = False) -> tuple[list[ClipRow], list[str]]:
    """Read a manifest; returns (rows, problems). In `strict` mode the first problem raises.

    Problems are one-line strings `"manifest.jsonl line 3: ..."`; the rows that parsed are
    still returned, so a long run goes on without the bad ones.
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
            rows.append(parse_row(json.loads(text), i, path.parent))
        except UnicodeDecodeError:
            problems.append(f"{path.name} line {i}: not valid UTF-8")
        except json.JSONDecodeError as e:
            problems.append(f"{path.name} line {i}: invalid JSON ({e.msg})")
        except ManifestError as e:
            problems.append(f"{path.name} {e}")
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

"""Import box-annotated video datasets (YouTube-VIS / TAO JSON, AVA CSV) into manifests.

Detection rows carry their boxes in the manifest (`vdg_tf/manifest.py`) the rest of
vdg_tf reads, one row per video:

    {"video": "clips/a.mp4",
     "boxes": [{"t": 0.5, "box": [x1, y1, x2, y2], "label": "person"}, ...],
     "times": [0.0, 0.5, ...]}

`box` is relative to the frame (0-1), `t` is seconds from the start of the file. `times`
lists every annotated frame time, also those with no box: an exhaustively annotated frame
with no object is a background example, and a detector that never sees one learns to
find objects everywhere. A time whose only boxes were bad is left out of `times`, so a
frame with an object whose box was dropped never trains as background.

A bad box (outside [0, 1], x2 <= x1 or y2 <= y1, at a time outside the clip when the clip
is probed, an unknown label, not four numbers) is skipped and counted by its reason,
never clipped into a target that says something else; the rest of the row is kept. A
video with no file under `videos_dir`, one that does not decode, or one whose every box
is bad is skipped, counted and named in `skipped_files`, as in `vdg_tf/data/importers.py`.

Example:
  info = from_ava("ava_train_v2.2.csv", "videos/", "data/ava.jsonl",
                  label_map="ava_action_list_v2.2.pbtxt", time_offset=0)
  info["skipped_box_reasons"]  # {"outside [0, 1]": 3}
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import av

from vdg_tf.data.importers import VIDEO_SUFFIXES, _relative
from vdg_tf.manifest import write_manifest
from vdg_tf.tasks.boxes import (  # noqa: F401  the importers' names for the shared rule
    EMPTY,
    NOT_A_BOX,
    OUTSIDE,
    TIME,
    UNKNOWN_LABEL,
    box_problem,
)

EXAMPLES = 20  # bad boxes named one by one in the summary; the rest are only counted
DIGITS = 6  # relative coordinates are rounded here: float noise, not a clip


@dataclass(frozen=True)
class VideoFacts:
    """What probing a file tells: frame size, frame rate and duration (seconds)."""

    width: int
    height: int
    fps: float
    duration: float | None


@dataclass
class _Tally:
    """Every skip of an import: videos named one per line, boxes counted by reason."""

    files: list[str] = field(default_factory=list)
    reasons: Counter = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def bad_box(self, where: str, reason: str, detail: str) -> None:
        self.reasons[reason] += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append(f"{where}: {reason} ({detail})")


@dataclass
class _Row:
    """The boxes and annotated times of one video, gathered before it is written."""

    video: Path
    facts: VideoFacts | None
    boxes: dict[tuple, dict] = field(default_factory=dict)  # de-duplicated, in order
    times: set[float] = field(default_factory=set)
    bad_times: set[float] = field(default_factory=set)
    bad: int = 0
    first_problem: str = ""

    def add(self, tally: _Tally, where: str, t: float, box: object, label: str | None) -> None:
        """Keep the box when it is good; otherwise count why and remember its time."""
        problem = box_problem(box, t, self.facts.duration if self.facts else None, label)
        t = round(float(t), DIGITS) if _number(t) else t
        if problem:
            tally.bad_box(where, *problem)
            self.bad += 1
            self.first_problem = self.first_problem or f"{where}: {problem[0]} ({problem[1]})"
            if _number(t):
                self.bad_times.add(t)
            return
        rel = [round(float(v), DIGITS) for v in box]
        self.boxes.setdefault((t, *rel, label), {"t": t, "box": rel, "label": label})
        self.times.add(t)

    def manifest_row(self, base: Path) -> dict:
        """The manifest row: boxes sorted by time; times minus those whose boxes all failed."""
        kept = {b["t"] for b in self.boxes.values()}
        times = sorted(t for t in self.times if t in kept or t not in self.bad_times)
        boxes = sorted(self.boxes.values(), key=lambda b: (b["t"], b["label"], b["box"]))
        return {"video": _relative(self.video, base), "boxes": boxes, "times": times}


def probe_video(path: str | Path) -> tuple[VideoFacts | None, str | None]:
    """(facts, None) when the first frame of `path` decodes, else (None, why not)."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return None, "no video stream"
            stream = container.streams.video[0]
            for frame in container.decode(stream):
                rate = float(stream.average_rate or stream.guessed_rate or 0) or None
                return VideoFacts(
                    frame.width, frame.height, rate or 0.0, _duration(container)
                ), None
            return None, "no frame could be decoded"
    except (av.FFmpegError, OSError, ValueError) as e:
        return None, " ".join(str(e).split()) or type(e).__name__


def _duration(container: av.container.InputContainer) -> float | None:
    """The container's duration in seconds, or the video stream's, or None."""
    if container.duration:
        return container.duration / av.time_base
    stream = container.streams.video[0]
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return None


def from_coco_video(
    annotations_json: str | Path,
    videos_dir: str | Path,
    out: str | Path,
    *,
    fps: float | None = None,
    probe: bool = True,
) -> dict:
    """Write manifest `out` from a YouTube-VIS / TAO style video annotation JSON.

    The JSON holds `videos` (`id`, `file_names` of the annotated frames, optional
    `width`/`height`), `categories` (`id`, `name`) and `annotations` (`video_id`,
    `category_id`, `bboxes`: per annotated frame an absolute `[x, y, w, h]` or null when
    the object is not in that frame). A video is found under `videos_dir` by its
    `file_name`/`name`, or by the folder of its frames (`abc123/00000.jpg` -> `abc123.mp4`).

    Args:
      annotations_json: the annotation file.
      videos_dir: the folder holding the videos (one file per JSON video).
      out: the manifest to write.
      fps: annotated frames per second of the video file; None takes the file's own rate
        (right when the file was encoded from the annotated frames).
      probe: open each video (size, rate, duration, decodability); without it the JSON
        must give `width`/`height`, `fps` must be set and times are not bounded.

    Returns:
      {"manifest", "rows", "labels", "boxes", "skipped", "skipped_files",
       "skipped_boxes", "skipped_box_reasons", "skipped_box_examples", "splits"}
    """
    path, videos_dir, out = Path(annotations_json), Path(videos_dir), Path(out)
    data = _read_json(path)
    found = _video_files(videos_dir)
    names = {
        c.get("id"): c["name"]
        for c in data["categories"]
        if isinstance(c, dict) and isinstance(c.get("name"), str) and c["name"].strip()
    }
    by_video: dict[object, list[dict]] = {}
    for ann in data["annotations"]:
        if isinstance(ann, dict):
            by_video.setdefault(ann.get("video_id"), []).append(ann)
    tally, rows = _Tally(), []
    videos = [v for v in data["videos"] if isinstance(v, dict)]
    for video in videos:
        anns = by_video.pop(video.get("id"), [])
        row = _coco_row(video, anns, found, names, fps, probe, tally)
        if row is not None:
            rows.append(row)
    if by_video:  # annotations of videos the JSON does not list: nowhere to put them
        n = sum(len(a) for a in by_video.values())
        first = next(iter(by_video))
        tally.files.append(
            f"{path.name}: {n} annotations name a video_id not in 'videos' ({first})"
        )
    return _finish(out, rows, tally, f"{path}: no video matched a file in {videos_dir}")


def _coco_row(
    video: dict,
    anns: list[dict],
    found: dict[str, Path],
    names: dict,
    fps: float | None,
    probe: bool,
    tally: _Tally,
) -> _Row | None:
    """One video's row (None when skipped: no file, no decode, no size or rate)."""
    frames = video.get("file_names") or []
    where = f"video {video.get('id')}"
    file = _match(_coco_names(video, frames), found)
    if file is None:
        tried = ", ".join(_coco_names(video, frames)) or "no file_name, name or file_names"
        tally.files.append(f"{where}: no video file in the videos folder for {tried}")
        return None
    facts, problem = probe_video(file) if probe else (None, None)
    if problem:
        tally.files.append(f"{where}: {file}: {problem}")
        return None
    # boxes are in the JSON's pixels: its size wins over the file's (a resized copy)
    width = video.get("width") or (facts.width if facts else None)
    height = video.get("height") or (facts.height if facts else None)
    rate = fps or (facts.fps if facts else None)
    if not (_number(width) and _number(height) and _number(rate) and rate > 0):
        tally.files.append(f"{where}: {file}: unknown frame size or rate (probe, or pass fps)")
        return None
    row = _Row(file, facts)
    count = max([len(frames)] + [len(a.get("bboxes") or []) for a in anns])
    end = facts.duration if facts and facts.duration else math.inf
    row.times.update(round(i / rate, DIGITS) for i in range(count) if i / rate < end)
    for ann in anns:
        label = names.get(ann.get("category_id"))
        boxes = ann.get("bboxes") or []
        if not isinstance(boxes, list):
            tally.bad_box(f"{where} annotation {ann.get('id')}", NOT_A_BOX, "'bboxes' not a list")
            row.bad += 1
            continue
        for i, xywh in enumerate(boxes):
            if xywh is None:
                continue  # the object is not in this frame
            here = f"{where} annotation {ann.get('id')} frame {i}"
            row.add(tally, here, i / rate, _relative_box(xywh, width, height), label)
    return row


def _coco_names(video: dict, frames: list) -> list[str]:
    """The names a JSON video may have on disk, most specific first."""
    names = [str(video[k]) for k in ("file_name", "name") if video.get(k)]
    if frames and isinstance(frames[0], str) and "/" in frames[0].replace("\\", "/"):
        names.append(Path(frames[0].replace("\\", "/")).parent.as_posix())
    return names


def _relative_box(xywh: object, width: float, height: float) -> object:
    """Absolute [x, y, w, h] pixels as relative [x1, y1, x2, y2] (unchanged when malformed)."""
    if not isinstance(xywh, (list, tuple)) or len(xywh) != 4 or not all(map(_number, xywh)):
        return xywh
    x, y, w, h = (float(v) for v in xywh)
    return [x / width, y / height, (x + w) / width, (y + h) / height]


def from_ava(
    table: str | Path,
    videos_dir: str | Path,
    out: str | Path,
    *,
    label_map: str | Path | dict[int, str] | None = None,
    time_offset: float = 0.0,
    probe: bool = True,
) -> dict:
    """Write manifest `out` from an AVA CSV (`video_id,timestamp,x1,y1,x2,y2,action_id,
    person_id`, no header, boxes relative) and the folder `videos_dir` of `<video_id>.*`.

    AVA gives one line per (person box, action): a box with three actions becomes three
    boxes with the same coordinates and three labels.

    Args:
      table: the CSV.
      videos_dir: folder holding `<video_id>.<ext>` files (searched recursively).
      out: the manifest to write.
      label_map: AVA's `.pbtxt` action list (`name` + `label_id`/`id`), or {id: name};
        an action id outside it is an unknown label. None keeps the id as the label.
      time_offset: seconds subtracted from each timestamp (AVA's 15-minute cuts start at
        the movie's 900th second: pass 900 for files cut that way).
      probe: open each video (decodability, duration that bounds the times).

    Returns:
      {"manifest", "rows", "labels", "boxes", "skipped", "skipped_files",
       "skipped_boxes", "skipped_box_reasons", "skipped_box_examples", "splits"}
    """
    table, videos_dir, out = Path(table), Path(videos_dir), Path(out)
    if not table.is_file():
        raise FileNotFoundError(f"{table}: no such CSV file")
    found = _video_files(videos_dir)
    actions = read_label_map(label_map) if isinstance(label_map, (str, Path)) else label_map
    tally = _Tally()
    rows: dict[str, _Row | None] = {}
    missing: Counter = Counter()
    with table.open(newline="", encoding="utf-8") as f:
        for i, rec in enumerate(csv.reader(f), start=1):
            if not rec or not "".join(rec).strip():
                continue
            where = f"{table.name} line {i}"
            vid = rec[0].strip()
            if vid not in rows:
                rows[vid] = _ava_video(vid, found, probe, tally)
            if rows[vid] is None:
                missing[vid] += 1
                continue
            _ava_box(rows[vid], rec, where, actions, time_offset, tally)
    for vid, n in missing.items():
        if vid not in found:
            tally.files.append(f"{table.name}: no video for {vid} in {videos_dir} ({n} lines)")
    kept = [r for r in rows.values() if r is not None]
    return _finish(out, kept, tally, f"{table}: no line matched a video in {videos_dir}")


def _ava_video(vid: str, found: dict[str, Path], probe: bool, tally: _Tally) -> _Row | None:
    """The row of AVA video `vid` (None when its file is missing or does not decode)."""
    file = found.get(vid)
    if file is None:
        return None  # named once with its line count at the end
    facts, problem = probe_video(file) if probe else (None, None)
    if problem:
        tally.files.append(f"{file}: {problem}")
        return None
    return _Row(file, facts)


def _ava_box(
    row: _Row,
    rec: list[str],
    where: str,
    actions: dict[int, str] | None,
    time_offset: float,
    tally: _Tally,
) -> None:
    """Add one AVA line's box to `row` (or count why it is bad)."""
    if len(rec) < 7:
        tally.bad_box(where, NOT_A_BOX, f"{len(rec)} fields, expected 7 or 8")
        row.bad += 1
        return
    t, box = _float(rec[1]), [_float(v) for v in rec[2:6]]
    t = t - time_offset if t is not None else rec[1]
    action = rec[6].strip()
    if actions is None:
        label = action or None
    else:
        label = actions.get(int(action)) if action.isdigit() else None
    row.add(tally, where, t, box if None not in box else rec[2:6], label)


def read_label_map(path: str | Path) -> dict[int, str]:
    """AVA's action list `.pbtxt` as {id: name} (`label { name: "..." label_id: 1 }` or
    the older `item { name: "..." id: 1 }`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such label map")
    text = path.read_text(encoding="utf-8")
    entries = re.findall(r"\{([^{}]*)\}", text)
    mapping = {}
    for body in entries:
        name = re.search(r'name:\s*"([^"]*)"', body)
        num = re.search(r"\b(?:label_id|id):\s*(\d+)", body)
        if name and num:
            mapping[int(num.group(1))] = name.group(1)
    if not mapping:
        raise ValueError(f'{path}: no `name: "..."` with `label_id: N` entry (an AVA .pbtxt?)')
    return mapping


def _finish(out: Path, rows: list[_Row], tally: _Tally, nothing: str) -> dict:
    """Write the manifest (videos whose every box was bad are skipped) and the summary."""
    written = []
    for row in rows:
        if row.bad and not row.boxes:
            tally.files.append(
                f"{row.video}: every box skipped ({row.bad}), first: {row.first_problem}"
            )
            continue
        written.append(row.manifest_row(out.parent))
    if not written:
        first = f": {tally.files[0]}" if tally.files else ""
        raise ValueError(f"{nothing}{first}")
    write_manifest(out, written)
    return {
        "manifest": str(out),
        "rows": len(written),
        "labels": sorted({b["label"] for r in written for b in r["boxes"]}),
        "boxes": sum(len(r["boxes"]) for r in written),
        "skipped": len(tally.files),
        "skipped_files": tally.files,
        "skipped_boxes": sum(tally.reasons.values()),
        "skipped_box_reasons": dict(sorted(tally.reasons.items())),
        "skipped_box_examples": tally.examples,
        "splits": {},
    }


def _read_json(path: Path) -> dict:
    """The annotation JSON, checked for the three lists this importer reads."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such annotation file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not JSON ({' '.join(str(e).split())})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object with videos/categories/annotations")
    for key in ("videos", "categories", "annotations"):
        if not isinstance(data.get(key), list):
            raise ValueError(
                f"{path}: missing list '{key}' (YouTube-VIS / TAO style; test splits have no "
                "annotations)"
            )
    return data


def _video_files(folder: Path) -> dict[str, Path]:
    """Videos under `folder` by path without suffix (relative, posix) and by stem."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder of videos")
    found: dict[str, Path] = {}
    for p in sorted(folder.rglob("*")):
        if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file():
            found.setdefault(p.relative_to(folder).with_suffix("").as_posix(), p)
            found.setdefault(p.stem, p)
    return found


def _match(names: list[str], found: dict[str, Path]) -> Path | None:
    """The first of `names` (with or without a video suffix) that `found` holds."""
    for name in names:
        p = Path(name.replace("\\", "/"))
        key = p.with_suffix("") if p.suffix.lower() in VIDEO_SUFFIXES else p
        for candidate in (key.as_posix(), key.name):
            if candidate in found:
                return found[candidate]
    return None


def _float(text: str) -> float | None:
    """`text` as a finite float, or None."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _number(value: object) -> bool:
    """Whether `value` is a finite real number (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

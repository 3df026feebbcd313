"""Import ActivityNet / THUMOS14 temporal annotations into a localisation manifest.

Both benchmarks ship one JSON file: `database` maps a video id to its `subset`
("training", "validation", "testing"; THUMOS14 conversions use "Validation"/"Test"), an
optional `duration` and `annotations`, a list of `{"segment": [start, end], "label"}` in
seconds over the whole untrimmed video. This importer writes the manifest rows the
localisation task reads, `{"video": ..., "segments": [{"start", "end", "label"}]}`, all of
them to `out` and each subset's to `<out stem>_<subset>.jsonl` beside it.

Video files are found by id under `videos` at any depth with any video suffix
(`VIDEO_SUFFIXES`): `<id>.mp4` or, as ActivityNet's crawler names them, `v_<id>.mkv`.

Nothing bad is fatal, and nothing is silently changed:
- a video with no file, or one that does not decode, is skipped and named;
- a segment with end <= start, outside the video (its decoded duration, else the JSON's
  `duration`), or with an empty label or one outside the taxonomy is skipped with its
  reason; one ending at most `tolerance` seconds after the video's end (annotations and
  downloads disagree by a frame or two) is cut at the end and counted as `clipped`;
- overlapping segments of one class in one video are merged into one and counted;
- a video whose every segment was bad is skipped (it would teach "background" where an
  action is); a video with no annotations at all (ActivityNet's test subset) is kept with
  no `segments` key, for inference, and counted as `unannotated`.

Example:
  info = from_activitynet("activity_net.v1-3.min.json", "videos/", "data/anet.jsonl")
  # data/anet.jsonl, data/anet_training.jsonl, data/anet_validation.jsonl, ...
  info["rows"], info["skipped"], info["skipped_files"][:3]
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import av

from vdg_tf.data.importers import VIDEO_SUFFIXES
from vdg_tf.manifest import write_manifest


def from_activitynet(
    annotations_json: str | Path,
    videos_dir: str | Path,
    out_manifest: str | Path,
    *,
    labels: Iterable[str] | None = None,
    probe: bool = True,
    tolerance: float = 1.0,
) -> dict:
    """Write localisation manifests from an ActivityNet/THUMOS-layout JSON file.

    Args:
      annotations_json: the annotation file (`database` -> id -> `subset`, `annotations`).
      videos_dir: the folder holding the downloaded videos (searched at any depth).
      out_manifest: the manifest of every kept video; per subset `<stem>_<subset>.jsonl`.
      labels: the known classes; default the JSON's `taxonomy` node names when it has
        one, else any non-empty label.
      probe: open each video (first frame, duration); a file that fails is skipped.
      tolerance: seconds a segment may run past the video's end and be cut there.

    Returns:
      {"manifest", "rows", "skipped", "skipped_files", "labels", "splits": {subset:
       {"manifest", "rows"}}, "segments", "skipped_segments", "segment_problems",
       "merged", "clipped", "unannotated"}

    Raises:
      FileNotFoundError / ValueError: the JSON or the folder cannot be read, or no video
        was kept (one line naming the file and the first problem).
    """
    path, videos, out = Path(annotations_json), Path(videos_dir), Path(out_manifest)
    database, known = _read_database(path, labels)
    if not videos.is_dir():
        raise FileNotFoundError(f"{videos}: no such folder of videos")
    found = _index_videos(videos)
    tally = {"skipped": [], "problems": [], "merged": 0, "clipped": 0, "unannotated": 0}
    by_subset: dict[str, list[dict]] = {}
    for vid, entry in database.items():
        row = _video_row(str(vid), entry, found, known, out.parent, probe, tolerance, tally)
        if row is not None:
            subset = str(entry.get("subset") or "none")
            by_subset.setdefault(subset, []).append(row)
    rows = [r for subset_rows in by_subset.values() for r in subset_rows]
    if not rows:
        first = f": {tally['skipped'][0]}" if tally["skipped"] else ""
        raise ValueError(f"{path}: no video of its database was kept from {videos}{first}")
    write_manifest(out, rows)
    splits = {}
    for subset, subset_rows in sorted(by_subset.items()):
        name = re.sub(r"[^A-Za-z0-9_-]+", "_", subset)
        split_path = out.with_name(f"{out.stem}_{name}{out.suffix or '.jsonl'}")
        write_manifest(split_path, subset_rows)
        splits[subset] = {"manifest": str(split_path), "rows": len(subset_rows)}
    segments = [s for r in rows for s in r.get("segments", ())]
    return {
        "manifest": str(out),
        "rows": len(rows),
        "skipped": len(tally["skipped"]),
        "skipped_files": tally["skipped"],
        "labels": sorted({s["label"] for s in segments}),
        "splits": splits,
        "segments": len(segments),
        "skipped_segments": len(tally["problems"]),
        "segment_problems": tally["problems"],
        "merged": tally["merged"],
        "clipped": tally["clipped"],
        "unannotated": tally["unannotated"],
    }


def clean_segments(
    annotations: list,
    duration: float | None,
    known: set[str] | None,
    where: str,
    tolerance: float = 1.0,
) -> tuple[list[dict], list[str], int, int]:
    """Valid `{start, end, label}` segments of one video, sorted by start then label.

    Returns (segments, problems (one line each, starting with `where`), merged, clipped):
    see the module docstring for what is skipped, cut and merged.
    """
    kept, problems, clipped = [], [], 0
    for i, ann in enumerate(annotations):
        here = f"{where} annotation {i}"
        seg, problem = _segment(ann, duration, known, tolerance)
        if problem:
            problems.append(f"{here}: {problem}")
            continue
        clipped += seg.pop("clipped")
        kept.append(seg)
    merged_segments, merged = _merge_overlaps(kept)
    return merged_segments, problems, merged, clipped


def _segment(ann: object, duration: float | None, known: set[str] | None, tolerance: float):
    """(segment dict with a `clipped` 0/1 flag, None) or (None, why it is skipped)."""
    if not isinstance(ann, Mapping):
        return None, f"expected an object, got {type(ann).__name__}"
    raw = ann.get("segment")
    if (
        not isinstance(raw, list | tuple)
        or len(raw) != 2
        or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in raw)
        or not all(math.isfinite(x) for x in raw)
    ):
        return None, f"'segment' must be [start, end] in seconds, got {json.dumps(raw)}"
    start, end = float(raw[0]), float(raw[1])
    label = ann.get("label")
    if not isinstance(label, str) or not label.strip():
        return None, f"empty or missing label ({json.dumps(label)})"
    if known is not None and label not in known:
        return None, f"label '{label}' is not a known class"
    if end <= start:
        return None, f"end {end:g} <= start {start:g}"
    if start < 0:
        return None, f"starts before the video ({start:g} s)"
    clipped = 0
    if duration is not None:
        if start >= duration:
            return None, f"starts at {start:g} s, after the video's end ({duration:g} s)"
        if end > duration + tolerance:
            return None, f"ends at {end:g} s, after the video's end ({duration:g} s)"
        if end > duration:
            end, clipped = duration, 1
    return {"start": start, "end": end, "label": label, "clipped": clipped}, None


def _merge_overlaps(segments: list[dict]) -> tuple[list[dict], int]:
    """Merge overlapping segments of one label (touching ones stay two); (result, merges)."""
    out: list[dict] = []
    merged = 0
    for seg in sorted(segments, key=lambda s: (s["label"], s["start"], s["end"])):
        last = out[-1] if out else None
        if last and last["label"] == seg["label"] and seg["start"] < last["end"]:
            last["end"] = max(last["end"], seg["end"])
            merged += 1
        else:
            out.append(dict(seg))
    return sorted(out, key=lambda s: (s["start"], s["label"])), merged


def _video_row(vid, entry, found, known, base, probe, tolerance, tally) -> dict | None:
    """The manifest row of one database entry, or None with the reason in `tally`."""
    where = f"video '{vid}'"
    if not isinstance(entry, Mapping):
        tally["skipped"].append(f"{where}: entry must be an object, got {type(entry).__name__}")
        return None
    annotations = entry.get("annotations") or []
    if not isinstance(annotations, list):
        tally["skipped"].append(f"{where}: 'annotations' must be a list")
        return None
    video = found.get(vid) or found.get(f"v_{vid}")
    if video is None:
        tally["skipped"].append(f"{where}: no file {vid}.* or v_{vid}.* (video suffixes)")
        return None
    duration = _number(entry.get("duration"))
    if probe:
        problem, probed = probe_video(video)
        if problem:
            tally["skipped"].append(f"{where}: {video}: {problem}")
            return None
        duration = probed if probed is not None else duration
    row: dict = {"video": _relative(video, base)}
    if not annotations:
        tally["unannotated"] += 1
        return row
    segments, problems, merged, clipped = clean_segments(
        annotations, duration, known, where, tolerance
    )
    tally["problems"] += problems
    tally["merged"] += merged
    tally["clipped"] += clipped
    if not segments:
        tally["skipped"].append(f"{where}: no valid segment ({len(problems)} skipped)")
        return None
    row["segments"] = segments
    return row


def probe_video(path: Path) -> tuple[str | None, float | None]:
    """(why `path` holds no decodable video or None, its duration in seconds or None)."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return "no video stream", None
            stream = container.streams.video[0]
            duration = None
            if container.duration is not None:
                duration = container.duration / av.time_base
            elif stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            for _ in container.decode(stream):
                return None, duration
            return "no frame could be decoded", None
    except (av.FFmpegError, OSError, ValueError) as e:
        return " ".join(str(e).split()) or type(e).__name__, None


def _read_database(path: Path, labels: Iterable[str] | None) -> tuple[dict, set[str] | None]:
    """The `database` object of the JSON file and the known labels (None: any)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such annotation file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a JSON file ({e})") from None
    database = data.get("database") if isinstance(data, dict) else None
    if not isinstance(database, dict):
        raise ValueError(f"{path}: no 'database' object (expected database -> id -> annotations)")
    if labels is not None:
        return database, set(labels)
    taxonomy = data.get("taxonomy")
    if isinstance(taxonomy, list) and taxonomy:
        return database, {
            str(n["nodeName"]) for n in taxonomy if isinstance(n, dict) and "nodeName" in n
        }
    return database, None


def _index_videos(videos: Path) -> dict[str, Path]:
    """{file stem: path} of every video under `videos` (the first in sorted order wins)."""
    found: dict[str, Path] = {}
    for p in sorted(videos.rglob("*")):
        if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file():
            found.setdefault(p.stem, p)
    return found


def _number(value: object) -> float | None:
    """A finite positive JSON number as float, else None (an unknown duration)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value > 0 else None


def _relative(path: Path, base: Path) -> str:
    """`path` as a manifest in `base` names it: relative (the tree moves with its
    manifest), absolute across drives."""
    try:
        return Path(os.path.relpath(path.resolve(), base.resolve())).as_posix()
    except ValueError:
        return str(path.resolve())

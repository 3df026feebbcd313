"""Import datasets laid out the usual ways into manifests: class folders and Kinetics CSVs.

Real video datasets do not come as JSON Lines: UCF101 and HMDB51 are one folder per class
with official split lists beside them, Kinetics is a CSV of YouTube ids and time windows.
These importers write the manifest (`vdg_tf/manifest.py`) those layouts mean, so the rest
of vdg_tf reads one format. Paths in the manifests are relative to the manifest's folder.

Captions come from a sidecar next to each video with the same stem: `.srt` or `.vtt`
(parsed by pysubs2, which handles both and their malformed variants better than a hand
parser would) or plain `.txt`. For a row with a `start`/`end` window only the subtitle
lines that overlap the window become its text. An SRT cue whose timing line is malformed
is skipped and named in `caption_errors` (pysubs2 alone would read its index and timing
into the caption before it).

Nothing bad is fatal: a split list naming a missing file, a CSV row with no video or an
empty label or split, a file with no decodable video stream and a class folder with no
video are skipped, counted and named one per line in `skipped_files`.

Example:
  info = from_folders("UCF-101", "data/ucf.jsonl", splits="ucfTrainTestlist")
  # data/ucf.jsonl, data/ucf_train.jsonl, data/ucf_test.jsonl
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from pathlib import Path

import av

from vdg_tf.manifest import write_manifest

VIDEO_SUFFIXES = (".avi", ".mp4", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".ts")
CAPTION_SUFFIXES = (".srt", ".vtt", ".txt")
CSV_COLUMNS = ("youtube_id", "time_start", "time_end")  # `label` and `split` are optional


def from_folders(
    root: str | Path,
    out: str | Path,
    splits: str | Path | None = None,
    split: int = 1,
    probe: bool = True,
) -> dict:
    """Write manifest `out` from `root/<class>/<video>` (UCF101 / HMDB51 layout).

    With `splits` (a folder holding UCF101's `trainlist0N.txt`/`testlist0N.txt` or
    HMDB51's `<class>_test_splitN.txt`), also writes `<out stem>_train.jsonl` and
    `<out stem>_test.jsonl` beside `out` for split number `split`.

    Args:
      root: the dataset folder, one sub-folder per class (its name is the label).
      out: the manifest to write (every video found).
      splits: folder of official split lists, or None.
      split: which official split (1-3).
      probe: open each video and decode its first frame; files that fail are skipped.

    Returns:
      {"manifest", "rows", "labels", "skipped", "skipped_files", "captions",
       "caption_errors", "splits": {"train": {"manifest", "rows"}, "test": {...}}}
    """
    root, out = Path(root), Path(out)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder (expected one sub-folder per class)")
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise ValueError(f"{root}: no class folders (expected {root}/<label>/<video>)")
    skipped: list[str] = []
    caption_errors: list[str] = []
    rows: dict[str, dict] = {}  # key: "class/file" relative to root, lower-case
    for folder in classes:
        videos = sorted(p for p in folder.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
        kept = 0
        for video in videos:
            problem = _probe(video) if probe else None
            if problem:
                skipped.append(f"{video}: {problem}")
                continue
            row = {"video": _relative(video, out.parent), "label": folder.name}
            text = caption(video, errors=caption_errors)
            if text:
                row["text"] = text
            rows[video.relative_to(root).as_posix().lower()] = row
            kept += 1
        if not kept:
            what = "no decodable video" if videos else "no video file"
            skipped.append(
                f"{folder}: class folder has {what} ({', '.join(VIDEO_SUFFIXES[:3])} ...)"
            )
    if not rows:
        raise ValueError(f"{root}: no usable video in any class folder: {skipped[0]}")
    write_manifest(out, list(rows.values()))
    info = _summary(out, list(rows.values()), skipped, caption_errors)
    if splits is not None:
        chosen = read_split_lists(splits, split, skipped)
        info["splits"] = {}
        for name, keys in chosen.items():
            split_rows = []
            for key, where in keys:
                if key in rows:
                    split_rows.append(rows[key])
                else:
                    skipped.append(f"{where}: {key}: no such video under {root}")
            path = out.with_name(f"{out.stem}_{name}{out.suffix or '.jsonl'}")
            write_manifest(path, split_rows)
            info["splits"][name] = {"manifest": str(path), "rows": len(split_rows)}
        info["skipped"], info["skipped_files"] = len(skipped), skipped
    return info


def read_split_lists(
    folder: str | Path, split: int = 1, skipped: list[str] | None = None
) -> dict[str, list[tuple[str, str]]]:
    """The official train/test lists of split `split` in `folder`, as (key, where) pairs.

    UCF101: `trainlist0N.txt` / `testlist0N.txt`, lines `Class/v_X.avi [index]`.
    HMDB51: `<class>_test_splitN.txt`, lines `name.avi 1|2|0` (train, test, unused).
    A key is `class/file` in lower case (UCF101's lists and folders disagree on case, e.g.
    `HandStandPushups`); `where` is `list.txt line N`. Bad lines go to `skipped`.
    """
    folder = Path(folder)
    skipped = skipped if skipped is not None else []
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder of split lists")
    ucf = {k: folder / f"{k}list{split:02d}.txt" for k in ("train", "test")}
    hmdb = sorted(folder.glob(f"*_test_split{split}.txt"))
    chosen: dict[str, list[tuple[str, str]]] = {"train": [], "test": []}
    if ucf["train"].is_file() or ucf["test"].is_file():
        for name, path in ucf.items():
            if not path.is_file():
                raise FileNotFoundError(
                    f"{path}: missing (the {name} half of UCF101 split {split})"
                )
            for i, parts in _lines(path):
                chosen[name].append((parts[0].replace("\\", "/").lower(), f"{path.name} line {i}"))
        return chosen
    if not hmdb:
        raise FileNotFoundError(
            f"{folder}: no split lists for split {split} (expected UCF101's "
            f"trainlist{split:02d}.txt/testlist{split:02d}.txt or HMDB51's "
            f"<class>_test_split{split}.txt)"
        )
    for path in hmdb:
        label = path.name[: -len(f"_test_split{split}.txt")]
        for i, parts in _lines(path):
            where = f"{path.name} line {i}"
            if len(parts) < 2 or parts[1] not in ("0", "1", "2"):
                skipped.append(f"{where}: expected 'name.avi 1|2|0', got '{' '.join(parts)}'")
                continue
            if parts[1] != "0":
                name = "train" if parts[1] == "1" else "test"
                chosen[name].append((f"{label}/{parts[0]}".lower(), where))
    return chosen


def from_csv(
    table: str | Path,
    videos: str | Path,
    out: str | Path,
    probe: bool = True,
) -> dict:
    """Write manifest `out` from a Kinetics-style CSV (`youtube_id,time_start,time_end,
    label,split`) and the folder `videos` holding the downloaded files.

    A row matches `<youtube_id>_<start:06d>_<end:06d>.<ext>` (a clip already cut to the
    window: the whole file, no `start`/`end`) or `<youtube_id>.<ext>` (the full video:
    `start`/`end` from the CSV), anywhere under `videos`. Rows with no file, and rows with
    an empty cell in a `label` or `split` column the CSV has, are skipped and counted (the
    reason in `skipped_files`). A byte-order mark (Excel's "CSV UTF-8") is read. When the `split` column has several values, `<out stem>_<split>.jsonl`
    is also written per value.

    Returns:
      {"manifest", "rows", "labels", "skipped", "skipped_files", "captions",
       "caption_errors", "splits": {name: {"manifest", "rows"}}}
    """
    table, videos, out = Path(table), Path(videos), Path(out)
    if not table.is_file():
        raise FileNotFoundError(f"{table}: no such CSV file")
    if not videos.is_dir():
        raise FileNotFoundError(f"{videos}: no such folder of videos")
    found = {p.stem: p for p in sorted(videos.rglob("*")) if p.suffix.lower() in VIDEO_SUFFIXES}
    skipped: list[str] = []
    caption_errors: list[str] = []
    rows: list[dict] = []
    by_split: dict[str, list[dict]] = {}
    # utf-8-sig: Excel's "CSV UTF-8" starts the file with a byte-order mark
    with table.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        fields = [c.strip() for c in reader.fieldnames or []]
        missing = [c for c in CSV_COLUMNS if c not in fields]
        if missing:
            raise ValueError(f"{table}: missing column '{missing[0]}' (has: {', '.join(fields)})")
        for i, raw in enumerate(reader, start=2):  # line 1 is the header
            rec = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
            where = f"{table.name} line {i}"
            problem = _csv_row_problem(rec, fields)
            if problem:
                skipped.append(f"{where}: {problem}")
                continue
            row = _csv_row(rec, where, found, videos, out.parent, probe, skipped, caption_errors)
            if row is not None:
                rows.append(row)
                by_split.setdefault(rec.get("split") or "", []).append(row)
    if not rows:
        first = f": {skipped[0]}" if skipped else ""
        raise ValueError(f"{table}: no row matched a video in {videos}{first}")
    write_manifest(out, rows)
    info = _summary(out, rows, skipped, caption_errors)
    if len(by_split) > 1:
        for name, split_rows in sorted(by_split.items()):
            path = out.with_name(f"{out.stem}_{name}{out.suffix or '.jsonl'}")
            write_manifest(path, split_rows)
            info["splits"][name] = {"manifest": str(path), "rows": len(split_rows)}
    return info


def _csv_row_problem(rec: dict[str, str], fields: list[str]) -> str | None:
    """Why a CSV row cannot become a manifest row before its video is looked for (None: it can).

    An empty cell in a `label` or `split` column the CSV has would give a row that trains
    without a class, or lands in no split: skipped, as a row with no video is.
    """
    try:
        start, end = float(rec["time_start"]), float(rec["time_end"])
    except ValueError:
        return "time_start/time_end must be numbers"
    if not 0 <= start < end:
        return f"need 0 <= time_start < time_end, got {start:g}, {end:g}"
    for column in ("label", "split"):
        if column in fields and not rec.get(column):
            return f"empty {column} (the CSV has a {column} column)"
    return None


def _csv_row(
    rec: dict[str, str],
    where: str,
    found: dict[str, Path],
    videos: Path,
    base: Path,
    probe: bool,
    skipped: list[str],
    caption_errors: list[str],
) -> dict | None:
    """The manifest row of a checked CSV row, or None (the reason added to `skipped`):
    the cut clip `<id>_<start>_<end>` is the whole window, a full video `<id>` is windowed."""
    start, end = float(rec["time_start"]), float(rec["time_end"])
    vid = rec["youtube_id"]
    cut = found.get(f"{vid}_{int(start):06d}_{int(end):06d}")
    video = cut or found.get(vid)
    if video is None:
        skipped.append(f"{where}: no video for {vid} in {videos}")
        return None
    problem = _probe(video) if probe else None
    if problem:
        skipped.append(f"{where}: {video}: {problem}")
        return None
    row: dict = {"video": _relative(video, base)}
    window = None if cut else (start, end)
    if window:
        row["start"], row["end"] = window
    text = caption(video, window, caption_errors)
    if text:
        row["text"] = text
    if rec.get("label"):
        row["label"] = rec["label"]
    return row


def caption(
    video: str | Path,
    window: tuple[float, float] | None = None,
    errors: list[str] | None = None,
) -> str:
    """The text of the sidecar beside `video` (`.srt`, `.vtt` or `.txt`, same stem), or "".

    With `window` (start, end seconds), only subtitle lines overlapping it. A sidecar that
    cannot be read is named in `errors` and gives "" (the video is still usable); so is
    each SRT cue with a malformed timing line, skipped.
    """
    import pysubs2

    video = Path(video)
    for suffix in CAPTION_SUFFIXES:
        path = video.with_suffix(suffix)
        if not path.is_file():
            continue
        try:
            if suffix == ".txt":
                return " ".join(path.read_text(encoding="utf-8", errors="replace").split())
            if suffix == ".srt":
                text = _without_malformed_cues(path, errors)
                subs = pysubs2.SSAFile.from_string(text, format_="srt")
            else:
                subs = pysubs2.load(str(path), encoding="utf-8")
        except (OSError, ValueError, pysubs2.exceptions.Pysubs2Error) as e:
            if errors is not None:
                errors.append(f"{path}: cannot read captions: {' '.join(str(e).split())}")
            return ""
        lines = []
        for event in subs:
            if event.is_comment:
                continue
            lo, hi = event.start / 1000.0, event.end / 1000.0
            if window is not None and not (lo < window[1] and hi > window[0]):
                continue
            text = " ".join(event.plaintext.split())
            if text and (not lines or lines[-1] != text):
                lines.append(text)
        return " ".join(lines)
    return ""


def _without_malformed_cues(path: Path, errors: list[str] | None) -> str:
    """The SRT file's text without its cues whose timing line is malformed, each named in
    `errors` ("`path` line N: malformed cue timing ...").

    pysubs2 takes a line with two timestamps as a cue's start; any other line, a broken
    timing line included, becomes text of the cue before, so a `00:00:0x,000 --> ...` cue
    would put its index, timing and text into the previous caption. A line with `-->` and
    not two timestamps is such a line: it, the index line above it and the cue's text up
    to the next blank line are dropped.
    """
    from pysubs2.time import TIMESTAMP

    lines = path.read_text(encoding="utf-8-sig").splitlines()
    kept: list[str] = []
    dropping = False
    for n, line in enumerate(lines, start=1):
        if dropping:
            dropping = bool(line.strip())
            continue
        if "-->" in line and len(TIMESTAMP.findall(line)) != 2:
            if kept and kept[-1].strip().isdigit():
                kept.pop()  # the cue's index
            if errors is not None:
                errors.append(
                    f"{path} line {n}: malformed cue timing '{line.strip()}' (cue skipped)"
                )
            dropping = True
            continue
        kept.append(line)
    return "\n".join(kept) + "\n"


def _probe(path: Path) -> str | None:
    """Why `path` holds no decodable video (None when its first frame decodes)."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return "no video stream"
            stream = container.streams.video[0]
            if stream.codec_context is None:
                return "unknown or unsupported video codec (no FFmpeg decoder)"
            for _ in container.decode(stream):
                return None
            return "no frame could be decoded"
    except (av.FFmpegError, OSError, ValueError) as e:
        return " ".join(str(e).split()) or type(e).__name__


def _relative(path: Path, base: Path) -> str:
    """`path` as the manifest at `base` names it: relative where possible (the tree can
    move with its manifest), absolute across drives."""
    try:
        return Path(os.path.relpath(path.resolve(), base.resolve())).as_posix()
    except ValueError:
        return str(path.resolve())


def _lines(path: Path) -> Iterable[tuple[int, list[str]]]:
    """(line number, whitespace-split fields) of each non-blank line of a split list."""
    text = path.read_text(encoding="utf-8", errors="replace")
    for i, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield i, line.split()


def _summary(out: Path, rows: list[dict], skipped: list[str], caption_errors: list[str]) -> dict:
    """The `--json` contract: `rows`, `skipped`, `labels`, plus what a person checks."""
    return {
        "manifest": str(out),
        "rows": len(rows),
        "labels": sorted({r["label"] for r in rows if "label" in r}),
        "skipped": len(skipped),
        "skipped_files": skipped,
        "captions": sum(1 for r in rows if r.get("text")),
        "caption_errors": caption_errors,
        "splits": {},
    }

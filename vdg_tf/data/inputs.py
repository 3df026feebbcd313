"""Check a data path before any work starts, with an error that says what to do instead.

Training and evaluation read a manifest (JSON Lines) or a `vdg preprocess` folder. The
usual mistakes are pointing `--data` at a folder of videos or at one video file; both
used to fail deep inside (`no index.json`, `argmax of an empty sequence`) after a run
folder was already made. `check_data_path` names the mistake and the manifest format, and
runs before anything is written.
"""

from __future__ import annotations

from pathlib import Path

MANIFEST_FORMAT = (
    'a manifest is JSON Lines, one clip a line, paths relative to it: {"video": '
    '"clips/0001.mp4", "text": "a caption", "label": "dog"}'
)
MEDIA_SUFFIXES = frozenset(
    [
        ".mp4",
        ".m4v",
        ".mov",
        ".mkv",
        ".webm",
        ".avi",
        ".flv",
        ".wmv",
        ".mpg",
        ".mpeg",
        ".ts",
        ".mts",
        ".3gp",
        ".h264",
        ".gif",
        ".wav",
        ".flac",
        ".mp3",
        ".m4a",
        ".aac",
        ".ogg",
        ".opus",
    ]
)
INDEX = "index.json"  # what `vdg preprocess` writes in its folder


def _media_in(folder: Path, limit: int = 2000) -> int:
    """Media files under `folder` (looks at the first `limit` entries)."""
    n = 0
    for i, p in enumerate(folder.rglob("*")):
        if i >= limit:
            break
        n += p.suffix.lower() in MEDIA_SUFFIXES
    return n


def _not_json_lines(path: Path) -> str | None:
    """Why `path` cannot be a manifest from its first bytes, or None if it may be one."""
    with path.open("rb") as f:
        head = f.read(512)
    if b"\0" in head:
        return "binary data"
    start = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if start and not start.startswith(b"{"):
        return "its first line is not a JSON object"
    return None


def check_data_path(path: str | Path, flag: str = "--data") -> None:
    """Raise a one-line error if `path` cannot be a manifest or a preprocessed folder.

    Args:
      path: what the user passed.
      flag: the option it came from, named in the message.

    Raises:
      FileNotFoundError: nothing at `path`.
      ValueError: a folder that holds videos but no manifest, a media file, or a file
        that is not JSON Lines; the message gives the manifest format.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{flag} {p}: no such manifest or folder")
    if p.is_dir():
        if (p / INDEX).is_file():
            return
        manifests = sorted(m.name for m in p.glob("*.jsonl"))
        if manifests:
            raise ValueError(
                f"{flag} {p}: a folder, not a manifest; it holds {', '.join(manifests[:3])}: "
                f"pass one of them (e.g. {flag} {p / manifests[0]})"
            )
        media = _media_in(p)
        if media and class_folders(p):
            return
        if media:
            raise ValueError(
                f"{flag} {p}: a folder of {media} media files, not a manifest; "
                f"{MANIFEST_FORMAT} (a folder per class: the folder name is the label)"
            )
        raise ValueError(
            f"{flag} {p}: not a manifest (.jsonl) or a `vdg preprocess` folder (no {INDEX})"
        )
    if p.suffix.lower() in MEDIA_SUFFIXES:
        raise ValueError(
            f"{flag} {p}: a media file, not a manifest; list it in one: {MANIFEST_FORMAT}"
        )
    why = _not_json_lines(p)
    if why:
        raise ValueError(f"{flag} {p}: not a manifest ({why}); {MANIFEST_FORMAT}")


def class_folders(path: str | Path) -> list[Path]:
    """The class sub-folders of `path` that hold media (UCF101 layout), or [] if none."""
    p = Path(path)
    if not p.is_dir() or (p / INDEX).is_file():
        return []
    subs = sorted(c for c in p.iterdir() if c.is_dir() and not c.name.startswith("."))
    return [c for c in subs if _media_in(c, limit=200)]


def resolve_data(path: str | Path, work: str | Path, flag: str = "--data") -> Path:
    """The manifest or preprocessed folder that `path` names, importing a folder of class
    folders on the fly (as `vdg manifest from-folders` does) into `work/<name>.jsonl`.

    Args:
      path: a manifest, a `vdg preprocess` folder, or a folder of `<label>/<video>` folders.
      work: where an imported manifest is written (a run's own folder, or a temp folder).
      flag: the option it came from, named in errors.

    Returns:
      The path training and evaluation read (`path` itself unless it was imported).
    """
    check_data_path(path, flag)
    p = Path(path)
    if not class_folders(p):
        return p
    from vdg_tf.data.importers import from_folders  # probes videos with PyAV: only when needed

    out = Path(work) / f"{p.resolve().name or 'data'}.jsonl"
    from_folders(p, out)
    return out

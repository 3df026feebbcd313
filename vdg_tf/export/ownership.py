"""Which files an export may replace: only those an earlier `vdg export` wrote.

An export writes a model file and its sidecars (`model.labels.txt`, `model.config.yaml`,
...) at paths the user names, where a user's own files may already sit
(`--out notes.txt` would otherwise replace `notes.txt` and `notes.labels.txt`). So every
`.tflite` vdg writes carries a small record in its own metadata (`vdg_tf.export`: the
vdg_tf version, the target and a hash of each sidecar it wrote). A later export replaces:

- the model file only when it holds that record, or any `vdg_tf.*` metadata (exports made
  before the record, with `--embed-metadata` or `--incremental`);
- a sidecar only when the old model's record names it with the same content (a sidecar
  the user has since edited is theirs), or the old model embeds that same text.

Anything else is refused in one line naming the file; `force=True` (`--force`) replaces
on purpose.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from vdg_tf import __version__
from vdg_tf.files import ForeignPathError

RECORD_KEY = "export"  # metadata entry `vdg_tf.export` of every .tflite vdg writes
_TFLITE_ID = b"TFL3"  # the flatbuffer file identifier, at bytes 4..8 of every .tflite


def digest(text: str) -> str:
    """A short content hash of a sidecar's text (what the record keeps)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def export_record(target: str, sidecars: dict[str, str]) -> str:
    """The `vdg_tf.export` metadata text of an export of `target` writing `sidecars`
    ({plain name: text})."""
    record = {
        "vdg_tf": __version__,
        "target": target,
        "sidecars": {name: digest(text) for name, text in sidecars.items()},
    }
    return json.dumps(record, sort_keys=True)


def vdg_metadata(path: Path) -> dict[str, str] | None:
    """The `vdg_tf.*` metadata of file `path` if it is a .tflite that has some, else None
    (a user's file, whatever its name, is never parsed as a flatbuffer)."""
    from vdg_tf.export.tflite import read_metadata

    with path.open("rb") as f:
        head = f.read(8)
    if head[4:8] != _TFLITE_ID:
        return None
    try:
        entries = read_metadata(path)
    except Exception:  # a damaged flatbuffer: not something vdg can vouch for
        return None
    return entries or None


def _sidecar_is_ours(path: Path, name: str, previous: dict[str, str] | None) -> bool:
    """Whether the existing sidecar `path` (plain name `name`) is what the export whose
    metadata is `previous` wrote."""
    if previous is None:
        return False
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return False
    if previous.get(name) == text:  # an older export embedding its texts
        return True
    try:
        written = json.loads(previous.get(RECORD_KEY, "{}")).get("sidecars", {})
    except (ValueError, AttributeError):
        return False
    return written.get(name) == digest(text)


def check_export_paths(model_file: Path, sidecars: dict[str, Path], force: bool = False) -> None:
    """Raise ForeignPathError (one line naming the file) unless the export may write
    `model_file` and each of `sidecars` ({plain name: path}); see the module docstring.

    A folder at any of these paths is refused even with `force` (a file cannot replace it).
    """
    for path in (model_file, *sidecars.values()):
        if path.is_dir():
            raise ForeignPathError(f"{path}: is a folder; give the file to write (FILE.tflite)")
    if force:
        return
    previous = vdg_metadata(model_file) if model_file.is_file() else None
    if model_file.exists() and previous is None:
        raise ForeignPathError(
            f"{model_file}: exists and was not written by vdg export; not replaced "
            "(--force replaces it)"
        )
    for name, path in sidecars.items():
        if path.exists() and not _sidecar_is_ours(path, name, previous):
            raise ForeignPathError(
                f"{path}: exists and was not written by vdg export for {model_file.name}; "
                "not replaced (--force replaces it)"
            )

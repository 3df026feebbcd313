"""Atomic file writes: every artifact goes to a temp name in its folder, then is renamed.

A run killed mid-write leaves the previous file (or none), never a truncated one. Folders
vdg writes carry a `.vdg` marker: vdg replaces or writes into a folder only when it is
empty, missing, or marked (or holds a `bundle.json`), so it never destroys a folder of the
user's that happens to sit at the path it was given.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a free temp path beside `path` (same suffix, so writers that go by the suffix
    pick the same format); once the block succeeds it is renamed to `path`.

    Any writer can fill it (`model.save`, `fig.savefig`, PyAV, a TFRecord writer). If the
    block raises, the temp file is removed and `path` is left as it was. A `path` that is
    an existing folder is refused before anything is written (a file cannot replace it).
    """
    path = Path(path)
    if path.is_dir():
        raise ForeignPathError(f"{path}: is a folder; give a file path inside it, not the folder")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}"
    )
    os.close(fd)
    tmp = Path(name)
    tmp.unlink()  # the name is reserved for us; writers that refuse an existing file get it free
    try:
        yield tmp
        if tmp.is_file():
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)  # inside the try: a failed rename leaves no temp file behind
    except BaseException:
        _remove(tmp)
        raise


def _remove(path: Path) -> None:
    """Delete a temp file or folder that a failed write left."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` through a temp file and a rename."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj: dict) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


MARKER = ".vdg"  # in every folder vdg writes: what it may replace or write into later
_MARKED_BY = (MARKER, "bundle.json")  # bundle.json: run folders written before the marker


class ForeignPathError(ValueError):
    """A path vdg was asked to write that holds something vdg did not create."""


def is_vdg_output(path: str | Path) -> bool:
    """Whether folder `path` was written by vdg (it holds the marker or a `bundle.json`)."""
    return any((Path(path) / name).is_file() for name in _MARKED_BY)


def check_replaceable(path: str | Path) -> None:
    """Raise ForeignPathError unless vdg may write folder `path`: missing, empty, or a
    previous vdg output. One line naming the path and the way out."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ForeignPathError(f"{path}: exists and is not a folder; vdg will not replace it")
    if path.is_dir() and any(path.iterdir()) and not is_vdg_output(path):
        raise ForeignPathError(
            f"{path}: folder holds files vdg did not write (no {MARKER} marker); "
            "give an empty or new folder"
        )


def claim_dir(path: str | Path) -> Path:
    """Create folder `path` (or take a previous vdg output) for vdg to write into, and
    mark it; a folder of someone else's files is refused (`check_replaceable`)."""
    path = Path(path)
    check_replaceable(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / MARKER).touch()
    return path


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temp folder beside `path`; on success it replaces `path`.

    `path` must be missing, empty or a previous vdg output (checked before the block runs
    and again before the swap). The swap renames the old folder aside, renames the new one
    in, then removes the old one, so a failure at any point leaves one whole folder at
    `path` (or the old one beside it, under a `.old` name). The new folder is marked.
    """
    path = Path(path)
    check_replaceable(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        yield tmp
        (tmp / MARKER).touch()
        check_replaceable(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if not path.exists():
        os.rename(tmp, path)
        return
    aside = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".old"))
    os.rename(path, aside / "old")
    try:
        os.rename(tmp, path)
    except BaseException:
        os.rename(aside / "old", path)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def data_identity(path: str | Path | None) -> dict | None:
    """What a data path is, for telling one run's inputs from another's: the resolved path,
    size and modification time of a file (of a records folder, its `index.json`)."""
    if path is None:
        return None
    p = Path(path)
    target = p / "index.json" if p.is_dir() else p
    stat = target.stat() if target.exists() else None
    return {
        "path": str(p.resolve()),
        "bytes": stat.st_size if stat else None,
        "mtime_ns": stat.st_mtime_ns if stat else None,
    }

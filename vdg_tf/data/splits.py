"""Hold a validation split out of a training manifest: seeded, stratified, by row.

Picking the best epoch on the split that is then reported makes the report a selection
bias, not a measurement. When a user has no validation manifest, `hold_out` sets aside a
fraction of the training rows instead, stratified by what each row teaches (its label,
label set or answer, as the task reads it) so every class keeps the same share in both
parts. The choice depends only on the manifest's rows, the fraction and the seed, so a
rerun, a resumed run and a pipeline's later stages hold out the same rows; the held-out
rows are also written out (`write_rows`) so the split can be inspected and reused.

Example:
  split = hold_out("data/manifest_train.jsonl", 0.2, seed=0, task=get_task(cfg.data))
  write_rows(split.manifest, split.val_lines, "runs/a/val.jsonl")
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vdg_tf.files import atomic_write_text
from vdg_tf.manifest import read_manifest
from vdg_tf.tasks import Task


@dataclass(frozen=True)
class HeldOut:
    """Which lines of `manifest` are validation rows (the rest train)."""

    manifest: str
    fraction: float
    seed: int
    val_lines: frozenset[int]
    rows: int  # parsed rows in the manifest

    def info(self) -> dict:
        """What a report says about the split."""
        return {
            "held_out_of": self.manifest,
            "fraction": self.fraction,
            "seed": self.seed,
            "val_rows": len(self.val_lines),
            "train_rows": self.rows - len(self.val_lines),
        }


def hold_out(manifest: str | Path, fraction: float, seed: int, task: Task) -> HeldOut:
    """Choose `fraction` of the rows of `manifest` as validation, per stratum.

    A stratum is the set of names a row carries for `task` (a class, a label set, an
    answer; one stratum for value targets). Each stratum gives `fraction` of its rows,
    rounded so the total is `fraction` of all rows, but never its last row: a class seen
    once stays in training (a validation row of a class never trained on is no test of
    the checkpoint). Lines that do not parse stay in training, where they are reported.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"val_split: must be between 0 and 1 (a fraction of rows), got {fraction}")
    path = Path(manifest)
    if path.is_dir():
        raise ValueError(
            f"{path}: val_split holds rows out of a manifest, and this is a preprocessed "
            "folder: pass a validation manifest (--val-data) instead"
        )
    rows, _ = read_manifest(path)
    strata: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for r in rows:
        strata[tuple(sorted(set(task.names(r))))].append(r.line)
    rng = np.random.default_rng(seed)
    want = fraction * len(rows)
    quotas: dict[tuple[str, ...], int] = {}
    remainders = []
    for key in sorted(strata):
        exact = fraction * len(strata[key])
        quotas[key] = min(int(exact), len(strata[key]) - 1)
        remainders.append((exact - int(exact), key))
    # largest remainders first (ties broken by the seed) until the total is reached
    order = sorted(remainders, key=lambda rk: (-rk[0], rng.random()))
    for _, key in order:
        if sum(quotas.values()) >= round(want):
            break
        if quotas[key] < len(strata[key]) - 1:
            quotas[key] += 1
    chosen: set[int] = set()
    for key in sorted(strata):
        lines = np.array(strata[key])
        rng.shuffle(lines)
        chosen.update(int(x) for x in lines[: quotas[key]])
    if not chosen:
        raise ValueError(
            f"{path}: val_split {fraction} of {len(rows)} rows holds out none "
            "(each class keeps at least one training row): use a larger fraction or --val-data"
        )
    return HeldOut(str(path), fraction, seed, frozenset(chosen), len(rows))


def write_rows(manifest: str | Path, lines: frozenset[int], out: str | Path) -> Path:
    """Write the rows of `manifest` at line numbers `lines` to `out`, their paths rewritten
    relative to `out`'s folder (every other key kept as written)."""
    src, out = Path(manifest), Path(out)
    rows = []
    for i, text in enumerate(src.read_bytes().splitlines(), start=1):
        if i not in lines:
            continue
        obj = json.loads(text)
        for key in ("video", "audio"):
            if obj.get(key):
                obj[key] = _moved(src.parent / obj[key], out.parent)
        rows.append(json.dumps(obj) + "\n")
    atomic_write_text(out, "".join(rows))
    return out


def _moved(path: Path, base: Path) -> str:
    """`path` as a manifest in `base` names it (absolute when no relative path exists)."""
    try:
        return Path(os.path.relpath(path.resolve(), base.resolve())).as_posix()
    except ValueError:
        return str(path.resolve())

"""Open training or evaluation data by path: a manifest (`.jsonl`) or a `vdg preprocess` folder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import tensorflow as tf

from vdg_tf.config import DataConfig
from vdg_tf.data.features import TextTokenizer
from vdg_tf.data.pipeline import SkipLog, batched_features, checked_dataset, usable_rows
from vdg_tf.data.records import read_index, records_dataset
from vdg_tf.manifest import read_manifest
from vdg_tf.tasks import get_task


@dataclass
class Source:
    """Unbatched decoded clips plus what training needs to know about them."""

    decoded: tf.data.Dataset
    labels: list[str]
    texts: list[str]
    count: int  # manifest lines (or preprocessed clips): what a skip summary is out of
    # clips an epoch tries to yield: rows with no problem the task cares about (for a
    # preprocessed folder, every clip in it: anomaly training there keeps the normal ones)
    usable: int
    # the decoded clips of one input worker of n, `(n, i)`: rows split off before decoding
    sharded: Callable[[tuple[int, int]], tf.data.Dataset] | None = None

    def shard(self, shard: tuple[int, int]) -> tf.data.Dataset:
        """Input worker `i` of `n`'s clips, `shard=(n, i)`: each row decoded by one worker."""
        if self.sharded is None:
            raise ValueError("this source cannot be split between input workers")
        return self.sharded(shard)

    def steps(self, batch_size: int) -> int:
        """Batches in one epoch (clips that fail to decode make the last one smaller)."""
        return max(1, -(-self.usable // batch_size))


def open_source(
    path: str | Path,
    cfg: DataConfig,
    labels: list[str] | None = None,
    training: bool = False,
    skips: SkipLog | None = None,
    shard: tuple[int, int] | None = None,
    exclude_lines: frozenset[int] = frozenset(),
) -> Source:
    """Decoded clips from a manifest or a preprocessed folder; `labels` default to the data's own.

    `exclude_lines`: manifest lines left out (the rows a validation split holds out).
    """
    skips = skips if skips is not None else SkipLog()
    if Path(path).is_dir():
        index = read_index(path, cfg)
        skips.extend(index["skipped_files"])
        labels = labels or index["labels"]
        ds = records_dataset(path, cfg, labels, training, shard)
        usable = _sharded(index["clips"], shard)
        return Source(
            ds, labels, index["texts"], index["clips"], usable,
            lambda s: records_dataset(path, cfg, labels, training, s),
        )  # fmt: skip
    rows, problems = read_manifest(path, strict=cfg.strict)
    rows = [r for r in rows if r.line not in exclude_lines]
    skips.extend(problems)
    task = get_task(cfg)
    labels = labels or task.labels(rows)
    checked = usable_rows(rows, cfg, labels, skips, training)
    ds = checked_dataset(checked, cfg, labels, training, skips, shard)
    usable = _sharded(len(checked), shard)
    texts = [task.text(r) for r in rows]
    return Source(
        ds, labels, texts, len(rows) + len(problems), usable,
        lambda s: checked_dataset(checked, cfg, labels, training, skips, s),
    )  # fmt: skip


def _sharded(clips: int, shard: tuple[int, int] | None) -> int:
    """How many of `clips` one input worker reads under `shard=(n, i)`."""
    return clips if shard is None else len(range(shard[1], clips, shard[0]))


def dataset_from(
    path: str | Path,
    cfg: DataConfig,
    labels: list[str],
    tokenizer: TextTokenizer,
    training: bool = False,
    skips: SkipLog | None = None,
) -> tf.data.Dataset:
    """Batched model inputs from a manifest or preprocessed folder."""
    return batched_features(
        open_source(path, cfg, labels, training, skips).decoded, cfg, tokenizer, training
    )

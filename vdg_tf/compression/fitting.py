"""How long a compression stage's fine-tuning epoch is."""

from __future__ import annotations

import tensorflow as tf


def epoch_steps(train_ds: tf.data.Dataset, steps_per_epoch: int | None = None) -> int:
    """Batches per fine-tuning epoch: `steps_per_epoch` when given (an endless stream, as
    `vdg run` passes), else the dataset's cardinality, else one counting pass (tf.data
    cannot count a filtered stream). Pruning schedules and LR schedules are built on it."""
    if steps_per_epoch:
        return int(steps_per_epoch)
    n = int(train_ds.cardinality())
    if n == tf.data.INFINITE_CARDINALITY:
        raise ValueError("an endless training stream needs steps_per_epoch")
    return n if n > 0 else sum(1 for _ in train_ds)

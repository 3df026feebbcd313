"""A compression stage's fine-tuning: how long its epoch is, and the compile-and-fit it runs."""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf
import tf_keras as keras


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


def fine_tune(
    model: keras.Model,
    train_ds: tf.data.Dataset,
    epochs: int,
    compile_fn: Callable[[keras.Model, int], None],
    verbose: int = 0,
    steps_per_epoch: int | None = None,
    callbacks: list | None = None,
    validation_ds: tf.data.Dataset | None = None,
    steps: int | None = None,
) -> None:
    """Compile `model` with `compile_fn(model, steps)` and fit it for `epochs` in place.

    `steps`: the epoch's batches when the caller already counted them (`epoch_steps`).
    """
    compile_fn(model, steps or epoch_steps(train_ds, steps_per_epoch))
    model.fit(
        train_ds,
        steps_per_epoch=steps_per_epoch,
        validation_data=validation_ds,
        epochs=epochs,
        verbose=verbose,
        callbacks=callbacks,
    )

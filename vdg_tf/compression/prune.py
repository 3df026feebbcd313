"""Magnitude pruning with tfmot: wrap the prunable layers, fine-tune, strip the wrappers.

Only layers in tfmot's prune registry with prunable weights are wrapped (Conv2D, Dense,
Embedding); everything else (custom layers included) passes through untouched, so any
builder configuration can be pruned.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as keras

sparsity = tfmot.sparsity.keras
PRUNABLE = (keras.layers.Conv2D, keras.layers.Dense, keras.layers.Embedding)


@dataclass
class PruneConfig:
    """Target sparsity, schedule (`polynomial` ramps up, `constant` holds) and fine-tune epochs."""

    target_sparsity: float = 0.5
    schedule: str = "polynomial"
    epochs: int = 4
    frequency: int = 10
    # Output heads and tiny layers hold few weights but decide every prediction:
    # pruning them costs accuracy for no size gain, so they are left dense.
    min_weights: int = 1024
    skip: tuple[str, ...] = ("fused", "video_head", "audio_head", "text_head")

    def make_schedule(self, steps_per_epoch: int) -> sparsity.PruningSchedule:
        if not 0.0 <= self.target_sparsity < 1.0:
            raise ValueError(f"prune.target_sparsity: {self.target_sparsity} must be in [0, 1)")
        total = max(steps_per_epoch * self.epochs, 1)
        freq = max(1, min(self.frequency, total // 4 or 1))
        if self.schedule == "polynomial":
            # reach the target by 2/3 of fine-tuning, then let the weights settle
            end = max(int(total * 2 / 3), 1)
            return sparsity.PolynomialDecay(0.0, self.target_sparsity, 0, end, frequency=freq)
        if self.schedule == "constant":
            return sparsity.ConstantSparsity(self.target_sparsity, 0, frequency=freq)
        raise ValueError(f"prune.schedule: unknown '{self.schedule}' (known: polynomial, constant)")


def is_prunable(layer: keras.layers.Layer) -> bool:
    """A layer type tfmot prunes (DepthwiseConv2D has no prunable weights in its registry)."""
    return isinstance(layer, PRUNABLE) and not isinstance(layer, keras.layers.DepthwiseConv2D)


def selected_for_pruning(layer: keras.layers.Layer, cfg: PruneConfig) -> bool:
    """Prunable, not skipped by name, and big enough to matter."""
    if not is_prunable(layer) or layer.name in cfg.skip:
        return False
    weights = layer.get_weights()
    return bool(weights) and weights[0].size >= cfg.min_weights


def wrap_for_pruning(
    model: keras.Model, schedule: sparsity.PruningSchedule, cfg: PruneConfig | None = None
) -> keras.Model:
    """A copy of `model` with each prunable layer wrapped by `prune_low_magnitude`.

    The wrappers reuse the layers they wrap, so they wrap a fresh copy: pruning never
    touches the weights of the model passed in.
    """
    cfg = cfg or PruneConfig()
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())

    def clone(layer):
        if selected_for_pruning(layer, cfg):
            return sparsity.prune_low_magnitude(layer, pruning_schedule=schedule)
        return layer

    return keras.models.clone_model(copy, clone_function=clone)


def prune(
    model: keras.Model,
    train_ds: tf.data.Dataset,
    cfg: PruneConfig,
    compile_fn: Callable[[keras.Model, int], None],
    validation_ds: tf.data.Dataset | None = None,
    verbose: int = 0,
) -> keras.Model:
    """Prune `model` to `cfg.target_sparsity` while fine-tuning; returns the stripped model.

    Args:
      compile_fn: compiles a model for `(model, steps_per_epoch)`, so pruning trains with
        the same loss as training did.
    """
    steps = int(train_ds.cardinality())
    if steps <= 0:
        steps = sum(1 for _ in train_ds)
    wrapped = wrap_for_pruning(model, cfg.make_schedule(steps), cfg)
    compile_fn(wrapped, steps)
    wrapped.fit(
        train_ds,
        validation_data=validation_ds,
        epochs=cfg.epochs,
        callbacks=[sparsity.UpdatePruningStep()],
        verbose=verbose,
    )
    return sparsity.strip_pruning(wrapped)


def sparsity_table(model: keras.Model) -> dict[str, float]:
    """Fraction of exact zeros in each prunable layer's kernel (or embedding table)."""
    table = {}
    for layer in model.layers:
        if is_prunable(layer) and layer.get_weights():
            w = layer.get_weights()[0]
            table[layer.name] = float(np.mean(w == 0))
    return table


def overall_sparsity(model: keras.Model, cfg: PruneConfig | None = None) -> float:
    """Zero fraction over the kernels selected for pruning (all prunable ones if no cfg)."""
    zeros = total = 0
    for layer in model.layers:
        chosen = (
            selected_for_pruning(layer, cfg) if cfg else is_prunable(layer) and layer.get_weights()
        )
        if chosen:
            w = layer.get_weights()[0]
            zeros += int(np.sum(w == 0))
            total += w.size
    return zeros / total if total else 0.0

"""Magnitude pruning with tfmot: wrap the prunable layers, fine-tune, strip the wrappers.

Only layers in tfmot's prune registry with prunable weights are wrapped (Conv2D, Dense,
Embedding); everything else (custom layers included) passes through untouched, so any
builder configuration can be pruned.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as keras

from vdg_tf.compression.fitting import epoch_steps, fine_tune

sparsity = tfmot.sparsity.keras
PRUNABLE = (keras.layers.Conv2D, keras.layers.Dense, keras.layers.Embedding)


SPARSITY = {"min": 0.0, "below": 1.0}  # a fraction of weights set to zero


def m_below_n(m_by_n: tuple[int, int]) -> str | None:
    """Why `[m, n]` is not an m-of-n pattern (m zeros in every n weights), or None."""
    m, n = m_by_n
    return None if m < n else "needs m < n (m zeros in every n weights)"


@dataclass
class PruneConfig:
    """Target sparsity, schedule (`polynomial` ramps up, `constant` holds) and fine-tune epochs.

    `targets` overrides the sparsity per branch or layer by name prefix, longest match
    first (e.g. `{"video": 0.75, "text_embed": 0.0}`); 0 leaves a layer dense.
    `m_by_n` (e.g. `[2, 4]`) prunes structured: m zeros in every n consecutive input
    channels, the pattern sparse tensor cores run at 2x (it ignores the schedule's target).
    Every value is checked by the rules below when a pipeline or `load_dataclass` loads it.
    """

    target_sparsity: float = field(default=0.5, metadata=SPARSITY)
    schedule: str = field(default="polynomial", metadata={"choices": ("polynomial", "constant")})
    epochs: int = field(default=4, metadata={"min": 1})
    # steps between two mask updates (capped at a quarter of fine-tuning)
    frequency: int = field(default=10, metadata={"min": 1})
    # Output heads and tiny layers hold few weights but decide every prediction:
    # pruning them costs accuracy for no size gain, so they are left dense.
    min_weights: int = field(default=1024, metadata={"min": 0})
    skip: tuple[str, ...] = field(
        default=("fused", "video_head", "audio_head", "text_head"), metadata={"unique": True}
    )
    targets: dict[str, float] = field(default_factory=dict, metadata=SPARSITY)
    m_by_n: tuple[int, int] | None = field(default=None, metadata={"min": 1, "check": m_below_n})

    def target_for(self, layer_name: str) -> float:
        """The sparsity this layer should reach: the longest matching prefix in `targets`."""
        matches = [p for p in self.targets if layer_name.startswith(p)]
        return self.targets[max(matches, key=len)] if matches else self.target_sparsity

    def make_schedule(self, steps_per_epoch: int, target: float | None = None):
        """A tfmot pruning schedule reaching `target` (default: `target_sparsity`)."""
        target = self.target_sparsity if target is None else target
        total = max(steps_per_epoch * self.epochs, 1)
        freq = max(1, min(self.frequency, total // 4 or 1))
        if self.schedule == "polynomial":
            # reach the target by 2/3 of fine-tuning, then let the weights settle
            end = max(int(total * 2 / 3), 1)
            return sparsity.PolynomialDecay(0.0, target, 0, end, frequency=freq)
        return sparsity.ConstantSparsity(target, 0, frequency=freq)


def is_prunable(layer: keras.layers.Layer) -> bool:
    """A layer type tfmot prunes (DepthwiseConv2D has no prunable weights in its registry)."""
    return isinstance(layer, PRUNABLE) and not isinstance(layer, keras.layers.DepthwiseConv2D)


def m_by_n_applies(layer: keras.layers.Layer, m_by_n: tuple[int, int]) -> bool:
    """2:4-style patterns run along input channels: Conv2D/Dense whose C_in divides by n."""
    if not isinstance(layer, keras.layers.Conv2D | keras.layers.Dense):
        return False
    kernel = layer.get_weights()[0]
    return kernel.shape[-2] % m_by_n[1] == 0


def selected_for_pruning(layer: keras.layers.Layer, cfg: PruneConfig) -> bool:
    """Prunable, not skipped by name, big enough to matter, with a target above 0."""
    if not is_prunable(layer) or layer.name in cfg.skip:
        return False
    weights = layer.get_weights()
    if not weights or weights[0].size < cfg.min_weights:
        return False
    if cfg.m_by_n is not None:
        return m_by_n_applies(layer, cfg.m_by_n)
    return cfg.target_for(layer.name) > 0


def wrap_for_pruning(model: keras.Model, steps_per_epoch: int, cfg: PruneConfig) -> keras.Model:
    """A copy of `model` with each selected layer wrapped by `prune_low_magnitude`.

    The wrappers reuse the layers they wrap, so they wrap a fresh copy: pruning never
    touches the weights of the model passed in.
    """
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())

    def clone(layer):
        if not selected_for_pruning(layer, cfg):
            return layer
        target = 0.5 if cfg.m_by_n else cfg.target_for(layer.name)
        return sparsity.prune_low_magnitude(
            layer,
            pruning_schedule=cfg.make_schedule(steps_per_epoch, target),
            sparsity_m_by_n=cfg.m_by_n,
        )

    return keras.models.clone_model(copy, clone_function=clone)


def prune(
    model: keras.Model,
    train_ds: tf.data.Dataset,
    cfg: PruneConfig,
    compile_fn: Callable[[keras.Model, int], None],
    validation_ds: tf.data.Dataset | None = None,
    verbose: int = 0,
    steps_per_epoch: int | None = None,
    callbacks: list | None = None,
) -> keras.Model:
    """Prune `model` to `cfg.target_sparsity` while fine-tuning; returns the stripped model.

    Args:
      compile_fn: compiles a model for `(model, steps_per_epoch)`, so pruning trains with
        the same loss as training did.
      steps_per_epoch: batches an epoch when `train_ds` is an endless stream (see
        `fitting.epoch_steps`); the pruning schedule ends with the last epoch.
    """
    steps = epoch_steps(train_ds, steps_per_epoch)
    wrapped = wrap_for_pruning(model, steps, cfg)
    fine_tune(
        wrapped, train_ds, cfg.epochs, compile_fn, verbose, steps_per_epoch,
        [sparsity.UpdatePruningStep(), *(callbacks or [])], validation_ds, steps,
    )  # fmt: skip
    return sparsity.strip_pruning(wrapped)


def sparsity_table(model: keras.Model) -> dict[str, float]:
    """Fraction of exact zeros in each prunable layer's kernel (or embedding table)."""
    table = {}
    for layer in model.layers:
        if is_prunable(layer) and layer.get_weights():
            w = layer.get_weights()[0]
            table[layer.name] = float(np.mean(w == 0))
    return table


def sparsity_by_branch(model: keras.Model, cfg: PruneConfig) -> dict[str, float]:
    """Zero fraction of the selected kernels grouped by their `targets` prefix (or `*`)."""
    zeros: dict[str, int] = {}
    total: dict[str, int] = {}
    for layer in model.layers:
        if selected_for_pruning(layer, cfg):
            matches = [p for p in cfg.targets if layer.name.startswith(p)]
            key = max(matches, key=len) if matches else "*"
            w = layer.get_weights()[0]
            zeros[key] = zeros.get(key, 0) + int(np.sum(w == 0))
            total[key] = total.get(key, 0) + w.size
    return {k: zeros[k] / total[k] for k in total}


def is_m_by_n_sparse(kernel: np.ndarray, m_by_n: tuple[int, int]) -> bool:
    """Every n consecutive input-channel weights (per output channel, per tap) hold >= m zeros."""
    m, n = m_by_n
    k = np.moveaxis(kernel, -2, -1).reshape(-1, n)  # [..., C_out, C_in] -> groups of n along C_in
    return bool(np.all(np.sum(k == 0, axis=1) >= m))


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

"""Train with the pretrained backbone frozen for some epochs, then fine-tune it all slower.

A pretrained image backbone under a new, randomly initialised head is usually trained in
two phases (the Keras transfer-learning recipe): first only the new layers learn while
the backbone is frozen (its BatchNorm statistics too), so large early gradients from the
random head do not wreck its features; then everything is unfrozen and trained at a lower
rate (`train.finetune_lr_scale` x `train.learning_rate`). With
`train.freeze_backbone_epochs: 0` or a model without a pretrained backbone this is one
plain `fit`.

A run killed during fine-tuning resumes (BackupAndRestore) with its latest weights, but
the fine-tuning phase starts its epoch count and rate schedule over.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import tf_keras as keras

from vdg_tf.config import Config
from vdg_tf.models.backbones import backbone_layers, set_backbone_trainable


def fit_in_phases(
    model: keras.Model,
    cfg: Config,
    compile_fn: Callable[[keras.Model, Config, int | None], None],
    fit: Callable[..., keras.callbacks.History],
) -> keras.callbacks.History:
    """`fit(epochs=..., initial_epoch=...)` once, or twice: frozen backbone, then all of it.

    Args:
        model: the compiled training model.
        cfg: the run's config (`train.freeze_backbone_epochs`, `finetune_lr_scale`).
        compile_fn: `compile_fn(model, cfg, epochs)` compiles for `epochs` epochs
            (recompiling is what makes a change of `trainable` take effect).
        fit: calls `model.fit` with the run's data and callbacks and the given keywords.

    Returns:
        A History holding both phases' epochs in order.
    """
    tc = cfg.train
    frozen = min(tc.freeze_backbone_epochs, tc.epochs)
    if frozen == 0 or not backbone_layers(model):
        return fit(epochs=tc.epochs)
    set_backbone_trainable(model, False)
    compile_fn(model, cfg, frozen)
    history = fit(epochs=frozen)
    set_backbone_trainable(model, True)  # later stages (prune, QAT) train the whole model
    if frozen == tc.epochs:
        return history
    slower = dataclasses.replace(tc, learning_rate=tc.learning_rate * tc.finetune_lr_scale)
    compile_fn(model, dataclasses.replace(cfg, train=slower), tc.epochs - frozen)
    tuned = fit(epochs=tc.epochs, initial_epoch=frozen)
    for key, values in tuned.history.items():
        history.history.setdefault(key, []).extend(values)
    history.epoch = list(history.epoch) + list(tuned.epoch)
    return history

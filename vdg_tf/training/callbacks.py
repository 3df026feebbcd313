"""Callbacks that keep finished work: an atomic best checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tf_keras as keras

from vdg_tf.bundle import save_model


class BestCheckpoint(keras.callbacks.Callback):
    """Save the model (atomically) whenever `monitor` improves, and keep its weights.

    A tie on `monitor` (validation accuracy stuck at 1.0, say) goes to the epoch with
    the lower `tie_break` loss, so the checkpoint still follows a model that gets better.
    """

    def __init__(
        self,
        path: str | Path,
        monitor: str = "val_fused_accuracy",
        mode: str = "max",
        tie_break: str | None = "val_loss",
    ):
        super().__init__()
        self.path, self.monitor, self.mode, self.tie_break = Path(path), monitor, mode, tie_break
        self.best = -np.inf if mode == "max" else np.inf
        self.best_loss = np.inf
        self.best_epoch = -1
        self.best_weights: list[np.ndarray] | None = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            return
        loss = float(logs.get(self.tie_break, np.inf)) if self.tie_break else np.inf
        better = value > self.best if self.mode == "max" else value < self.best
        if better or (value == self.best and loss < self.best_loss):
            self.best, self.best_loss, self.best_epoch = float(value), loss, epoch
            self.best_weights = self.model.get_weights()
            save_model(self.model, self.path)

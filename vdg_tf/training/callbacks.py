"""Callbacks that keep finished work: an atomic best checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tf_keras as keras

from vdg_tf.training.artifacts import save_model_atomic


class BestCheckpoint(keras.callbacks.Callback):
    """Save the model (atomically) whenever `monitor` improves; keeps the best epoch's file."""

    def __init__(self, path: str | Path, monitor: str = "val_fused_accuracy", mode: str = "max"):
        super().__init__()
        self.path, self.monitor, self.mode = Path(path), monitor, mode
        self.best = -np.inf if mode == "max" else np.inf
        self.best_epoch = -1

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            return
        better = value > self.best if self.mode == "max" else value < self.best
        if better:
            self.best, self.best_epoch = float(value), epoch
            save_model_atomic(self.model, self.path)

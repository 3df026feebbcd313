"""Callbacks that keep finished work: an atomic best checkpoint, and a backup that resumes it.

A killed run resumes from `BackupAndRestore`'s last epoch; `ResumableBackup` also keeps
what Keras' backup forgets, the best value so far and early stopping's patience, so the
first resumed epoch cannot overwrite a better model, and it refuses to resume a backup
made from other data or settings.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tf_keras as keras

from vdg_tf.bundle import load_model, save_model
from vdg_tf.files import write_json

logger = logging.getLogger(__name__)


class BestCheckpoint(keras.callbacks.Callback):
    """Save the model (atomically) whenever `monitor` improves, and keep its weights.

    A tie on `monitor` (validation accuracy stuck at 1.0, say) goes to the epoch with
    the lower `tie_break` loss, so the checkpoint still follows a model that gets better.
    `texts` (the bundle's metadata: labels, vocabulary, config) go inside the model file,
    so a model and the labels it was trained with are always written in one rename.
    """

    STATE = ("best", "best_loss", "best_epoch")  # what `ResumableBackup` keeps

    def __init__(
        self,
        path: str | Path,
        monitor: str = "val_fused_accuracy",
        mode: str = "max",
        tie_break: str | None = "val_loss",
        texts: dict[str, str] | None = None,
        shared: str | Path | None = None,
    ):
        super().__init__()
        self.path, self.monitor, self.mode, self.tie_break = Path(path), monitor, mode, tie_break
        # where the best model of the whole run is read back from after a resume: the
        # chief's file (a worker that is not the chief saves into a fresh temporary folder)
        self.shared = Path(shared) if shared is not None else self.path
        self.texts = texts
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
            save_model(self.model, self.path, self.texts)

    def restore_best(self, model: keras.Model) -> None:
        """Give `model` the best epoch's weights: kept in memory, or, when the best epoch
        came before a resume, read back from the checkpoint file. No-op if none was saved."""
        if self.best_weights is not None:
            model.set_weights(self.best_weights)
        elif self.best_epoch >= 0 and self.shared.is_file():
            model.set_weights(load_model(self.shared).get_weights())


class EpochClock(keras.callbacks.Callback):
    """Wall seconds of each epoch's steps and validation this fit ran, for `metrics.json`
    (first in the callbacks: saving the checkpoint and backup comes after). The first
    epoch holds decoding; later ones read the cache, so they show the training speed."""

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(round(time.perf_counter() - self._start, 3))


_EARLY_STOPPING_STATE = ("wait", "best", "best_epoch", "stopped_epoch")


def _state_fields(callback: keras.callbacks.Callback) -> tuple[str, ...]:
    if isinstance(callback, keras.callbacks.EarlyStopping):
        return _EARLY_STOPPING_STATE
    return type(callback).STATE


class ResumableBackup(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` that also backs up other callbacks' state, for a run it can trust.

    Each epoch it writes `state.json` into the backup folder (the `STATE` fields of each
    callback in `keep`, e.g. `BestCheckpoint`, and early stopping's wait and best) just
    before Keras backs up the weights and epoch (so it goes after them in the callbacks), and puts them back at the first epoch of
    a resumed fit (after every callback's `on_train_begin` has reset itself). If the
    backup was made for another `identity` (other data, labels or config), it is deleted
    and the run starts over instead of resuming someone else's weights.

    In multi-worker training every worker reads the one backup (on shared storage): the
    chief judges it, keeps or deletes it and writes `state.json`; after `barrier` (every
    worker reached it) the others resume from what the chief kept, with the same state, so
    all of them take the same checkpoint and early-stopping decisions.

    Args:
        backup_dir: the backup folder (Keras empties it after a finished fit).
        identity: JSON-able description of what the run trains on.
        keep: callbacks whose state survives a kill, by a name for each.
        chief: whether this process writes the backup (False: another worker of a cluster).
        barrier: returns once every worker has called it (multi-worker training).
    """

    STATE_FILE = "state.json"

    def __init__(
        self,
        backup_dir: str | Path,
        identity: dict,
        keep: dict[str, keras.callbacks.Callback],
        chief: bool = True,
        barrier: Callable[[], None] | None = None,
    ):
        super().__init__(str(backup_dir))
        self.folder = Path(backup_dir)
        self.identity = json.loads(json.dumps(identity))  # as it reads back from the file
        self.keep, self.chief = keep, chief
        self._restore: dict | None = None
        self._first_epoch = True
        if chief:
            self.resuming = self._trusted()
        if barrier is not None:  # the chief has kept or cleared the backup: now others read it
            barrier()
        if not chief:  # the chief's backup, as the chief judged it (worker paths differ)
            saved = self._read() if self._complete() else None
            self.resuming = saved is not None
            self._restore = saved["callbacks"] if saved else None

    def _complete(self) -> bool:
        # Keras resumes only from a complete checkpoint (its `checkpoint` index is written
        # last); without one the run starts at epoch 0, so any state of ours goes too
        return self.folder.is_dir() and any(self.folder.rglob("checkpoint"))

    def _trusted(self) -> bool:
        """Whether the backup here resumes this run; one made for another identity (or
        half written) is deleted, so that Keras starts over."""
        resuming = self._complete()
        saved = self._read() if resuming else None
        if resuming and (saved is None or saved.get("identity") != self.identity):
            logger.warning(
                "%s: backup of a run on other data or settings; starting over", self.folder
            )
            resuming = False
        if resuming:
            self._restore = saved["callbacks"]
        elif self.folder.exists():
            shutil.rmtree(self.folder)
        return resuming

    def _read(self) -> dict | None:
        try:
            return json.loads((self.folder / self.STATE_FILE).read_text())
        except (OSError, ValueError):
            return None

    def on_epoch_begin(self, epoch, logs=None):
        super().on_epoch_begin(epoch, logs)
        if self._first_epoch and epoch > 0:
            logger.info("resumed from the backup in %s at epoch %d", self.folder, epoch + 1)
        self._first_epoch = False
        if self._restore is not None:
            for name, callback in self.keep.items():
                for key, value in self._restore.get(name, {}).items():
                    setattr(callback, key, value)
            self._restore = None

    def on_train_end(self, logs=None):
        """A finished fit leaves an empty backup folder (Keras removes only its own files)."""
        super().on_train_end(logs)
        if self.chief:
            (self.folder / self.STATE_FILE).unlink(missing_ok=True)

    def on_epoch_end(self, epoch, logs=None):
        state = {
            name: {key: _plain(getattr(cb, key)) for key in _state_fields(cb)}
            for name, cb in self.keep.items()
        }
        # first: a kill between the two leaves state one epoch ahead of the weights, so
        # the redone epoch is judged against a best that includes it (never a worse one)
        if self.chief:  # the backup every worker reads; Keras writes other workers' aside
            self.folder.mkdir(parents=True, exist_ok=True)
            write_json(
                self.folder / self.STATE_FILE, {"identity": self.identity, "callbacks": state}
            )
        super().on_epoch_end(epoch, logs)


def _plain(value):
    """A callback's number as JSON keeps it (numpy scalars to float/int; inf stays inf)."""
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating | float):
        return float(value)
    return value

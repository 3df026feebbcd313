"""Resume after a kill keeps the best model: the best value and early stopping's patience
survive with the backup, and a backup made from other data is not resumed."""

import csv
import json
import subprocess
import sys
import time

import numpy as np
import pytest
import tf_keras as keras

from tests.helpers import tiny_config
from vdg_tf.bundle import MODEL_FILE, Bundle, load_model
from vdg_tf.models.builder import inference_model
from vdg_tf.training.callbacks import BestCheckpoint, ResumableBackup


class Killed(Exception):
    """Stands for the process dying at the end of an epoch (after every backup)."""


class Scripted(keras.callbacks.Callback):
    """Reports a fixed score and loss per epoch, so the test knows which epoch is best."""

    def __init__(self, scores, losses):
        super().__init__()
        self.scores, self.losses = scores, losses

    def on_epoch_end(self, epoch, logs=None):
        logs["val_score"], logs["val_loss"] = self.scores[epoch], self.losses[epoch]


class KillAfter(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise Killed


def _fit(tmp_path, scores, losses, kill_after=None, identity=None):
    """One process's life: a fresh model and callbacks, fit until done or killed."""
    keras.utils.set_random_seed(len(scores) if kill_after is None else 0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile("sgd", "mse")
    best = BestCheckpoint(tmp_path / MODEL_FILE, "val_score", "max", tie_break="val_loss")
    early = keras.callbacks.EarlyStopping(monitor="val_loss", patience=2)
    backup = ResumableBackup(
        tmp_path / "backup", identity or {"data": "a"}, {"best": best, "early": early}
    )
    callbacks = [Scripted(scores, losses), best, early, backup]  # backup after them
    if kill_after is not None:
        callbacks.append(KillAfter(kill_after))
    x, y = np.ones((8, 4), np.float32), np.zeros((8, 2), np.float32)
    try:
        history = model.fit(x, y, epochs=len(scores), callbacks=callbacks, verbose=0)
    except Killed:
        return model, best, backup, None
    return model, best, backup, history


def test_the_first_resumed_epoch_does_not_overwrite_a_better_model(tmp_path):
    scores = [0.5, 0.9, 0.6, 0.7, 0.8]  # best at epoch 1; the kill comes after epoch 2
    losses = [1.0, 0.5, 0.6, 0.7, 0.8]  # early stopping: no better loss after epoch 1
    model, _, _, _ = _fit(tmp_path, scores, losses, kill_after=2)
    saved = load_model(tmp_path / MODEL_FILE).get_weights()
    state = json.loads((tmp_path / "backup" / ResumableBackup.STATE_FILE).read_text())
    assert state["callbacks"]["best"]["best"] == 0.9 and state["callbacks"]["early"]["wait"] == 1

    model, best, backup, history = _fit(tmp_path, scores, losses)  # the rerun
    assert backup.resuming and best.best == 0.9 and best.best_epoch == 1
    # patience 2 counted across the kill: epoch 3 is the second without a better loss
    assert history.epoch == [3]
    for a, b in zip(load_model(tmp_path / MODEL_FILE).get_weights(), saved, strict=True):
        np.testing.assert_array_equal(a, b)  # epoch 1's model, never replaced by 0.7
    best.restore_best(model)
    for a, b in zip(model.get_weights(), saved, strict=True):
        np.testing.assert_array_equal(a, b)  # the run ends on the best weights
    assert not any((tmp_path / "backup").iterdir())  # a finished fit leaves no backup


def test_a_backup_from_other_data_is_not_resumed(tmp_path, vdg_log):
    scores, losses = [0.5, 0.6, 0.7], [1.0, 0.9, 0.8]
    _fit(tmp_path, scores, losses, kill_after=1, identity={"data": "a"})
    _, best, backup, history = _fit(tmp_path, scores, losses, identity={"data": "b"})
    assert not backup.resuming and history.epoch == [0, 1, 2] and best.best_epoch == 2
    assert any("backup of a run on other data or settings; starting over" in m for m in vdg_log)


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_killed_train_resumes_and_ends_on_the_best_epoch_of_the_whole_run(sample_data, tmp_path):
    """`vdg train` killed after an epoch, then rerun: the best epoch is chosen over every
    epoch (before and after the kill), and model.keras and its labels are that run's."""
    cfg = tiny_config(epochs=4)
    cfg.save(tmp_path / "cfg.yaml")
    out = tmp_path / "run"
    cmd = [
        sys.executable, "-m", "vdg_tf.cli", "train", "--data", sample_data["manifest_train"],
        "--val-data", sample_data["manifest_eval"], "--config", str(tmp_path / "cfg.yaml"),
        "--out", str(out), "--json",
    ]  # fmt: skip
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = out / "backup" / ResumableBackup.STATE_FILE
    weights = out / "backup" / "chief" / "checkpoint"  # Keras writes it after the state

    def backed_up():
        return state.is_file() and weights.is_file()

    deadline = time.time() + 600  # a bound for a broken build, not a timing check
    while time.time() < deadline and first.poll() is None and not backed_up():
        time.sleep(0.1)
    first.kill()
    first.wait()
    assert backed_up(), "the kill must land after the first epoch's backup"
    assert Bundle.load(out, model=False).labels  # the model on disk carries its labels
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert second.returncode == 0, second.stderr
    rows = _rows(out / "history.csv")
    assert [int(r["epoch"]) for r in rows] == list(range(len(rows)))  # resumed, not restarted
    # the checkpoint rule over the whole run: highest accuracy, ties to the lower loss
    key = "val_fused_accuracy"
    ranked = sorted(
        range(len(rows)), key=lambda i: (-float(rows[i][key]), float(rows[i]["val_loss"]), i)
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["best_epoch"] == ranked[0] + 1
    bundle = Bundle.load(out)
    assert inference_model(bundle.model).output_shape[-1] == len(bundle.labels)

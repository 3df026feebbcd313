"""The Trainer's public face: `vdg train --json` is `train(...).to_dict()`, and a run says
why it stopped (patience, or the `train.epochs` cap while still improving)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tf_keras as keras

from tests.helpers import tiny_config
from vdg_tf.config import Config
from vdg_tf.models.builder import random_init_note
from vdg_tf.training.trainer import stop_reason

# each in a fresh process with deterministic kernels: a second training in one process
# draws other random initial weights (TensorFlow's op seeds count the ops made before)
_DETERMINISTIC = {**os.environ, "TF_DETERMINISTIC_OPS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
_API = """
import json, sys
from vdg_tf.training import train
config, data, out, evaluation = sys.argv[1:]
r = train(config, data, out, val_split=0.25, eval_data=evaluation, progress=False,
          saved_model=True)
print(json.dumps(r.to_dict()))
print(json.dumps(r.format()))
"""


def test_train_json_is_the_api_result_and_says_why_it_stopped(sample_data, tmp_path):
    """The command and the API with the same arguments (a YAML config, a held-out split,
    an evaluation split) print and return the same object; the output and the log say
    why training stopped."""
    config = tmp_path / "tiny.yaml"
    tiny_config(epochs=2).save(config)
    out = tmp_path / "run"
    data, evaluation = sample_data["manifest_train"], sample_data["manifest_eval"]
    args = ["--data", data, "--val-split", "0.25", "--eval-data", evaluation]
    cli = subprocess.run(
        [sys.executable, "-m", "vdg_tf.cli", "train", *args, "--config", str(config),
         "--out", str(out), "--json"],
        capture_output=True, text=True, timeout=600, env=_DETERMINISTIC,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    printed = json.loads(cli.stdout)
    api = subprocess.run(
        [sys.executable, "-c", _API, str(config), data, str(out), evaluation],
        capture_output=True, text=True, timeout=600, env=_DETERMINISTIC,
    )  # fmt: skip
    assert api.returncode == 0, api.stderr
    returned, table = (json.loads(line) for line in api.stdout.splitlines()[-2:])
    assert printed == returned
    assert printed["model"] == str(out / "model.keras") and printed["epochs"] == 2
    assert {"best_epoch", "skipped", "checkpoint", "val_accuracy", "eval_accuracy"} <= set(printed)
    metrics = json.loads((out / "metrics.json").read_text())
    assert printed["eval"] == {
        "data": evaluation, "rows": 16, "accuracy": metrics["eval"]["accuracy"]
    }  # fmt: skip
    # two epochs under patience 50: the cap ended it, and every view says so
    assert printed["stopped"]["reason"] == "cap" and printed["stopped"]["why"].startswith("cap")
    assert f"stopped: {printed['stopped']['why']}" in cli.stderr  # the log line
    assert metrics["stopped"] == printed["stopped"]
    assert table.splitlines()[0] == f"trained {out}"
    assert f"stopped     {printed['stopped']['why']}" in table
    assert "evaluation" in table and "validation" in table


def _early_stopping(val_losses: list[float], patience: int, cap: int):
    """A real EarlyStopping callback fed `val_losses` epoch by epoch as `fit` would."""
    model = keras.Sequential([keras.layers.Dense(1, input_shape=(1,))])
    early = keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience)
    early.set_model(model)
    early.on_train_begin()
    for epoch, loss in enumerate(val_losses[:cap]):
        early.on_epoch_end(epoch, {"val_loss": loss})
        if model.stop_training:
            break
    return early


def test_stop_reason_tells_patience_from_the_cap():
    falling = _early_stopping([1.0, 0.9, 0.8, 0.7], patience=2, cap=4)
    stopped = stop_reason(falling, 4, validates=True)
    assert stopped["reason"] == "cap"
    assert stopped["why"].startswith("cap reached while improving: val_loss still fell at epoch 4")

    stalled = _early_stopping([1.0, 0.8, 0.9, 0.95, 0.99, 0.7], patience=3, cap=6)
    stopped = stop_reason(stalled, 6, validates=True)
    assert stopped["reason"] == "patience"
    assert "did not improve for 3 epochs after epoch 2 (stopped at epoch 5" in stopped["why"]

    flat_end = _early_stopping([1.0, 0.8, 0.9, 0.95], patience=5, cap=4)
    stopped = stop_reason(flat_end, 4, validates=True)
    assert stopped["reason"] == "cap" and "while improving" not in stopped["why"]
    assert "2 epochs after val_loss's best (epoch 2)" in stopped["why"]


def test_default_epochs_is_a_cap_that_early_stopping_ends():
    """With validation data training runs until it stops improving: the default cap
    leaves room for that, beyond the 24 epochs the default model was still improving at."""
    tc = Config().train
    assert tc.epochs >= 3 * tc.patience and tc.epochs > 24


@pytest.mark.parametrize(
    ("model", "warned"),
    [
        ({"preset": "small"}, True),
        ({"preset": "base"}, True),
        ({"preset": "small", "weights": "imagenet"}, False),
        ({"preset": "tiny"}, False),
        ({}, False),
        ({"preset": "small", "modalities": ["audio", "text"]}, False),
    ],
)
def test_a_pretrainable_backbone_without_weights_is_announced(model, warned):
    note = random_init_note(Config.from_dict({"model": model}).model)
    assert (note is not None) == warned
    if warned:
        assert f"preset {model['preset']}" in note and "random init" in note
        assert "model.weights: imagenet" in note


def test_training_logs_the_random_init_warning_first(sample_data, tmp_path, vdg_log):
    """The warning comes at the start of training, from the build step (run here alone,
    without the fit)."""
    cfg = tiny_config(epochs=1)
    cfg.model.video_backbone = "mobilenet_v2_0.35"
    cfg.data.video.size = 32
    from vdg_tf.training import Trainer

    trainer = Trainer(cfg, sample_data["manifest_train"], tmp_path / "run", progress=False)
    trainer.prepare()
    trainer.build()
    assert any("mobilenet_v2_0.35 trains from random init" in line for line in vdg_log)


def test_train_on_a_folder_of_class_folders_with_a_held_out_split(sample_data, tmp_path):
    """`data` may be `<label>/<video>` folders: imported into the run folder, then split."""
    from vdg_tf.manifest import read_manifest
    from vdg_tf.training import train

    rows, _ = read_manifest(sample_data["manifest_train"])
    root = tmp_path / "videos"
    for r in rows:
        (root / r.label).mkdir(parents=True, exist_ok=True)
        shutil.copy(r.video, root / r.label / Path(r.video).name)
    out = tmp_path / "run"
    result = train(tiny_config(epochs=1), root, out, val_split=0.25, progress=False)
    imported, _ = read_manifest(out / "videos.jsonl")
    assert len(imported) == len(rows)
    val = result.metrics["val"]
    assert val["held_out_of"] == str(out / "videos.jsonl") and val["rows"] == 12
    assert result.labels == sorted({r.label for r in rows})

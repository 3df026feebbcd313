"""Training writes a complete run folder; metrics match hand-computed values."""

import json

import numpy as np
import pytest

from tests.helpers import tiny_config
from vdg_tf.bundle import Bundle
from vdg_tf.tasks.metrics import classification_report


def test_run_folder_is_complete_and_reloads(trained_run):
    out = trained_run.out
    for name in (
        "model.keras",
        "labels.txt",
        "vocab.txt",
        "config.yaml",
        "metrics.json",
        "curves.png",
        "confusion.png",
        "history.csv",
    ):
        assert (out / name).is_file(), name
    assert not any((out / "backup").iterdir())  # BackupAndRestore cleans up after a finished fit
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["skipped"] == 0 and metrics["eval"]["n"] == 16
    # it learned: 8 balanced classes, so a model that ignores its input gets 2 of 16; the
    # 10-epoch tiny model reads 7/16 (margin: 5 of 16)
    assert metrics["eval"]["accuracy"] >= 5 / 16, metrics["eval"]
    run = Bundle.load(out)
    assert run.labels == trained_run.labels and run.config.data.video.frames == 4


def test_tiny_model_learns_beyond_chance(trained_run):
    """8 balanced classes (chance 1/8, loss ln 8 = 2.08): a few epochs on 48 clips must learn.

    Loss, not accuracy, is the signal: on 36 augmented clips accuracy moves in steps of 1/48.
    """
    history = (trained_run.out / "history.csv").read_text().splitlines()
    header = history[0].split(",")
    rows = [[float(v) for v in r.split(",")] for r in history[1:]]
    loss = [r[header.index("fused_loss")] for r in rows]
    acc = [r[header.index("fused_accuracy")] for r in rows]
    assert min(loss[-2:]) < 0.9 * loss[0], loss
    assert max(acc) > 0.25, acc


def test_metrics_match_hand_computed_values():
    y = np.array([0, 0, 1, 1, 2])
    probs = np.eye(3)[[0, 1, 1, 1, 0]]
    r = classification_report(y, probs, ["a", "b", "c"])
    assert r["accuracy"] == 0.6
    # F1: a = 2*(1/2*1/2)/(1) = 0.5; b = 2*(2/3*1)/(5/3) = 0.8; c = 0
    assert abs(r["macro_f1"] - (0.5 + 0.8 + 0.0) / 3) < 1e-9
    assert r["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]


def test_masking_a_modality_zeroes_it_and_its_mask(trained_run, sample_data):
    from tests.helpers import tiny_config
    from vdg_tf.data.sources import dataset_from
    from vdg_tf.training.evaluate import mask_modality

    ds = dataset_from(
        sample_data["manifest_eval"], tiny_config().data, trained_run.labels, trained_run.tokenizer
    )
    x, _ = next(iter(mask_modality(ds, "audio")))
    assert not np.any(x["audio"].numpy()) and not np.any(x["audio_mask"].numpy())
    assert np.all(x["video_mask"].numpy() == 1) and np.any(x["video"].numpy())


@pytest.mark.slow
def test_killed_training_resumes_after_its_last_epoch(sample_data, tmp_path):
    """`vdg train` killed after its first epoch, then rerun: it goes on from epoch 2 and
    finishes with a model and a SavedModel; no epoch is trained twice."""
    import subprocess
    import sys
    import time

    cfg = tiny_config(epochs=3)
    cfg.model.l1 = 1e-5  # L1 + L2 kernel regularizers, as configured
    cfg.save(tmp_path / "cfg.yaml")
    out = tmp_path / "run"
    cmd = [
        sys.executable, "-m", "vdg_tf.cli", "train", "--data", sample_data["manifest_train"],
        "--config", str(tmp_path / "cfg.yaml"), "--out", str(out), "--json",
    ]  # fmt: skip
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    history = out / "history.csv"
    deadline = time.time() + 300
    while time.time() < deadline and first.poll() is None:
        if history.is_file() and len(history.read_text().splitlines()) >= 2:
            break
        time.sleep(0.2)
    first.kill()
    first.wait()
    done_before = len(history.read_text().splitlines()) - 1
    assert 1 <= done_before < 3, "the kill must land mid-run"
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr
    epochs = [int(r.split(",")[0]) for r in history.read_text().splitlines()[1:]]
    assert epochs == [0, 1, 2], epochs  # resumed, not restarted
    assert (out / "saved_model" / "saved_model.pb").is_file()
    assert json.loads(second.stdout)["saved_model"].endswith("saved_model")

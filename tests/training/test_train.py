"""Training writes a complete run folder; metrics match hand-computed values."""

import json

import numpy as np

from vdg_tf.training.artifacts import load_run
from vdg_tf.training.metrics import classification_report


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
    run = load_run(out)
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
    from tests.conftest import tiny_config
    from vdg_tf.data.sources import dataset_from
    from vdg_tf.training.evaluate import mask_modality

    ds = dataset_from(
        sample_data["manifest_eval"], tiny_config().data, trained_run.labels, trained_run.tokenizer
    )
    x, _ = next(iter(mask_modality(ds, "audio")))
    assert not np.any(x["audio"].numpy()) and not np.any(x["audio_mask"].numpy())
    assert np.all(x["video_mask"].numpy() == 1) and np.any(x["video"].numpy())

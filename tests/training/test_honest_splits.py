"""Honest splits: validation (a manifest or rows held out of training) picks the checkpoint
and anomaly's threshold; the evaluation split is only reported, and every report says
which split each figure comes from."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import pytest

from tests.helpers import tiny_config, vdg
from vdg_tf.data.splits import hold_out
from vdg_tf.manifest import read_manifest
from vdg_tf.tasks import get_task
from vdg_tf.training.trainer import checkpoint_rule, train


def test_hold_out_is_seeded_stratified_and_keeps_every_class(sample_data):
    task = get_task(tiny_config().data)
    manifest = sample_data["manifest_train"]
    rows, _ = read_manifest(manifest)
    a = hold_out(manifest, 0.25, seed=0, task=task)
    assert a == hold_out(manifest, 0.25, seed=0, task=task)  # reproducible
    assert a.val_lines != hold_out(manifest, 0.25, seed=1, task=task).val_lines
    assert len(a.val_lines) == round(0.25 * len(rows))
    held = Counter(r.label for r in rows if r.line in a.val_lines)
    total = Counter(r.label for r in rows)
    assert set(held) == set(total)  # every class is validated...
    assert all(held[k] < total[k] for k in total)  # ...and keeps training rows
    with pytest.raises(ValueError, match="val_split: must be between 0 and 1"):
        hold_out(manifest, 1.5, seed=0, task=task)


def test_checkpoint_rule_says_which_split_chooses():
    rule = checkpoint_rule("fused_accuracy", "max", False, {}, "classification")
    assert rule["split"] == "train" and "no validation data" in rule["why"]
    rule = checkpoint_rule("val_fused_accuracy", "max", True, {"data": "v.jsonl"}, "x")
    assert rule["split"] == "val" and "v.jsonl" in rule["why"]


def test_val_data_and_val_split_together_are_refused_before_anything_is_written(
    sample_data, tmp_path
):
    with pytest.raises(ValueError, match="val_data and val_split: give one"):
        train(
            tiny_config(),
            sample_data["manifest_train"],
            tmp_path / "run",
            val_data=sample_data["manifest_eval"],
            val_split=0.2,
        )
    assert not (tmp_path / "run").exists()


def test_val_split_picks_the_checkpoint_and_eval_is_only_reported(sample_data, tmp_path):
    out = tmp_path / "run"
    train(
        tiny_config(epochs=3),
        sample_data["manifest_train"],
        out,
        val_split=0.25,
        eval_data=sample_data["manifest_eval"],
        progress=False,
    )
    metrics = json.loads((out / "metrics.json").read_text())
    # the held-out rows are written beside the model, their paths valid from there
    val_rows, problems = read_manifest(out / "val.jsonl")
    assert not problems and len(val_rows) == 12 and all(Path(r.video).is_file() for r in val_rows)
    train_rows, _ = read_manifest(sample_data["manifest_train"])
    assert {Path(r.video).resolve() for r in val_rows} < {
        Path(r.video).resolve() for r in train_rows
    }
    assert metrics["checkpoint"]["metric"] == "val_fused_accuracy"
    assert metrics["checkpoint"]["split"] == "val"
    assert metrics["val"]["data"] == str(out / "val.jsonl") and metrics["val"]["rows"] == 12
    assert metrics["val"]["held_out_of"] == sample_data["manifest_train"]
    assert metrics["val"]["n"] == 12
    assert metrics["eval"]["data"] == sample_data["manifest_eval"]
    assert metrics["eval"]["rows"] == metrics["eval"]["n"] == 16
    # the checkpoint's figure is the validation split's: the saved model scores on
    # validation exactly what the epoch it was chosen at logged
    with open(out / "history.csv") as f:
        history = list(csv.DictReader(f))
    best = history[metrics["best_epoch"] - 1]
    assert float(best["val_fused_accuracy"]) == pytest.approx(metrics["val"]["accuracy"], abs=1e-6)


def test_anomaly_threshold_is_chosen_on_validation_and_applied_to_eval(sample_data, tmp_path):
    cfg = tiny_config(epochs=2)
    cfg.data.task = "anomaly"
    labels = sorted({r.label for r in read_manifest(sample_data["manifest_train"])[0]})
    cfg.data.normal_labels = tuple(x for x in labels if x.startswith(("left", "right")))
    out = tmp_path / "run"
    train(
        cfg,
        sample_data["manifest_train"],
        out,
        val_split=0.25,
        eval_data=sample_data["manifest_eval"],
        progress=False,
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["val"]["threshold_chosen_on"] == "this split"
    assert metrics["eval"]["threshold_chosen_on"] == "validation"
    assert metrics["eval"]["threshold"] == metrics["val"]["threshold"]
    # anomaly ranks epochs by its training loss and says so
    assert metrics["checkpoint"]["split"] == "train"
    assert "does not rank epochs on validation" in metrics["checkpoint"]["why"]


def test_vdg_run_val_split_picks_the_train_stage_checkpoint(sample_data, tmp_path):
    from vdg_tf.pipeline import PipelineSpec, run_pipeline

    cfg = tiny_config(epochs=2).to_dict()
    spec = PipelineSpec.from_dict({"name": "t", "config": cfg, "stages": [{"train": {}}]})
    out = tmp_path / "pipe"
    report = run_pipeline(
        spec,
        sample_data["manifest_train"],
        sample_data["manifest_eval"],
        out,
        progress=False,
        val_split=0.25,
    )
    metrics = json.loads((out / "train" / "metrics.json").read_text())
    assert metrics["checkpoint"]["split"] == "val" and metrics["val"]["rows"] == 12
    assert (out / "train" / "val.jsonl").is_file()
    assert report["eval_data"] == sample_data["manifest_eval"] and "keras_float" in report["stages"]
    record = json.loads((out / "stages" / "00_train.json").read_text())
    assert record["identity"]["val_split"] == 0.25


@pytest.mark.parametrize(
    "args, message",
    [
        (["--val-split", "2"], "--val-split: must be between 0 and 1, got 2"),
        (["--val-split", "0.2", "--val-data", "v.jsonl"], "not allowed with argument"),
    ],
)
def test_vdg_train_refuses_bad_validation_options_in_one_line(args, message, tmp_path, capfd):
    out = tmp_path / "o"
    rc, _, err = vdg(capfd, "train", "--data", tmp_path / "m.jsonl", "--out", out, *args)
    assert rc == 2 and message in err, err
    assert not out.exists()

"""Every task trains end to end on real clips, writes its metrics, and reloads identically."""

import json
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import tiny_config
from tests.tasks.test_targets import HORIZONTAL
from vdg_tf.bundle import Bundle
from vdg_tf.data.features import log_mel_frames
from vdg_tf.data.sources import dataset_from
from vdg_tf.export.api import export_model
from vdg_tf.models import inference_model
from vdg_tf.runtime.evaluate import evaluate, load_for_inference
from vdg_tf.runtime.predict import Events
from vdg_tf.training.trainer import train

EXPECTED = {
    "multilabel": ("map", "micro_f1", "subset_accuracy"),
    "regression": ("mae", "rmse", "correlation", "sign_accuracy"),
    "ordinal": ("accuracy", "mae", "confusion"),
    "vqa": ("accuracy", "macro_f1", "confusion"),
    "anomaly": ("auroc", "threshold", "f1"),
}


def task_config(task, epochs=3):
    cfg = tiny_config(epochs=epochs)
    cfg.data.task = task
    if task == "vqa":
        cfg.data.text.max_tokens = 20  # the question, then the caption
    if task == "anomaly":
        cfg.data.normal_labels = HORIZONTAL
    return cfg


def above_baseline(task: str, report: dict, manifest: str, train_manifest: str):
    """(figure, the same figure for a model that ignores its input) on `manifest`, both
    oriented so that higher is better. The margin is in each baseline: majority class
    + 0.1, label prevalence + 0.1, chance AUROC + 0.1, 0.8x the MAE of the training mean."""
    rows = [json.loads(line) for line in Path(manifest).read_text().splitlines()]
    if task in ("ordinal", "vqa"):  # the majority class of the evaluated rows
        confusion = np.asarray(report["confusion"])
        return report["accuracy"], confusion.sum(1).max() / confusion.sum() + 0.1
    if task == "multilabel":  # random scores rank each label at its prevalence
        names = sorted({n for r in rows for n in r["labels"]})
        prevalence = np.mean([np.mean([n in r["labels"] for r in rows]) for n in names])
        return report["map"], prevalence + 0.1
    if task == "anomaly":
        return report["auroc"], 0.5 + 0.1
    train_rows = [json.loads(line) for line in Path(train_manifest).read_text().splitlines()]
    mean = np.mean([r["target"] for r in train_rows])
    constant_mae = np.mean([abs(r["target"] - mean) for r in rows])
    return -report["mae"], -0.8 * constant_mae


@pytest.mark.parametrize("task", sorted(EXPECTED))
def test_task_trains_evaluates_and_round_trips(task, sample_data, tmp_path):
    # 3 epochs of 6 steps left every task at its baseline; VQA (a question picks the cue),
    # ordinal (7 levels) and anomaly (half the clips are normal: 3 steps an epoch) need more
    cfg = task_config(task, epochs=30 if task in ("vqa", "ordinal", "anomaly") else 12)
    result = train(
        cfg, sample_data["manifest_train"], tmp_path, eval_data=sample_data["manifest_eval"],
        progress=False,
    )  # fmt: skip
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert set(EXPECTED[task]) <= set(metrics["eval"]), metrics["eval"]
    # VQA: an evaluation answer never seen in training is skipped by name, not guessed
    assert metrics["eval"]["n"] + metrics["skipped"] == 16
    assert all("not in labels" in r for r in metrics["skipped_files"])
    # it learned: on the 48 training clips (16 evaluation clips move a figure in steps too
    # coarse to tell a weak learner from chance; anomaly's anomalies there were never seen)
    train_manifest = sample_data["manifest_train"]
    fit = evaluate(tmp_path, train_manifest)
    figure, baseline = above_baseline(task, fit, train_manifest, train_manifest)
    assert figure > baseline, (task, figure, baseline)
    history = (tmp_path / "history.csv").read_text().splitlines()
    column = history[0].split(",").index("loss")
    assert all(np.isfinite(float(r.split(",")[column])) for r in history[1:])

    run = Bundle.load(tmp_path)
    assert run.config.data.task == task and run.labels == result.labels
    ds = dataset_from(sample_data["manifest_eval"], cfg.data, run.labels, run.tokenizer)
    x, _ = next(iter(ds))
    np.testing.assert_allclose(
        inference_model(run.model)(x), inference_model(result.model)(x), atol=1e-5
    )


def test_one_class_anomaly_ranks_unseen_anomalies_above_normal_clips(sample_data, tmp_path):
    """One normal label: the tampered-or-not head, trained on the 6 normal clips of the
    training split, scores the evaluation split's anomalies (never seen) above its normal
    clips. Deep SVDD, the head it replaced, ranked them at chance (AUROC 0.54 on the
    320-clip sample data; BENCHMARKS.md)."""
    cfg = task_config("anomaly")
    cfg.data.normal_labels = HORIZONTAL[:1]
    cfg.train.epochs = 30
    source = Path(sample_data["manifest_train"])
    rows = [json.loads(line) for line in source.read_text().splitlines()]
    rows = [r | {"video": str(source.parent / r["video"])} for r in rows]
    manifest = tmp_path / "train.jsonl"  # each clip 4 times an epoch: 3 steps, not 1
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows * 4))
    out = tmp_path / "run"
    # validation (here the training clips' own manifest: checkpoints follow the training
    # loss for this task) picks the threshold the model ships with
    train(
        cfg, manifest, out, val_data=sample_data["manifest_train"],
        eval_data=sample_data["manifest_eval"], progress=False,
    )  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    report = metrics["eval"]
    assert report["anomalies"] == 14 and report["n"] == 16
    assert report["auroc"] >= 0.8, report
    assert (out / "logs").is_dir()  # TensorBoard event files
    # the run, and an export of it, carry the validation threshold; predict's events use it
    chosen = metrics["val"]["threshold"]
    assert report["threshold"] == chosen and report["threshold_chosen_on"] == "validation"
    assert Bundle.load(out).info["threshold"] == chosen
    export_model(out, "float32", tmp_path / "x" / "model.tflite")
    exported, _ = load_for_inference(tmp_path / "x" / "model.tflite")
    assert exported.info["threshold"] == chosen
    assert Events([None]).trackers(exported.info["threshold"])[0].on == chosen
    assert Events([None], on=0.9).trackers(chosen)[0].on == 0.9  # --threshold wins


def test_ordinal_head_keeps_probabilities_ordered(sample_data):
    from vdg_tf.models import build_classifier

    cfg = task_config("ordinal")
    model = build_classifier(cfg, 7, 50, log_mel_frames(cfg.data.audio))
    layer = model.get_layer("fused")
    layer.steps.assign(np.random.default_rng(0).normal(size=layer.steps.shape) * 3)
    p = layer(np.linspace(-5, 5, 11)[:, None].astype(np.float32)).numpy()
    assert np.all(np.diff(p, axis=1) <= 0)  # P(y > k) falls with k for every input


def test_mixed_precision_trains_and_saves_float32(sample_data, tmp_path):
    """train.mixed_precision=on (what auto picks on a GPU): float16 compute, float32 model file."""
    import tf_keras as keras

    cfg = tiny_config(epochs=1)
    cfg.train.mixed_precision = "on"
    result = train(cfg, sample_data["manifest_train"], tmp_path, progress=False)
    assert keras.mixed_precision.global_policy().name == "float32"  # restored after the build
    run = Bundle.load(tmp_path)
    layers = [la for la in run.model.layers if not isinstance(la, keras.layers.InputLayer)]
    assert {layer.dtype_policy.name for layer in layers} == {"float32"}
    x, _ = next(
        iter(dataset_from(sample_data["manifest_eval"], cfg.data, run.labels, run.tokenizer))
    )
    np.testing.assert_allclose(
        inference_model(run.model)(x), inference_model(result.model)(x), atol=1e-5
    )

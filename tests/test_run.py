"""`vdg run`: stages in order, a report with every stage's figures, and resume on rerun."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import vdg
from vdg_tf.pipeline import PipelineSpec, format_report, run, run_pipeline
from vdg_tf.training.plots import pareto_front

pytestmark = pytest.mark.slow  # a whole pipeline (or vdg demo) per module

TINY = {
    "data": {
        "video": {"frames": 4, "size": 32},
        "text": {"max_tokens": 12, "vocab_size": 120},
        "batch_size": 8,
    },
    "model": {"width": 16, "embed_dim": 16, "fused_dim": 32},
    "train": {"epochs": 4, "learning_rate": 5e-3},
}


PIPELINE = {
    "name": "tiny",
    "config": TINY,
    "stages": [
        {"train": {}},
        {"prune": {"target_sparsity": 0.5, "epochs": 2, "min_weights": 256}},
        {"cluster": {"clusters": 8, "epochs": 1, "min_weights": 256}},
        {"qat": {"epochs": 1, "preserve_clusters": True}},  # PCQAT
        {"int4_qat": {"epochs": 1}},
        {"export": {"targets": ["float32", "edge-int8", "gpu-fp16", "edge-int4"]}},
        {"sweep": {"sparsity": [0.0, 0.75], "targets": ["edge-int8", "gpu-fp16", "edge-int4"],
                   "prune": {"epochs": 1, "min_weights": 256}, "qat": {"epochs": 1},
                   "int4_qat": {"epochs": 1}}},
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def pipeline_run(sample_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("pipe")
    path = out.parent / f"{out.name}.yaml"  # the pipeline file, outside the run folder
    path.write_text(yaml.safe_dump(PIPELINE))
    # the evaluation split also picks the trained model's epoch (validation): these tests
    # check what compression keeps of a model that learned, not a held-out figure
    report = run(
        path,
        sample_data["manifest_train"],
        out,
        eval_data=sample_data["manifest_eval"],
        val_data=sample_data["manifest_eval"],
        progress=False,
    ).to_dict()
    return PipelineSpec.load(path), out, report, path


def test_report_has_every_stage_with_its_figures(pipeline_run):
    _, out, report, _ = pipeline_run
    stages = report["stages"]
    assert list(stages) == [
        "keras_float",
        "pruned",
        "clustered",
        "qat",
        "int4_aware",
        "tflite_float32",
        "tflite_int8",
        "tflite_fp16",
        "tflite_int4",
        "sweep_s00_int8",
        "sweep_s00_fp16",
        "sweep_s00_int4",
        "sweep_s75_int8",
        "sweep_s75_fp16",
        "sweep_s75_int4",
    ]
    for name, s in stages.items():
        assert {"accuracy", "bytes", "gzip_bytes", "path"} <= set(s), name
        assert Path(s["path"]).is_file()
    assert abs(stages["pruned"]["sparsity"] - 0.5) <= 0.01
    assert all(n <= 9 for n in stages["clustered"]["distinct_values"].values())
    assert stages["tflite_int8"]["int8_op_fraction"] >= 0.95
    assert stages["tflite_float32"]["int8_op_fraction"] == 0
    # a 90 KB model is mostly flatbuffer overhead; the demo-size figure (<= 0.30) is in BENCHMARKS.md
    assert stages["tflite_int8"]["bytes"] < 0.6 * stages["tflite_float32"]["bytes"]
    assert stages["tflite_fp16"]["bytes"] < 0.6 * stages["tflite_float32"]["bytes"]
    # the float32 export is the trained model itself; the int8 one (pruned, clustered, PCQAT)
    # stays within 2 of the 16 evaluation clips. Its top-1 agreement with the float model is
    # not held here: this 4-epoch model's classes are close, and it read 0.375 to 1.0 over
    # reruns (the demo-size model's 80/80 is in BENCHMARKS.md)
    assert stages["tflite_float32"]["score"] == stages["keras_float"]["score"]
    assert stages["tflite_float32"]["top1_agreement"] == 1.0
    assert abs(stages["tflite_int8"]["score"] - stages["tflite_float32"]["score"]) <= 2 / 16
    assert stages["qat"]["deployable"] is False and stages["tflite_int8"]["deployable"]
    # the int4 file is exported from the int4-aware model, whose kernels are already on
    # its grid: it scores as that Keras model does (one near-tie clip of slack)
    assert abs(stages["tflite_int4"]["score"] - stages["int4_aware"]["score"]) <= 1 / 16
    assert list(out.glob("*_sweep/s75/int4_aware.keras"))
    assert "text_embed (Embedding)" in report["layers_left_float_in_qat"]
    assert (out / "report.json").is_file() and "tflite_int8" in format_report(report)
    # which split picked the model that every stage compresses, and its figures there
    training = report["training"]
    assert training["checkpoint"]["split"] == "val" and training["val"]["rows"] == 16
    assert report["stages_scored_on"] == "eval"
    # validation here is the evaluation manifest: the checkpoint's validation figure is the
    # trained model's score on the evaluation split, which the keras_float entry measures
    assert training["val"]["accuracy"] == pytest.approx(stages["keras_float"]["accuracy"])
    assert "checkpoint: best val_fused_accuracy on the validation split" in format_report(report)
    assert (out / "report.png").is_file() and (out / "pareto.png").is_file()
    # exports are `vdg export`'s: each file with its own metadata named after it
    export = out / "export"
    for target in ("float32", "edge-int8", "gpu-fp16", "edge-int4"):
        labels = (export / f"model_{target}.labels.txt").read_text().split()
        assert labels == report["labels"], target
    assert not (export / "labels.txt").exists() and not (export / "config.yaml").exists()
    assert json.loads((out / "report.json").read_text()) == {
        k: v for k, v in report.items() if k != "report"
    }
    # the sweep's 75% point was pruned further than its 0% point
    assert stages["sweep_s75_int8"]["gzip_bytes"] < stages["sweep_s00_int8"]["gzip_bytes"]
    points = {n: (s["gzip_bytes"], s["score"]) for n, s in stages.items() if n.startswith("sweep_")}
    assert report["pareto_front"]
    assert report["pareto_front"] == pareto_front(points, report["higher_is_better"])
    # the report names the quickest export that agrees with the trained model
    fastest = report["fastest"]
    timed = {c["stage"]: c for c in fastest["candidates"]}
    assert set(timed) == {n for n in stages if n.startswith("tflite_")}
    ok = [c["latency_ms"] for c in timed.values() if c["within_tolerance"]]
    assert fastest["latency_ms"] == min(ok) and timed[fastest["stage"]]["within_tolerance"]
    assert fastest["target"] in ("float32", "edge-int8", "gpu-fp16", "edge-int4")
    assert f"fastest here: {fastest['stage']}" in format_report(report)


def test_pareto_front_of_an_error_metric_keeps_the_best_points():
    """MAE (lower is better): every MAE >= 1 still has a front, the smallest errors on it."""
    points = {"a": (10, 1.5), "b": (20, 1.2), "c": (30, 2.0)}
    assert pareto_front(points, higher_is_better=False) == ["a", "b"]
    assert pareto_front(points, higher_is_better=True) == ["a", "c"]


def test_rerun_resumes_finished_stages(pipeline_run, sample_data):
    spec, out, report, _ = pipeline_run
    before = {
        p: p.stat().st_mtime_ns for ext in ("keras", "h5", "tflite") for p in out.rglob(f"*.{ext}")
    }
    assert any(p.suffix == ".h5" for p in before)  # the PCQAT stage's model, rebuilt by load_qat
    again = run_pipeline(
        spec, sample_data["manifest_train"], sample_data["manifest_eval"], out, progress=False,
        val_data=sample_data["manifest_eval"],
    )  # fmt: skip
    after = {p: p.stat().st_mtime_ns for p in before}
    assert before == after
    assert again["stages"] == report["stages"]


def test_run_json_is_the_api_report(pipeline_run, sample_data, capfd):
    """`vdg run --json` prints `vdg.run(...).to_dict()` for the same arguments (both resume
    every stage of the fixture's run, so no figure is measured twice)."""
    _, out, _, path = pipeline_run
    train, ev = sample_data["manifest_train"], sample_data["manifest_eval"]
    rc, stdout, stderr = vdg(
        capfd, "run", path, "--data", train, "--eval-data", ev, "--val-data", ev, "--out", out,
        "--json",
    )  # fmt: skip
    assert rc == 0, stderr[-2000:]
    api = run(path, train, out, eval_data=ev, val_data=ev, progress=False)
    assert json.loads(stdout) == api.to_dict()
    assert api.to_dict()["report"] == str(out / "report.json") and "tflite_int8" in api.stages
    assert "done before, loading" in stderr  # the library's log lines reach the CLI's stderr
    assert api.format() == format_report(api.to_dict())


def test_a_changed_stage_reruns_with_the_stages_after_it(pipeline_run, sample_data):
    """Only the export stage changed: earlier models are reused, the new target is written."""
    spec, out, report, _ = pipeline_run
    earlier = {p: p.stat().st_mtime_ns for p in out.glob("0[0-3]_*.*")}
    changed = PipelineSpec.from_dict(
        {"name": "tiny", "config": TINY, "stages": [
            {"train": {}}, {"prune": {"target_sparsity": 0.5, "epochs": 2, "min_weights": 256}},
            {"cluster": {"clusters": 8, "epochs": 1, "min_weights": 256}},
            {"qat": {"epochs": 1, "preserve_clusters": True}},
            {"export": {"targets": ["float32", "cpu-dynamic"]}},
        ]}
    )  # fmt: skip
    again = run_pipeline(
        changed, sample_data["manifest_train"], sample_data["manifest_eval"], out, progress=False,
        val_data=sample_data["manifest_eval"],
    )  # fmt: skip
    assert {p: p.stat().st_mtime_ns for p in earlier} == earlier
    assert "tflite_dynamic" in again["stages"] and "tflite_int8" not in again["stages"]
    assert again["stages"]["keras_float"] == report["stages"]["keras_float"]


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"stages": [{"prune": {}}]}, r"stages\[0\]: the first stage must be 'train'"),
        ({"stages": [{"train": {}}, {"squash": {}}]}, r"stages\[1\]: unknown stage 'squash'"),
        ({"stages": [{"train": {}}], "extra": 1}, "extra: unknown key"),
        ({"stages": [{"train": {}}, {"qat": {"epochz": 3}}]}, r"stages\[1\]\.qat\.epochz"),
        ({"stages": [{"train": {"epochs": "3"}}]}, r"stages\[0\]\.train\.epochs"),
        ({"stages": [{"train": {}}, {"export": {"targets": ["edge-int9"]}}]}, "edge-int9"),
        ({"stages": [{"train": {}}, {"sweep": {"qat": {"epoch": 1}}}]}, r"qat\.epoch"),
        ({"config": {"model": {"fusion": "concat"}}, "stages": [{"train": {}}]}, "model.fusion"),
    ],
)
def test_bad_pipeline_files_are_named(spec, message):
    with pytest.raises(ValueError, match=message):
        PipelineSpec.from_dict(spec)


def test_a_misspelled_last_stage_option_fails_before_any_work(sample_data, tmp_path):
    """`vdg run` checks the whole file first: one line naming the field, nothing written."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: bad\nstages:\n  - train: {}\n  - prune: {epochs: 1}\n  - qat: {epocs: 2}\n"
    )
    out = subprocess.run(
        [sys.executable, "-m", "vdg_tf.cli", "run", str(bad), "--data", sample_data["manifest_train"],
         "--eval-data", sample_data["manifest_eval"], "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 2
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("vdg run: error:") and "stages[2].qat.epocs" in last, out.stderr
    assert not (tmp_path / "out").exists()


def test_shipped_pipelines_parse():
    paths = [*Path(__file__).parent.parent.glob("pipelines/*.yaml")]
    assert paths
    for path in paths:
        spec = PipelineSpec.load(path)
        assert spec.stages[0].kind == "train"
        assert yaml.safe_load(path.read_text())["name"] == spec.name


def test_distill_stage_trains_a_smaller_student_that_later_stages_export(sample_data, tmp_path):
    spec = PipelineSpec.from_dict({
        "name": "distill",
        "config": TINY,
        "stages": [
            {"train": {"epochs": 3}},
            {"distill": {"student": {"width": 8, "fused_dim": 16}, "epochs": 3}},
            {"export": {"targets": ["float32", "gpu-fp16"]}},
        ],
    })  # fmt: skip
    report = run_pipeline(
        spec, sample_data["manifest_train"], sample_data["manifest_eval"], tmp_path, progress=False
    )
    s = report["stages"]
    assert s["distilled"]["weights"] < 0.6 * s["distilled"]["teacher_weights"]
    # float32 is the teacher (the reference); fp16 is the compressed student
    assert s["tflite_fp16"]["bytes"] < 0.4 * s["tflite_float32"]["bytes"]
    assert s["tflite_fp16"]["score"] == pytest.approx(s["distilled"]["score"], abs=1 / 16)
    # each export's config is its own model's: the student's beside fp16, the teacher's
    # beside float32
    student = yaml.safe_load((tmp_path / "export" / "model_gpu-fp16.config.yaml").read_text())
    teacher = yaml.safe_load((tmp_path / "export" / "model_float32.config.yaml").read_text())
    assert (student["model"]["width"], teacher["model"]["width"]) == (8, 16)


def test_distill_is_refused_at_load_for_a_task_without_class_probabilities():
    with pytest.raises(ValueError, match=r"stages\[1\]\.distill: task regression"):
        PipelineSpec.from_dict(
            {"config": {"data": {"task": "regression"}}, "stages": [{"train": {}}, {"distill": {}}]}
        )


def test_a_folder_of_other_files_is_refused_before_any_work(sample_data, tmp_path):
    mine = tmp_path / "photos"
    mine.mkdir()
    (mine / "holiday.jpg").write_bytes(b"not vdg's")
    spec = PipelineSpec.from_dict({"config": TINY, "stages": [{"train": {}}]})
    with pytest.raises(ValueError, match="photos"):
        run_pipeline(spec, sample_data["manifest_train"], sample_data["manifest_eval"], mine)
    assert [p.name for p in mine.iterdir()] == ["holiday.jpg"]


def test_a_folder_of_class_folders_runs_to_a_verified_int8_file(sample_data, tmp_path, capfd):
    """`vdg run PIPELINE --data videos/ --val-split F`: no manifest and no evaluation data;
    the folder is imported into the run, its held-out rows pick the checkpoint and score
    every stage, and the int8 file is verified in LiteRT."""
    manifest = Path(sample_data["manifest_train"])
    videos = tmp_path / "videos"
    for i, line in enumerate(manifest.read_text().splitlines()):
        row = json.loads(line)
        (videos / row["label"]).mkdir(parents=True, exist_ok=True)
        shutil.copy(manifest.parent / row["video"], videos / row["label"] / f"{i:03d}.mp4")
    pipeline = tmp_path / "tiny.yaml"
    pipeline.write_text(yaml.safe_dump({
        "name": "folders", "config": {**TINY, "train": {"epochs": 2, "learning_rate": 5e-3}},
        "stages": [{"train": {}}, {"export": {"targets": ["float32", "edge-int8"]}}],
    }))  # fmt: skip
    out = tmp_path / "out"
    rc, stdout, stderr = vdg(
        capfd, "run", pipeline, "--data", videos, "--val-split", "0.25", "--out", out, "--json"
    )
    assert rc == 0, stderr[-2000:]
    report = json.loads(stdout)
    imported = (out / "data" / "videos.jsonl").read_text().splitlines()
    held_out = (out / "data" / "val.jsonl").read_text().splitlines()
    assert len(imported) == 48 and len(held_out) == 12
    assert report["stages_scored_on"] == "val" and report["eval_data"] == str(
        out / "data" / "val.jsonl"
    )
    assert report["training"]["checkpoint"]["split"] == "val"
    assert report["labels"] == sorted(p.name for p in videos.iterdir())
    int8 = report["stages"]["tflite_int8"]
    assert Path(int8["path"]).is_file() and int8["int8_op_fraction"] >= 0.95
    assert "top1_agreement" in int8  # run in LiteRT against the float model's outputs
    sidecar = Path(int8["path"]).with_name("model_edge-int8.labels.txt")
    assert sidecar.read_text().split() == report["labels"]
    assert "every stage scored on the validation split" in format_report(report)

"""`vdg.export`, the one export path: any Keras model in a Bundle (QAT-wrapped too) with
int8 calibration from data, `vdg export --json` equal to the API's result, and exports
that replace only files an earlier export wrote."""

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import tiny_config, vdg
from vdg_tf.bundle import Bundle, read_sidecars, sidecar_path
from vdg_tf.export import ExportResult, export, export_model
from vdg_tf.export.litert import LiteRTModel
from vdg_tf.export.tflite import read_metadata
from vdg_tf.files import ForeignPathError
from vdg_tf.models import inference_model
from vdg_tf.training.evaluate import predict_dataset


def test_cli_json_equals_the_api_result(trained_run, capfd, tmp_path):
    out = tmp_path / "m.tflite"
    rc, stdout, err = vdg(capfd, "export", trained_run.out, "--target", "float32", "--out", out,
                          "--json")  # fmt: skip
    assert rc == 0, err
    cli = json.loads(stdout)
    import vdg_tf

    # the package called is the function: `vdg.export(...)` as README's Python section reads
    r = vdg_tf.export(trained_run.out, "float32", out)  # replaces the file the command wrote
    assert isinstance(r, ExportResult) and export_model is export
    assert cli == r.to_dict()
    assert cli["bytes"] == out.stat().st_size and cli["target"] == "float32"
    assert cli["int8_op_fraction"] == 0.0 and 0 < cli["gzip_bytes"] < cli["bytes"]
    assert sorted(cli["sidecars"]) == sorted(
        str(sidecar_path(out, n)) for n in ("config.yaml", "labels.txt", "vocab.txt", "bundle.json")
    )
    assert f"exported {trained_run.out}" in r.format()


def _class_folders(manifest, root, per_class: int = 3):
    """A folder of `<label>/<video>` folders made from a manifest's clips."""
    manifest, taken = Path(manifest), {}
    for line in manifest.read_text().splitlines():
        row = json.loads(line)
        if taken.get(row["label"], 0) >= per_class:
            continue
        taken[row["label"]] = taken.get(row["label"], 0) + 1
        (root / row["label"]).mkdir(parents=True, exist_ok=True)
        shutil.copy(manifest.parent / row["video"], root / row["label"])
    return root


def test_int8_calibrates_on_a_folder_of_class_folders(trained_run, sample_data, tmp_path):
    videos = _class_folders(sample_data["manifest_train"], tmp_path / "videos")
    r = export(trained_run.out, "edge-int8", tmp_path / "m.tflite", data=videos,
               calibration_samples=8)  # fmt: skip
    assert r.int8_op_fraction > 0.5 and r.target == "edge-int8"
    assert not list(tmp_path.glob("*.jsonl"))  # the import went to a temp folder
    with pytest.raises(ValueError, match="--data: an int8 target calibrates on data"):
        export(trained_run.out, "edge-int8", tmp_path / "n.tflite")


@pytest.fixture(scope="module")
def qat_model(trained_run, sample_data):
    from vdg_tf.compression import QATConfig, qat
    from vdg_tf.data.pipeline import make_dataset
    from vdg_tf.manifest import read_manifest
    from vdg_tf.training.trainer import compile_classifier, with_head_targets

    cfg = tiny_config()
    rows, _ = read_manifest(sample_data["manifest_train"])
    ds = make_dataset(rows, cfg.data, trained_run.labels, trained_run.tokenizer, training=True)
    fit_ds = with_head_targets(ds, trained_run.model.output_names)
    compile_ = lambda m, s: compile_classifier(m, cfg, s)  # noqa: E731
    return qat(trained_run.model, fit_ds, QATConfig(epochs=1), compile_).model


def test_a_qat_model_in_a_bundle_exports_int8_as_the_pipeline_does(
    trained_run, qat_model, sample_data, eval_ds, tmp_path
):
    """The pipeline's export stage passes a Bundle holding its current model."""
    bundle = dataclasses.replace(Bundle.load(trained_run.out, model=False), model=qat_model)
    r = export(bundle, "edge-int8", tmp_path / "qat.tflite", data=sample_data["manifest_train"],
               calibration_samples=16)  # fmt: skip
    assert r.int8_op_fraction > 0.9 and r.bytes == r.path.stat().st_size
    assert read_sidecars(r.path)["labels.txt"].splitlines() == trained_run.labels
    _, keras_out = predict_dataset(inference_model(qat_model), eval_ds)
    lite = LiteRTModel(r.path)
    lite_out = np.concatenate(
        [lite.predict_batch({k: v.numpy() for k, v in x.items()}) for x, _ in eval_ds]
    )
    same = np.mean(keras_out.argmax(-1) == lite_out.argmax(-1))
    assert same >= 0.85, same  # QAT simulated the int8 arithmetic LiteRT runs


def test_export_replaces_only_what_an_export_wrote(trained_run, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    with pytest.raises(ForeignPathError, match="notes.txt: exists and was not written by vdg"):
        export(trained_run.out, "float32", notes)
    assert notes.read_text() == "my notes\n" and not sidecar_path(notes, "labels.txt").exists()

    mine = tmp_path / "mine.tflite"
    first = export(trained_run.out, "float32", mine)
    assert json.loads(read_metadata(mine)["export"])["target"] == "float32"
    export(trained_run.out, "float32", mine)  # its own files: replaced
    labels = sidecar_path(mine, "labels.txt")
    labels.write_text("edited\n")  # now the user's
    with pytest.raises(ForeignPathError, match="mine.labels.txt: exists and was not written"):
        export(trained_run.out, "float32", mine)
    assert labels.read_text() == "edited\n"
    again = export(trained_run.out, "float32", mine, force=True)
    assert labels.read_text().splitlines() == trained_run.labels and again.bytes == first.bytes

    fresh = tmp_path / "fresh.tflite"  # a user's sidecar-named file beside a new export
    sidecar_path(fresh, "config.yaml").write_text("my: settings\n")
    with pytest.raises(ForeignPathError, match="fresh.config.yaml: exists"):
        export(trained_run.out, "float32", fresh)
    assert not fresh.exists()


def test_cli_refuses_a_users_file_and_a_folder_in_one_line(trained_run, capfd, tmp_path):
    user = tmp_path / "user"
    user.mkdir()
    (user / "notes.txt").write_text("mine\n")
    (user / "notes.labels.txt").write_text("mine too\n")
    rc, _, err = vdg(capfd, "export", trained_run.out, "--target", "float32",
                     "--out", user / "notes.txt")  # fmt: skip
    assert rc == 2 and err.strip().splitlines()[-1].endswith("(--force replaces it)")
    assert (user / "notes.labels.txt").read_text() == "mine too\n"
    rc, _, err = vdg(capfd, "export", trained_run.out, "--target", "float32", "--out", user)
    assert rc == 2 and f"{user}: is a folder" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in user.iterdir()) == ["notes.labels.txt", "notes.txt"]
    rc, _, err = vdg(capfd, "export", trained_run.out, "--target", "float32",
                     "--out", user / "notes.txt", "--force")  # fmt: skip
    assert rc == 0, err
    assert (user / "notes.labels.txt").read_text().splitlines() == trained_run.labels


def test_inspect_json_equals_the_api_result(trained_run, capfd, tmp_path):
    from vdg_tf.export import inspect_model

    path = export(trained_run.out, "float32", tmp_path / "m.tflite").path
    rc, stdout, err = vdg(capfd, "inspect", path, "--json")
    assert rc == 0, err
    r = inspect_model(path)
    assert json.loads(stdout) == r.to_dict() and r.latency_ms is None
    assert r.int8_op_fraction == 0.0 and r.bytes == path.stat().st_size
    assert "int8 op fraction" in r.format()

"""Safety: no code runs from a model file unless trusted on purpose, vdg never destroys
files it did not write, every bad row is counted once per manifest, and a job in which
every clip failed fails."""

import json
import shutil
from pathlib import Path

import pytest
import tf_keras as keras

from tests.helpers import tiny_config
from vdg_tf.bundle import MODEL_FILE, Bundle, load_model, sidecar_path
from vdg_tf.cli import main
from vdg_tf.config import DataConfig, VideoSpec
from vdg_tf.data.pipeline import SkipLog, decoded_dataset
from vdg_tf.data.records import preprocess
from vdg_tf.data.sources import open_source
from vdg_tf.export.api import export_model
from vdg_tf.files import MARKER, ForeignPathError, atomic_dir
from vdg_tf.manifest import read_manifest
from vdg_tf.runtime.evaluate import evaluate
from vdg_tf.training.trainer import train


def _planted_hdf5(path: Path, marker: Path) -> None:
    """An HDF5 model whose Lambda layer writes `marker` when it runs, saved as `path`."""

    def planted(x, marker=str(marker)):
        open(marker, "w").close()
        return x

    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Lambda(planted)(inputs))
    h5 = path.with_suffix(".h5")
    model.save(h5)
    h5.replace(path)
    marker.unlink()  # building the model ran it once, here, on purpose


def test_a_lambda_in_an_hdf5_model_keras_never_runs(trained_run, sample_data, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run.out, run)
    marker = tmp_path / "lambda_ran"
    _planted_hdf5(run / MODEL_FILE, marker)
    with pytest.raises(ValueError, match="not a zip-based .keras model.*--trust-model"):
        Bundle.load(run)
    assert main(["evaluate", str(run), "--data", sample_data["manifest_eval"], "--json"]) == 2
    out = tmp_path / "m.tflite"
    assert main(["export", str(run), "--target", "float32", "--out", str(out), "--json"]) == 2
    assert not marker.exists() and not out.exists()
    load_model(run / MODEL_FILE, trust=True)  # on purpose: the user trusts this file
    assert marker.exists()


def test_trust_model_loads_a_legacy_hdf5_run(trained_run, sample_data, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run.out, run)
    (run / MODEL_FILE).unlink()
    trained_run.model.save(run / "model.h5")
    (run / "model.h5").replace(run / MODEL_FILE)
    with pytest.raises(ValueError, match="--trust-model"):
        evaluate(run, sample_data["manifest_eval"])
    report = evaluate(run, sample_data["manifest_eval"], trust_model=True)
    assert report["n"] == 16


def test_the_model_file_carries_its_own_labels(trained_run, tmp_path):
    """Loose metadata beside a model (a killed rerun on other data wrote new labels) does
    not relabel it: the labels saved inside the model file win."""
    run = tmp_path / "run"
    shutil.copytree(trained_run.out, run)
    (run / "labels.txt").write_text("other\nlabels\n")
    assert Bundle.load(run, model=False).labels == trained_run.labels


def test_export_never_overwrites_the_users_files(trained_run, sample_data, tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "labels.txt").write_text("mine\n")
    (folder / "config.yaml").write_text("my: settings\n")
    serving = tmp_path / "serving"
    serving.mkdir()
    (serving / "notes.txt").write_text("keep me\n")
    out = folder / "model.tflite"
    with pytest.raises(ForeignPathError, match="serving: folder holds files vdg did not write"):
        export_model(trained_run.out, "float32", out, saved_model=serving)
    assert (serving / "notes.txt").read_text() == "keep me\n" and not out.exists()

    r = export_model(trained_run.out, "float32", out, saved_model=tmp_path / "new_serving")
    assert (folder / "labels.txt").read_text() == "mine\n"
    assert (folder / "config.yaml").read_text() == "my: settings\n"
    assert sidecar_path(out, "labels.txt").read_text().splitlines() == trained_run.labels
    assert Path(r.saved_model, MARKER).is_file()
    report = evaluate(out, sample_data["manifest_eval"])  # reads model.labels.txt etc.
    assert report["n"] == 16
    # a folder vdg wrote is replaced whole
    export_model(trained_run.out, "float32", out, saved_model=tmp_path / "new_serving")
    assert (tmp_path / "new_serving" / "saved_model.pb").is_file()


def test_atomic_dir_replaces_only_its_own_folders(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "data.csv").write_text("1,2\n")
    foreign = "mine: folder holds files vdg did not write"
    with pytest.raises(ForeignPathError, match=foreign), atomic_dir(mine) as tmp:
        (tmp / "x").write_text("new")
    assert (mine / "data.csv").read_text() == "1,2\n" and len(list(tmp_path.iterdir())) == 1

    out = tmp_path / "out"
    with atomic_dir(out) as tmp:
        (tmp / "a").write_text("first")
    with pytest.raises(RuntimeError), atomic_dir(out) as tmp:
        (tmp / "a").write_text("half")
        raise RuntimeError("killed mid-write")
    assert (out / "a").read_text() == "first"  # the failed write left the old folder
    with atomic_dir(out) as tmp:
        (tmp / "b").write_text("second")
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "out"]  # nothing aside


def test_train_refuses_an_out_folder_of_other_files(sample_data, tmp_path):
    out = tmp_path / "project"
    out.mkdir()
    (out / "config.yaml").write_text("mine\n")
    with pytest.raises(ForeignPathError, match="project: folder holds files vdg did not write"):
        train(tiny_config(1), sample_data["manifest_train"], out, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["config.yaml"]


def _manifest(path: Path, good: str, name: str) -> Path:
    """Line 1 good, lines 2-3 missing files, line 4 a bad value: 3 problems."""
    rows = [
        {"video": good, "label": "a"},
        {"video": f"{name}_gone1.mp4", "label": "a"},
        {"video": f"{name}_gone2.mp4", "label": "b"},
        {"video": good, "label": "b", "start": -1},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_train_and_eval_problems_are_counted_apart(sample_data, tmp_path):
    """The same line numbers in two manifests: 6 problems, not 4 (or 3)."""
    good = read_manifest(sample_data["manifest_eval"])[0][0].video
    cfg = DataConfig(video=VideoSpec(frames=4, size=32))
    skips = SkipLog()
    for name in ("train", "eval"):
        source = open_source(_manifest(tmp_path / f"{name}.jsonl", good, name), cfg, skips=skips)
        assert len(list(source.decoded.as_numpy_iterator())) == 1
        list(source.decoded.as_numpy_iterator())  # a second epoch counts nothing again
    assert skips.count == 6, skips.reasons
    assert sum("train.jsonl line 2" in r for r in skips.reasons) == 1
    assert sum("eval.jsonl line 2" in r for r in skips.reasons) == 1


def test_decode_timeout_comes_from_the_config(sample_data):
    rows = read_manifest(sample_data["manifest_eval"])[0][:2]
    cfg = DataConfig(video=VideoSpec(frames=4, size=32), decode_timeout=1e-4)
    skips = SkipLog()
    assert list(decoded_dataset(rows, cfg, sorted({r.label for r in rows}), skips=skips)) == []
    assert skips.count == 2 and all("took over 0.0001 s" in r for r in skips.reasons)


def test_jobs_in_which_every_clip_failed_fail(tmp_path, capsys):
    m = tmp_path / "m.jsonl"
    m.write_text(
        "".join(
            json.dumps({"video": f"gone{i}.mp4", "label": "ab"[i % 2]}) + "\n" for i in range(3)
        )
    )
    cfg = tiny_config(1)
    cfg.save(tmp_path / "cfg.yaml")
    with pytest.raises(ValueError, match="no clip could be decoded: skipped 3 of 3 clips"):
        preprocess(m, tmp_path / "rec", cfg.data, progress=False)
    assert not list((tmp_path / "rec").glob("*.tfrecord"))
    assert (
        main(["preprocess", str(m), str(tmp_path / "rec2"), "--config", str(tmp_path / "cfg.yaml")])
        == 2
    )
    assert (
        main(
            [
                "train",
                "--data",
                str(m),
                "--config",
                str(tmp_path / "cfg.yaml"),
                "--out",
                str(tmp_path / "run"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        err[-1].startswith("vdg train: error: ")
        and "no clip could be decoded: skipped 3 of 3" in err[-1]
    )
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"video": "a.mp4", "start": true}\n{"video": 3}\n')
    assert (
        main(
            [
                "train",
                "--data",
                str(bad),
                "--config",
                str(tmp_path / "cfg.yaml"),
                "--out",
                str(tmp_path / "run2"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert "no usable clip: skipped 2 of 2 clips" in err[-1] and "argmax" not in err[-1]

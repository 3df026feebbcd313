"""The `vdg` command line: help lists the commands, --json prints only JSON, errors are one line.

What a fresh process shows (TensorFlow's start-up noise hidden) runs `vdg` in a subprocess;
the rest runs in-process through `cli.main` (`tests.helpers.vdg`).
"""

import json
import subprocess
import sys

import av
import pytest

from tests.helpers import vdg

VDG = [sys.executable, "-m", "vdg_tf.cli"]


def run(*args):
    return subprocess.run([*VDG, *args], capture_output=True, text=True, timeout=300)


def test_help_lists_subcommands():
    out = run("--help")
    assert out.returncode == 0
    for cmd in ("make-sample-data", "train", "evaluate", "export", "demo", "run", "inspect"):
        assert cmd in out.stdout


def test_make_sample_data_json_is_the_only_stdout(tmp_path):
    out = run("make-sample-data", str(tmp_path / "d"), "--clips", "3", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["clips"] == 3 and result["manifest_train"].endswith("manifest_train.jsonl")
    for noise in ("cuInit", "oneDNN", "absl::InitializeLog", "cuda", "cpu_feature_guard"):
        assert noise not in out.stderr, noise  # TensorFlow's start-up lines stay hidden


def test_verbose_brings_library_logs_back(tmp_path):
    quiet = run("make-sample-data", str(tmp_path / "q"), "--clips", "1")
    loud = run("make-sample-data", str(tmp_path / "v"), "--clips", "1", "--verbose")
    assert quiet.returncode == loud.returncode == 0
    assert not quiet.stdout.lstrip().startswith("{")  # a table for people by default
    assert len(loud.stderr.splitlines()) > len(quiet.stderr.splitlines())


def test_evaluate_tflite_json(trained_run, sample_data, tmp_path):
    exported = tmp_path / "m.tflite"
    saved = tmp_path / "serving"
    out = run(
        "export", str(trained_run.out), "--target", "float32", "--out", str(exported), "--json",
        "--saved-model", str(saved), "--embed-metadata",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["bytes"] == exported.stat().st_size
    assert (saved / "saved_model.pb").is_file() and (saved / "labels.txt").is_file()
    from vdg_tf.export.tflite import read_metadata

    embedded = read_metadata(exported)  # the .tflite alone says what its outputs mean
    assert embedded["labels.txt"].splitlines() == trained_run.labels
    assert "task: classification" in embedded["config.yaml"] and "vocab.txt" in embedded
    import numpy as np
    import tensorflow as tf

    serve = tf.saved_model.load(str(saved)).signatures["serving_default"]
    specs = serve.structured_input_signature[1]
    assert all(spec.shape[0] is None for spec in specs.values())  # any batch for TF Serving
    inputs = {name: tf.zeros([3, *spec.shape[1:]], spec.dtype) for name, spec in specs.items()}
    probs = serve(**inputs)["probs"].numpy()
    assert probs.shape == (3, len(trained_run.labels))
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    out = run(
        "evaluate", str(exported), "--data", sample_data["manifest_eval"], "--json", "--ablation"
    )
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["n"] == 16 and r["skipped"] == 0 and "macro_f1" in r
    # the float32 export is the trained model: the same accuracy on the same clips
    keras_eval = json.loads((trained_run.out / "metrics.json").read_text())["eval"]
    assert r["accuracy"] == keras_eval["accuracy"] and r["macro_f1"] == keras_eval["macro_f1"]
    ablation = r["ablation"]
    assert set(ablation) == {"metric", "all", "without_video", "without_audio", "without_text"}
    assert ablation["metric"] == "accuracy"
    assert ablation["all"] == r["accuracy"]


def test_bad_input_is_a_one_line_error(tmp_path, capfd):
    rc, _, err = vdg(capfd, "evaluate", tmp_path / "nope", "--data", tmp_path / "m.jsonl")
    assert rc == 2
    lines = err.strip().splitlines()
    assert lines[-1].startswith("vdg evaluate: error:") and "nope" in lines[-1]
    assert "Traceback" not in err


def test_preprocess_then_evaluate_from_the_folder(trained_run, sample_data, tmp_path, capfd):
    cfg = trained_run.out / "config.yaml"
    pre = tmp_path / "pre"
    rc, out, err = vdg(
        capfd, "preprocess", sample_data["manifest_eval"], pre, "--config", cfg, "--json"
    )
    assert rc == 0, err
    assert json.loads(out)["clips"] == 16
    rc, out, err = vdg(capfd, "evaluate", trained_run.out, "--data", pre, "--json")
    assert rc == 0, err
    assert json.loads(out)["n"] == 16


def test_make_sample_data_writes_the_asked_frame_size_and_rate(tmp_path, capfd):
    rc, _, err = vdg(capfd, "make-sample-data", tmp_path / "d", "--clips", "2", "--size", "48x32",
                     "--fps", "10", "--seconds", "1", "1.5", "--json")  # fmt: skip
    assert rc == 0, err
    for clip in sorted((tmp_path / "d" / "clips").glob("*.mp4")):
        with av.open(str(clip)) as c:
            frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        assert frames[0].shape == (32, 48, 3)
        assert 10 <= len(frames) <= 15  # 1 to 1.5 s at 10 fps


def test_make_sample_data_rejects_a_bad_size_in_one_line(tmp_path, capfd):
    rc, _, err = vdg(capfd, "make-sample-data", tmp_path / "d", "--size", "320")
    assert rc == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("vdg make-sample-data: error: --size")


def test_an_unexpected_error_is_one_line_and_verbose_shows_the_traceback(tmp_path, capfd):
    """An error no command expects (here the OS refusing a path under a file) is one line
    naming its type; --verbose lets it through with its traceback."""
    (tmp_path / "file").write_text("not a folder")
    target = tmp_path / "file" / "data"
    rc, out, err = vdg(capfd, "make-sample-data", target, "--clips", "1")
    assert rc == 1 and out == ""
    last = err.strip().splitlines()[-1]
    assert last.startswith("vdg make-sample-data: error: FileExistsError:") and "--verbose" in last
    assert "Traceback" not in err
    with pytest.raises(FileExistsError):
        vdg(capfd, "make-sample-data", target, "--clips", "1", "--verbose")


@pytest.mark.parametrize(
    "extra, message",
    [(["--preprocess"], "--preprocess: not with --incremental"),
     (["--saved-model", "sm"], "--saved-model: not with --incremental")],
)  # fmt: skip
def test_export_incremental_refuses_what_it_cannot_write_in_one_line(
    extra, message, tmp_path, capfd
):
    out = tmp_path / "m.tflite"
    rc, _, err = vdg(capfd, "export", tmp_path, "--target", "float32", "--out", out,
                     "--incremental", *extra)  # fmt: skip
    assert rc == 2 and message in err.strip().splitlines()[-1], err
    assert not out.exists()

"""What a person sees from `vdg`: tables on stdout (JSON only with --json), a short
progress line per epoch, no library noise, and errors that say what to do instead.

Commands run in-process through `vdg_tf.cli.main` (a subprocess per test would cost a
TensorFlow start); `capfd` reads what reached file descriptors 1 and 2.
"""

import json
import logging

from tests.helpers import tiny_config, vdg
from vdg_tf._quiet import RepeatFilter
from vdg_tf.training.progress import EpochProgress


def test_misspelled_option_shows_the_commands_usage_and_the_closest(capfd, tmp_path):
    rc, _, err = vdg(capfd, "train", "--data", "m.jsonl", "--out", tmp_path / "r", "--epcohs", "3")
    assert rc == 2
    assert "usage: vdg train" in err and "did you mean --epochs?" in err
    assert not (tmp_path / "r").exists()


def test_a_folder_of_videos_gets_the_manifest_format_and_no_run_folder(
    capfd, sample_data, tmp_path
):
    clips = next(p.parent for p in (_root(sample_data)).rglob("*.mp4"))
    rc, out, err = vdg(capfd, "train", "--data", clips, "--out", tmp_path / "run")
    assert rc == 2 and out == ""
    last = err.strip().splitlines()[-1]
    assert last.startswith("vdg train: error: --data") and "media files, not a manifest" in last
    assert '{"video": "clips/0001.mp4"' in last  # the format, so the user can write one
    assert not (tmp_path / "run").exists()


def test_a_media_file_where_a_manifest_goes_says_so(capfd, sample_data, trained_run):
    video = next(_root(sample_data).rglob("*.mp4"))
    rc, _, err = vdg(capfd, "evaluate", trained_run.out, "--data", video)
    assert rc == 2 and "a media file, not a manifest" in err.strip().splitlines()[-1]


def test_a_folder_holding_manifests_names_them(capfd, sample_data, tmp_path):
    rc, _, err = vdg(capfd, "train", "--data", _root(sample_data), "--out", tmp_path / "r")
    assert rc == 2 and "pass one of them" in err and "manifest_eval.jsonl" in err
    assert not (tmp_path / "r").exists()


def _root(sample_data):
    from pathlib import Path

    return Path(sample_data["manifest_train"]).parent


def test_evaluate_prints_tables_and_accepts_model_keras(capfd, sample_data, trained_run):
    model = trained_run.out / "model.keras"
    rc, out, err = vdg(capfd, "evaluate", model, "--data", sample_data["manifest_eval"])
    assert rc == 0, err
    assert "{" not in out  # text for people, not JSON
    lines = out.splitlines()
    assert lines[0].endswith(": 16 clips")
    assert any(ln.split()[:1] == ["accuracy"] for ln in lines)
    header = next(ln for ln in lines if ln.split()[:1] == ["class"])
    assert header.split() == ["class", "precision", "recall", "f1", "support"]
    rows = [ln.split() for ln in lines if ln.split()[:1] and ln.split()[0] in trained_run.labels]
    assert len(rows) == len(trained_run.labels) and all(len(r) == 5 for r in rows)
    rc, out, _ = vdg(capfd, "evaluate", model, "--data", sample_data["manifest_eval"], "--json")
    assert rc == 0 and json.loads(out)["n"] == 16


def test_export_prints_file_bytes_and_target(capfd, trained_run, tmp_path):
    path = tmp_path / "m.tflite"
    rc, out, err = vdg(capfd, "export", trained_run.out, "--target", "float32", "--out", path)
    assert rc == 0, err
    table = dict(ln.strip().split(None, 1) for ln in out.splitlines()[1:])
    assert table["file"] == str(path) and table["target"] == "float32"
    assert f"{path.stat().st_size:,} B" in table["bytes"] and "gzipped" in table["bytes"]
    assert "loads" in table["LiteRT"]
    assert "exporting float32: done in" in err  # the long step says what it is doing


def test_train_shows_one_short_line_per_epoch_and_a_summary(capfd, sample_data, tmp_path):
    cfg = tmp_path / "tiny.yaml"
    tiny_config(2).save(cfg)
    run = tmp_path / "run"
    rc, out, err = vdg(
        capfd, "train", "--data", sample_data["manifest_train"], "--val-split", "0.25",
        "--eval-data", sample_data["manifest_eval"], "--config", cfg, "--out", run,
    )  # fmt: skip
    assert rc == 0, err
    epochs = [ln for ln in err.splitlines() if ln.startswith("epoch ")]
    assert [ln.split()[1] for ln in epochs] == ["1/2", "2/2"]
    for line in epochs:
        assert "loss" in line and "val_accuracy" in line
        assert "head" not in line  # auxiliary heads go to history.csv, not the terminal
    assert "video_head_loss" in (run / "history.csv").read_text()
    assert "{" not in out and out.startswith(f"trained {run}")
    assert "evaluation" in out and "accuracy" in out and "best epoch" in out


def test_make_sample_data_table_and_a_rerun_replaces_the_folder(capfd, tmp_path):
    out_dir = tmp_path / "d"
    rc, out, _ = vdg(capfd, "make-sample-data", out_dir, "--clips", "6")
    assert rc == 0 and "{" not in out
    assert out.splitlines()[0] == f"sample data in {out_dir}" and "training" in out
    rc, out, _ = vdg(capfd, "make-sample-data", out_dir, "--clips", "3", "--json")
    assert rc == 0 and json.loads(out)["clips"] == 3
    assert len(list((out_dir / "clips").iterdir())) == 3  # no orphans from the 6-clip run
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]  # no temp folder left
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    rc, _, err = vdg(capfd, "make-sample-data", tmp_path / "mine", "--clips", "2")
    assert rc == 2 and "not sample data vdg wrote" in err
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_epoch_progress_shows_loss_and_the_primary_metric_only(capsys):
    bar = EpochProgress("mae")
    bar.set_params({"epochs": 3, "steps": 5})
    bar.on_epoch_begin(0)
    logs = {"loss": 1.5, "fused_mae": 0.4, "audio_head_mae": 0.9, "video_head_loss": 2.0}
    logs |= {"val_loss": 1.7, "val_fused_mae": 0.5}
    bar.on_epoch_end(0, logs)
    line = capsys.readouterr().err.strip()
    assert line.startswith("epoch 1/3  loss 1.500  mae 0.400  val_loss 1.700  val_mae 0.500")
    assert "head" not in line


def test_a_repeated_library_warning_is_shown_once_and_counted(caplog):
    log = logging.getLogger("some.library")
    repeats = RepeatFilter()
    log.addFilter(repeats)
    try:
        for _ in range(8):
            log.warning("Input layer does not contain zero weights, so apply CQAT instead.")
    finally:
        log.removeFilter(repeats)
    assert [r.getMessage().endswith("apply CQAT instead.") for r in caplog.records] == [True]
    assert repeats.summary().startswith("(7 repeats of 1 library warning")

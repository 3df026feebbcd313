"""`vdg.evaluate`: one API call behind `vdg evaluate`, whose `--json` is the report's
`to_dict()` and whose table is its `format()`; data may be a folder of class folders; the
plot is the task's."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.helpers import vdg
from vdg_tf.manifest import read_manifest
from vdg_tf.runtime.evaluate import EvalReport, evaluate


def test_evaluate_json_and_table_are_the_api_result(trained_run, sample_data, tmp_path, capfd):
    data, plot = sample_data["manifest_eval"], tmp_path / "confusion.png"
    rc, out, err = vdg(
        capfd, "evaluate", trained_run.out, "--data", data, "--json", "--ablation", "--plot", plot
    )
    assert rc == 0, err
    report = evaluate(trained_run.out, data, ablation=True, plot=tmp_path / "again.png")
    assert isinstance(report, EvalReport)
    assert json.loads(out) == report.to_dict()
    d = report.to_dict()
    assert {"accuracy", "macro_f1", "n", "skipped", "skipped_files", "ablation"} <= set(d)
    assert d["n"] == 16 and d["skipped"] == 0 and d["skipped_files"] == []
    assert report["accuracy"] == d["accuracy"]  # reads like the dict it prints
    # the classification task plots its confusion matrix, and the table says where
    assert plot.stat().st_size > 0 and (tmp_path / "again.png").stat().st_size > 0
    rc, text, err = vdg(capfd, "evaluate", trained_run.out, "--data", data, "--plot", plot)
    assert rc == 0, err
    expected = evaluate(trained_run.out, data, plot=plot).format()
    assert text.strip() == expected.strip()
    assert text.splitlines()[0] == f"{trained_run.out} on {data}: 16 clips"
    assert f"confusion matrix: {plot}" in text


def test_evaluate_takes_a_bundle_and_keywords_only(trained_run, sample_data):
    data = sample_data["manifest_eval"]
    from_bundle = evaluate(trained_run.bundle, data).to_dict()
    assert from_bundle == evaluate(trained_run.out, data).to_dict()
    with pytest.raises(TypeError):
        evaluate(trained_run.out, data, True)  # trust_model is keyword-only


def test_evaluate_reads_a_folder_of_class_folders(trained_run, sample_data, tmp_path):
    """`data` may be `<label>/<video>` folders (imported on the fly, nothing left behind
    beside them): the clips of the evaluation manifest, sorted into folders."""
    rows, _ = read_manifest(sample_data["manifest_eval"])
    root = tmp_path / "videos"
    for r in rows:
        (root / r.label).mkdir(parents=True, exist_ok=True)
        shutil.copy(r.video, root / r.label / Path(r.video).name)
    report = evaluate(trained_run.out, root)
    assert report["n"] == len(rows) == 16 and report["skipped"] == 0
    assert sorted(p.name for p in root.iterdir()) == sorted({r.label for r in rows})

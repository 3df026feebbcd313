"""`vdg export --target auto`: every candidate measured on this machine, the fastest that
agrees with float32 kept, and the choice consistent with its own candidate table."""

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import vdg
from vdg_tf.export.auto import CANDIDATES, agreement_score, choose
from vdg_tf.export.litert import PREDICT_BATCH, LiteRTModel
from vdg_tf.export.tflite import read_metadata
from vdg_tf.tasks import get_task


def _table(*rows):
    return [{"target": t, "ms": ms, "bytes": b, "agreement": a} for t, ms, b, a in rows]


def test_the_fastest_candidate_within_tolerance_is_chosen():
    table = _table(("float32", 1.1, 900, 1.0), ("gpu-fp16", 1.0, 500, 1.0),
                   ("cpu-dynamic", 0.7, 300, 0.95), ("edge-int8", 0.8, 250, 0.995))  # fmt: skip
    assert choose(table, 0.99) == "edge-int8"  # cpu-dynamic is faster but agrees less
    assert [c["within_tolerance"] for c in table] == [True, True, False, True]
    assert choose(table, 0.9) == "cpu-dynamic"
    assert choose(table, 1.0) == "gpu-fp16"


def test_float32_always_qualifies_and_ties_go_to_the_smaller_file():
    table = _table(("float32", 1.0, 900, 1.0), ("edge-int8", 2.0, 250, 0.5))
    assert choose(table, 0.99) == "float32"  # the Intel-VNNI case: int8 slower than float
    assert choose(_table(("float32", 1.0, 900, 1.0), ("gpu-fp16", 1.0, 500, 1.0)), 0.99) == (
        "gpu-fp16"
    )


def test_a_candidate_that_failed_is_never_chosen():
    table = _table(("float32", 1.0, 900, 1.0), ("gpu-fp16", 0.9, 500, 1.0))
    table.append({"target": "edge-int8", "error": "an op with no int8 kernel"})
    assert choose(table, 0.99) == "gpu-fp16" and table[2]["within_tolerance"] is False


def test_agreement_is_the_tasks_own_measure():
    ref = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    other = np.array([[0.8, 0.2], [0.3, 0.7], [0.4, 0.6], [0.3, 0.7]])  # one top-1 flips
    assert agreement_score(ref, other, get_task("classification")) == 0.75
    values = np.array([[0.0], [1.0], [2.0]])
    assert agreement_score(values, values + 0.1, get_task("regression")) == pytest.approx(0.95)


def test_auto_export_measures_every_candidate_and_keeps_its_choice(
    trained_run, sample_data, capfd, tmp_path
):
    out, few = tmp_path / "auto.tflite", tmp_path / "few.jsonl"
    lines = Path(sample_data["manifest_eval"]).read_text().splitlines()[:8]
    root = Path(sample_data["manifest_eval"]).parent
    few.write_text("".join(json.dumps({**json.loads(x), "video": str(root / json.loads(x)["video"])})
                           + "\n" for x in lines))  # fmt: skip
    rc, stdout, err = vdg(capfd, "export", trained_run.out, "--target", "auto", "--out", out,
                          "--data", few, "--calibration-samples", "4", "--batch", "dynamic",
                          "--json")  # fmt: skip
    assert rc == 0, err
    r = json.loads(stdout)
    table = r["candidates"]
    assert [c["target"] for c in table] == list(CANDIDATES)
    assert all(c["ms"] > 0 and c["bytes"] > 0 and 0 <= c["agreement"] <= 1 for c in table)
    # measured as exported: a dynamic batch axis, timed at batch 1 and at predict's batch
    assert all(c["batch"] == PREDICT_BATCH and c["ms_per_window_batch"] > 0 for c in table)
    assert LiteRTModel(out).dynamic_batch
    assert table[0]["agreement"] == 1.0  # float32 against itself
    assert r["target"] == choose(copy.deepcopy(table), 0.99)  # its own table's choice
    assert json.loads(read_metadata(out)["export"])["target"] == r["target"]
    assert r["bytes"] == out.stat().st_size


def test_auto_needs_data_and_a_tolerance_in_range(trained_run, capfd, tmp_path):
    rc, _, err = vdg(capfd, "export", trained_run.out, "--target", "auto", "--out",
                     tmp_path / "a.tflite")  # fmt: skip
    assert rc == 2 and "--target auto measures agreement on data" in err
    rc, _, err = vdg(capfd, "export", trained_run.out, "--target", "auto", "--out",
                     tmp_path / "a.tflite", "--data", "x.jsonl", "--tolerance", "1.5")  # fmt: skip
    assert rc == 2

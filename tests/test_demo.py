"""`vdg demo` (the README's first command) runs end to end at a small size through the CLI."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a whole pipeline (or vdg demo) per module


def test_demo_runs_the_builtin_pipeline_and_reports(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "vdg_tf.cli", "demo", "--out", str(tmp_path / "demo"),
         "--clips", "24", "--epochs", "1", "--json"],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout)
    assert list(report["stages"]) == [
        "keras_float",
        "pruned",
        "qat",
        "tflite_float32",
        "tflite_int8",
    ]
    assert report["clips"] == 24 and report["metric"] == "accuracy"
    assert json.loads((tmp_path / "demo" / "report.json").read_text())["stages"] == report["stages"]
    s = report["stages"]
    for name, entry in s.items():
        assert Path(entry["path"]).is_file(), name
    assert abs(s["pruned"]["sparsity"] - 0.5) <= 0.01
    assert s["qat"]["deployable"] is False  # a training checkpoint: no deployable size
    assert s["tflite_int8"]["int8_op_fraction"] >= 0.95
    assert s["tflite_int8"]["bytes"] < 0.5 * s["tflite_float32"]["bytes"]
    # the float32 export is the Keras model: same predictions on the evaluation split
    assert s["tflite_float32"]["top1_agreement"] == 1.0
    assert s["tflite_float32"]["score"] == s["keras_float"]["score"]
    from vdg_tf.pipeline import format_demo, run_demo

    # the API call with the same arguments resumes that run: the same report but its time
    api = run_demo(tmp_path / "demo", clips=24, epochs=1, progress=False)
    assert {k: v for k, v in api.to_dict().items() if k != "seconds"} == {
        k: v for k, v in report.items() if k != "seconds"
    }

    text = format_demo(report)  # what a person sees without --json
    assert text.startswith("vdg demo: 24 sample clips") and "tflite_int8 is" in text
    qat = next(line for line in text.splitlines() if line.strip().startswith("qat "))
    assert "training checkpoint" in qat and f"{s['qat']['bytes']:,}" not in qat

"""`vdg_tf.bench.decode_cost`: where a clip's CPU goes, run as the documented script."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_decode_cost_tool_reports_the_cpu_split(sample_data):
    """tools/decode_cost.py backs the CPU table in BENCHMARKS.md: it must run and add up."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "decode_cost.py"), str(sample_data["manifest_train"]),
         "--clips", "8", "--repeats", "1", "--batches", "3", "--json"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    r = json.loads(out.stdout)
    assert r["bare_decode_ms"] > 0 and r["decode_clip_ms"] > 0
    assert 0 < r["frames_decoded"] <= r["frames_decoded_no_skip"]
    s = r["streaming"]
    assert s["worker_ms_per_clip"] > 0 and s["training_process_ms_per_clip"] > 0
    assert 0 < s["machine_busy"] <= 1


def test_decode_cost_runs_as_a_module():
    """`python -m vdg_tf.bench.decode_cost` is the same command (its help needs no data)."""
    out = subprocess.run(
        [sys.executable, "-m", "vdg_tf.bench.decode_cost", "--help"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Where a clip's CPU goes" in out.stdout

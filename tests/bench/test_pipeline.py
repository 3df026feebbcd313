"""`vdg benchmark pipeline` (`vdg_tf.bench.pipeline`): every documented figure, from one run."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

VDG = [sys.executable, "-m", "vdg_tf.cli"]


def run(*args):
    return subprocess.run([*VDG, *args], capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_benchmark_pipeline_reports_every_figure(sample_data, tmp_path):
    root = Path(sample_data["manifest_eval"]).parent
    rows = [
        json.loads(line) for line in Path(sample_data["manifest_eval"]).read_text().splitlines()
    ]
    rows = [{**r, "video": str(root / r["video"])} for r in rows[:5]]
    manifest = tmp_path / "m.jsonl"  # 5 clips and one missing file: every pass skips it
    manifest.write_text(
        "".join(json.dumps(r) + "\n" for r in [*rows, {**rows[0], "video": "gone.mp4"}])
    )
    out = run(
        "benchmark",
        "pipeline",
        "--data",
        str(manifest),
        "--clips",
        "6",
        "--wait-steps",
        "2",
        "--repeats",
        "1",
        "--json",
    )
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    for key in ("pipeline_clips_per_s", "sequential_clips_per_s", "decode_only_frames_per_s", "pipeline_frames_per_s",
                "threads_clips_per_s", "processes_clips_per_s", "pipeline_vs_sequential"):  # fmt: skip
        assert r[key] > 0, key
    assert r["pipeline_clips_per_s"] == max(r["threads_clips_per_s"], r["processes_clips_per_s"])
    assert r["clips"] == 6 and r["skipped"] == 1
    ms = r["machine_ms_per_clip"]  # wall time x cores a clip, of the limit and the pipeline
    assert ms["decode_only"] == pytest.approx(1000 * r["cores"] / r["decode_only_clips_per_s"])
    assert ms["overhead"] == pytest.approx(ms["pipeline"] - ms["decode_only"])
    wait = r["input_wait_fraction"]
    for name in ("streaming_threads", "streaming_processes", "cached"):
        assert 0.0 <= wait[name] < 1.0 and wait[f"{name}_step_ms"] > 0
        assert 0.0 <= wait[f"{name}_slowdown"] < 1.0

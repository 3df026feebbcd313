"""The decode-only limit: the frames `decode_clip` decodes, in worker processes without TensorFlow."""

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from vdg_tf.bench.decode_limit import DecodeOnlyJob, decode_only
from vdg_tf.config import DataConfig, VideoSpec
from vdg_tf.manifest import read_manifest
from vdg_tf.media.workers import DecodePool

ROOT = Path(__file__).resolve().parents[2]
CFG = DataConfig(video=VideoSpec(frames=4, size=32))


@pytest.fixture
def rows(sample_data):
    return read_manifest(sample_data["manifest_eval"])[0][:3]


def test_decode_only_counts_frames_and_zero_for_a_bad_file(rows, tmp_path):
    assert all(decode_only(r, CFG, 1) > 0 for r in rows)
    # one thread skips the frames no target needs; FFmpeg's threads decode them all
    assert all(decode_only(r, CFG, 1) <= decode_only(r, CFG, 0) for r in rows)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"garbage" * 50)
    bad = dataclasses.replace(rows[0], video=str(junk))
    assert decode_only(bad, CFG, 1) == 0


def test_decode_only_jobs_run_in_the_decode_workers(rows):
    pool = DecodePool(1)
    try:
        counts = pool.decode_many([DecodeOnlyJob(r, CFG) for r in rows])
    finally:
        pool.close()
    assert counts == [decode_only(r, CFG, 1) for r in rows]


def test_the_workers_import_it_without_tensorflow():
    code = (
        "import sys, vdg_tf.bench.decode_limit\n"
        "assert not [m for m in sys.modules if m.startswith(('tensorflow', 'tf_keras', 'keras'))]"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]

"""Decode workers are isolated, die with their parent, log their stderr, and never leave a
caller waiting: a replacement that cannot start fails the jobs waiting for it."""

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from vdg_tf.config import AudioSpec, VideoSpec
from vdg_tf.manifest import read_manifest
from vdg_tf.media.decode import Clip, DecodeError
from vdg_tf.media.workers import DecodeJob, DecodePool, decode_log, set_decode_log

VS, AS = VideoSpec(frames=4, size=32), AudioSpec(seconds=1.0)
ROOT = Path(__file__).resolve().parents[2]


class NoisyCrashJob(DecodeJob):
    """Prints on stdout and stderr, then dies as a crash inside FFmpeg would."""

    def run(self):
        print("stray print from a library")
        sys.stderr.write("fatal: decoder state corrupt\n")
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(7)


class HangJob(DecodeJob):
    """Never finishes (a decoder stuck on a file)."""

    def run(self):
        time.sleep(3600)


class StuckInCJob(DecodeJob):
    """Never finishes, stuck in C with the GIL held (no Python thread of the worker runs)."""

    def run(self):
        import ctypes

        ctypes.PyDLL(None).sleep(3600)  # PyDLL keeps the GIL during the call


@pytest.fixture
def clip_path(sample_data):
    rows, _ = read_manifest(sample_data["manifest_eval"])
    return rows[0].video


def _dead(pid: int) -> bool:
    """Gone, or a zombie waiting for a reaper that is not this test."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError):
        return True


def test_planted_modules_in_the_working_folder_never_run(clip_path, tmp_path, monkeypatch):
    """`numpy.py`, `av.py` and `sitecustomize.py` where the user runs vdg: none imports in a
    worker, and PYTHONPATH pointing at that folder is ignored (`-I`, explicit path)."""
    markers = []
    for name in ("numpy", "av", "sitecustomize"):
        marker = tmp_path / f"{name}_ran"
        (tmp_path / f"{name}.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
        markers.append(marker)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    pool = DecodePool(1)
    try:
        assert isinstance(pool.decode(DecodeJob(clip_path, VS, AS)), Clip)
    finally:
        pool.close()
    assert not [m.name for m in markers if m.exists()]


def test_a_crash_names_the_log_that_holds_the_workers_stderr(clip_path, tmp_path):
    log = tmp_path / "run" / "decode.log"
    set_decode_log(log)
    pool = DecodePool(1)
    try:
        with pytest.raises(DecodeError, match="crashed") as e:
            pool.decode(NoisyCrashJob(clip_path, VS, AS))
        assert isinstance(pool.decode(DecodeJob(clip_path, VS, AS)), Clip)  # replaced
    finally:
        pool.close()
        set_decode_log(None)
    assert "exit status 7" in str(e.value) and str(log) in str(e.value)
    text = log.read_text()
    assert "fatal: decoder state corrupt" in text and "stray print from a library" in text
    assert decode_log() != log  # back to this process's temp log


def test_a_replacement_that_cannot_start_fails_the_waiting_jobs(clip_path, tmp_path):
    """The worker crashes with jobs queued behind it and no new process can start: every
    future resolves with the reason instead of hanging; the pool recovers once it can."""
    pool = DecodePool(1)
    try:
        assert isinstance(pool.decode(DecodeJob(clip_path, VS, AS)), Clip)
        pool.python = str(tmp_path / "no-such-python")  # every start from now on fails
        crash = pool.submit(NoisyCrashJob(clip_path, VS, AS))
        queued = [pool.submit(DecodeJob(clip_path, VS, AS, seed=(0, i))) for i in range(3)]
        with pytest.raises(DecodeError, match="crashed"):
            crash.result(timeout=120)
        for future in queued:
            with pytest.raises(DecodeError, match="cannot start a decode worker process"):
                future.result(timeout=120)
        with pytest.raises(DecodeError, match="cannot start a decode worker process"):
            pool.decode(DecodeJob(clip_path, VS, AS))
        pool.python = sys.executable
        assert isinstance(pool.decode(DecodeJob(clip_path, VS, AS)), Clip)
    finally:
        pool.close()


def test_a_clip_over_its_timeout_is_skipped_not_waited_for(clip_path):
    pool = DecodePool(1)
    try:
        out = pool.decode_many([HangJob(clip_path, VS, AS), DecodeJob(clip_path, VS, AS)], 2.0)
    finally:
        pool.close()
    assert isinstance(out[0], DecodeError) and "took over 2 s" in str(out[0])
    assert isinstance(out[1], Clip)


@pytest.mark.parametrize("job", ["HangJob", "StuckInCJob"])
def test_workers_exit_when_their_parent_is_killed(job, clip_path, tmp_path):
    """A parent killed while its workers are busy (one on a clip that never ends, in
    Python or in C with the GIL held; one idle) leaves no worker behind. A replacement
    started from a short-lived thread is not killed early."""
    script = textwrap.dedent(f"""
        import sys, threading
        sys.path.insert(0, {str(ROOT)!r})
        from tests.media.test_worker_safety import {job} as Job, VS, AS
        from vdg_tf.media.workers import DecodePool
        pool = DecodePool(2)
        starter = threading.Thread(target=lambda: pool.submit(Job({clip_path!r}, VS, AS)))
        starter.start()
        starter.join()  # the thread that asked for the workers is gone
        import time; time.sleep(1)
        print(*pool.pids(), flush=True)
        sys.stdin.read()  # until the test kills this process
    """)
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        cwd=tmp_path, text=True,
    )  # fmt: skip
    try:
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert len(pids) == 2 and not any(_dead(p) for p in pids)
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 60  # a bound for a broken build, not a timing check
    while time.monotonic() < deadline and not all(_dead(p) for p in pids):
        time.sleep(0.1)
    assert all(_dead(p) for p in pids), "a decode worker outlived its parent"

"""Decode worker processes: same clips as in-process decoding; crashes and hangs cost one clip."""

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from vdg_tf.config import AudioSpec, VideoSpec
from vdg_tf.manifest import read_manifest
from vdg_tf.media.decode import Clip, DecodeError
from vdg_tf.media.workers import DecodeJob, DecodePool, run_or_error

VS, AS = VideoSpec(frames=4, size=32), AudioSpec(seconds=1.0)


class CrashJob(DecodeJob):
    """A job whose worker process dies mid-decode (what a segfault in FFmpeg looks like)."""

    def run(self):
        os._exit(3)


class BrokenJob(DecodeJob):
    """A job whose decoder fails with something other than a DecodeError."""

    def run(self):
        raise RuntimeError("boom")


@pytest.fixture
def pool():
    p = DecodePool(2)
    yield p
    p.close()


@pytest.fixture
def one_worker():
    """A pool of one process: every job queues behind the one before it."""
    p = DecodePool(1)
    yield p
    p.close()


@pytest.fixture
def clip_path(sample_data):
    rows, _ = read_manifest(sample_data["manifest_eval"])
    return rows[0].video


def test_workers_decode_what_the_process_decodes(pool, clip_path):
    job = DecodeJob(clip_path, VS, AS, seed=(0, 1, 2))
    here, there = job.run(), pool.decode(job)
    np.testing.assert_array_equal(here.frames, there.frames)
    np.testing.assert_array_equal(here.audio, there.audio)
    assert there.has_audio and len(pool.pids()) == 2


def test_bad_file_error_names_the_file(pool, tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"garbage" * 50)
    with pytest.raises(DecodeError, match="junk.mp4: cannot decode") as e:
        pool.decode(DecodeJob(str(junk), VS, AS))
    assert e.value.path == str(junk) and e.value.problem.startswith("cannot decode")


def test_run_or_error_answers_a_clip_or_an_error_naming_the_file(clip_path, tmp_path):
    """The in-process decoder (`data.decoder: threads`) answers as a worker does."""
    assert isinstance(run_or_error(DecodeJob(clip_path, VS, AS)), Clip)
    gone = str(tmp_path / "gone.mp4")
    err = run_or_error(DecodeJob(gone, VS, AS))
    assert isinstance(err, DecodeError) and err.path == gone
    assert str(err) == f"{gone}: file not found"
    err = run_or_error(BrokenJob(clip_path, VS, AS))
    assert isinstance(err, DecodeError) and str(err) == (
        f"{clip_path}: cannot decode: RuntimeError: boom"
    )


def test_a_group_answers_a_clip_or_an_error_for_each_job(pool, clip_path, tmp_path):
    gone = str(tmp_path / "gone.mp4")
    jobs = [DecodeJob(clip_path, VS, AS), DecodeJob(gone, VS, AS), BrokenJob(clip_path, VS, AS)]
    clip, missing, broken = pool.decode_many(jobs)
    assert isinstance(clip, Clip) and clip.frames.shape == (4, 32, 32, 3)
    assert isinstance(missing, DecodeError) and missing.path == gone
    assert isinstance(broken, DecodeError) and "RuntimeError: boom" in str(broken)


def test_workers_do_not_import_modules_from_the_working_folder(clip_path, tmp_path, monkeypatch):
    """Workers start as `python -P`: a `numpy.py` in the folder the user runs a script
    from (the workers' working folder) must not shadow the real numpy in them."""
    marker = tmp_path / "stray_numpy_imported"
    (tmp_path / "numpy.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.chdir(tmp_path)
    pool = DecodePool(2)
    try:
        clips = pool.decode_many([DecodeJob(clip_path, VS, AS, seed=(0, i)) for i in range(4)])
        assert len(pool.pids()) == 2  # both started, in the folder with the numpy.py
    finally:
        pool.close()
    assert not marker.exists(), "a decode worker imported numpy.py from its working folder"
    assert all(isinstance(c, Clip) and c.has_audio for c in clips), clips


def test_a_crash_costs_one_clip_and_the_worker_is_replaced(pool, clip_path):
    pool.decode(DecodeJob(clip_path, VS, AS))
    before = set(pool.pids())
    with pytest.raises(DecodeError, match="decoder process crashed"):
        pool.decode(CrashJob(clip_path, VS, AS))
    assert pool.decode(DecodeJob(clip_path, VS, AS)).frames.shape == (4, 32, 32, 3)
    assert len(pool.pids()) == 2 and set(pool.pids()) != before


def test_a_worker_killed_while_idle_is_replaced_before_use(pool, clip_path):
    pool.decode(DecodeJob(clip_path, VS, AS))
    for pid in pool.pids():
        os.kill(pid, signal.SIGKILL)
    # dead once it can be reaped (WNOWAIT leaves the reaping to the pool); a "Z" in /proc
    # came too early: the main thread is a zombie while the others still hold the pipes
    for pid in pool.pids():
        while os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
            time.sleep(0.01)
    for _ in range(3):
        assert pool.decode(DecodeJob(clip_path, VS, AS)).has_audio


def test_a_hung_decode_times_out_and_the_worker_is_replaced(pool, clip_path):
    pool.decode(DecodeJob(clip_path, VS, AS))
    before = set(pool.pids())
    with pytest.raises(DecodeError, match="took over"):
        pool.decode(DecodeJob(clip_path, VS, AS), timeout=1e-4)  # far below one decode
    assert pool.decode(DecodeJob(clip_path, VS, AS)).has_audio
    assert set(pool.pids()) != before


def test_jobs_queued_behind_a_crash_go_to_a_new_worker(one_worker, clip_path):
    """Jobs wait in a worker's pipe; a crash fails only the job that caused it."""
    jobs = [DecodeJob(clip_path, VS, AS), CrashJob(clip_path, VS, AS)]
    jobs += [DecodeJob(clip_path, VS, AS, seed=(0, i)) for i in range(3)]
    futures = [one_worker.submit(job) for job in jobs]  # all queued before the first is done
    assert futures[0].result().has_audio
    with pytest.raises(DecodeError, match="decoder process crashed"):
        futures[1].result()
    for f in futures[2:]:
        assert f.result().frames.shape == (4, 32, 32, 3)
    assert len(one_worker.pids()) == 1


def test_jobs_queued_behind_a_hang_go_to_a_new_worker(one_worker, clip_path):
    one_worker.decode(DecodeJob(clip_path, VS, AS))
    hung = one_worker.submit(DecodeJob(clip_path, VS, AS), timeout=1e-4)
    behind = [one_worker.submit(DecodeJob(clip_path, VS, AS)) for _ in range(2)]
    with pytest.raises(DecodeError, match="took over"):
        hung.result()
    assert all(f.result().has_audio for f in behind)


def test_a_worker_killed_with_jobs_queued_loses_at_most_the_one_it_was_on(one_worker, clip_path):
    """Killed from outside mid-queue: no job hangs; only the clip in progress may fail."""
    one_worker.decode(DecodeJob(clip_path, VS, AS))
    futures = [one_worker.submit(DecodeJob(clip_path, VS, AS, seed=(1, i))) for i in range(4)]
    os.kill(one_worker.pids()[0], signal.SIGKILL)
    failed = 0
    for f in futures:
        try:
            assert f.result(timeout=60).frames.shape == (4, 32, 32, 3)
        except DecodeError as e:
            assert "decoder process crashed" in str(e)
            failed += 1
    assert failed <= 1 and one_worker.decode(DecodeJob(clip_path, VS, AS)).has_audio


def test_a_group_decodes_in_order_and_names_each_bad_file(one_worker, clip_path, tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"garbage" * 50)
    jobs = [DecodeJob(clip_path, VS, AS, seed=(0, i)) for i in range(3)]
    jobs.insert(1, DecodeJob(str(junk), VS, AS))
    out = one_worker.decode_many(jobs)
    assert isinstance(out[1], DecodeError) and "junk.mp4: cannot decode" in str(out[1])
    for job, clip in zip(jobs[::2] + jobs[3:], out[::2] + out[3:], strict=True):
        np.testing.assert_array_equal(clip.frames, job.run().frames)


def test_a_group_that_crashes_its_worker_loses_only_the_clip_at_fault(pool, clip_path):
    jobs = [DecodeJob(clip_path, VS, AS, seed=(0, i)) for i in range(4)]
    jobs.insert(2, CrashJob(clip_path, VS, AS))
    out = pool.decode_many(jobs)
    assert isinstance(out[2], DecodeError) and "decoder process crashed" in str(out[2])
    assert all(c.frames.shape == (4, 32, 32, 3) for i, c in enumerate(out) if i != 2)
    assert len(pool.pids()) == 2


def test_close_ends_every_worker(clip_path):
    pool = DecodePool(2)
    pool.decode(DecodeJob(clip_path, VS, AS))
    procs = [Path(f"/proc/{pid}") for pid in pool.pids()]
    pool.close()
    assert pool.pids() == [] and not any(p.exists() for p in procs)

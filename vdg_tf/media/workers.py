"""Long-lived decode worker processes: PyAV decoding outside the training process's GIL.

PyAV releases the GIL inside FFmpeg, but its per-packet Python loop, frame objects and
numpy copies hold it, so decoding threads of one process serialise on that part
(`vdg benchmark pipeline` measures threads against processes). Each worker here is a
`python -P -m vdg_tf.media.workers` process that decodes one clip at a time, talking
length-prefixed pickles (`vdg_tf.media.wire`) over its stdin/stdout. Not
`multiprocessing`: its spawned children re-run the user's main script (a training script
without a `__main__` guard would run again in every worker, and one that imports
TensorFlow pays that import per worker); these import only PyAV, numpy and the decoder.
`-P` keeps the working folder off the worker's `sys.path`: a stray `numpy.py` or `av.py`
where the user runs a script would otherwise shadow the real package in every worker.

POSIX only (it waits on pipes with `select`); on Windows the pipeline decodes in threads.
One pool per process, shared by every dataset, started on first use and kept until exit,
so an epoch never pays start-up. Jobs queue on the workers' pipes, so a worker never
waits for the next one. A worker that dies (a crash inside FFmpeg) or hangs on a file is
replaced and that clip reported; the jobs queued behind it go to another worker.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import os
import select
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vdg_tf.config import AudioSpec, VideoSpec
from vdg_tf.media.decode import Clip, DecodeError, decode_clip
from vdg_tf.media.heap import keep_freed_memory
from vdg_tf.media.wire import recv, send, widen

DECODE_TIMEOUT_S = 300.0  # one clip: far above any sane clip, short of a stuck run


@dataclass(frozen=True)
class DecodeJob:
    """One clip to decode: what `decode_clip` takes, with the jitter seed instead of an rng."""

    path: str
    video: VideoSpec
    audio: AudioSpec
    start: float | None = None
    end: float | None = None
    audio_path: str | None = None
    seed: tuple[int, ...] | None = None

    def run(self) -> Clip:
        """Decode in this process, single-threaded: clips already decode in parallel."""
        rng = np.random.default_rng(list(self.seed)) if self.seed is not None else None
        return decode_clip(
            self.path, self.video, self.audio, self.start, self.end, self.audio_path, rng, 1
        )


@dataclass(frozen=True)
class DecodeGroup:
    """Clips decoded one after another by one worker, one message each way for the lot: a
    message per clip cost the training process's reader thread ~0.14 ms a clip."""

    jobs: tuple[DecodeJob, ...]

    @property
    def path(self) -> str:  # what a worker names when the group fails as a whole
        return ", ".join(job.path for job in self.jobs)

    def run(self) -> list[Clip | DecodeError]:
        """Each clip, or the DecodeError that names its file, in order."""
        return [run_or_error(job) for job in self.jobs]


def run_or_error(job: DecodeJob) -> Clip | DecodeError:
    """The Clip `job.run()` returns, or a DecodeError naming its file in its place: a
    decoder must answer whatever the file did (worker processes and the threads decoder
    alike). Any job with a `path` and a `run()` goes the same way (a `DecodeGroup`
    answers a list, errors inside it)."""
    try:
        return job.run()
    except DecodeError as e:
        return e
    except Exception as e:  # noqa: BLE001 - a worker must answer, whatever the file did
        return DecodeError(job.path, f"cannot decode: {type(e).__name__}: {e}")


class _Worker:
    """One decode process and the thread that reads its replies.

    Jobs are written to its stdin as they come (`submit`), so the process finds its next
    job waiting the moment it finishes one: it never idles while the training process,
    busy on the same cores, gets round to collecting a reply and handing out the next job
    (on 2 cores that gap left ~13% of the machine idle). The process answers in order,
    so the reader thread hands each reply to the oldest waiting job.
    """

    def __init__(self, on_lost) -> None:
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])  # importable without an install
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(
            [sys.executable, "-P", "-m", "vdg_tf.media.workers"],  # -P: not the cwd first
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            bufsize=0,
        )
        widen(self.proc.stdout.fileno())
        self._on_lost = on_lost  # (worker, unanswered jobs) -> None: replace it, resend them
        self.pending: collections.deque[_Job] = collections.deque()
        self._cond = threading.Condition()  # guards pending, stdin writes and `ended`
        self.ended = False  # dead, killed or closed: takes no more jobs
        self._head_since = 0.0  # when the oldest pending job reached the front
        threading.Thread(target=self._read_replies, daemon=True, name="vdg-decode-reader").start()

    @property
    def load(self) -> int:
        return len(self.pending)

    def submit(self, job: _Job) -> bool:
        """Queue `job` on this process; False if it is gone (the job can go elsewhere)."""
        with self._cond:
            if self.ended:
                return False
            try:
                send(self.proc.stdin.fileno(), job.job)
            except OSError:  # died while idle: not the job's fault
                self.ended = True
                return False
            if not self.pending:
                self._head_since = time.monotonic()
            self.pending.append(job)
            self._cond.notify()
        return True

    def _read_replies(self) -> None:
        """Reader thread: owns the stdout pipe (closes it when it ends), so no other thread
        can close the descriptor under a `select` or a read in progress."""
        try:
            self._reply_loop(self.proc.stdout.fileno())
        finally:
            with contextlib.suppress(OSError):
                self.proc.stdout.close()

    def _reply_loop(self, fd: int) -> None:
        while True:
            with self._cond:
                while not self.pending and not self.ended:
                    self._cond.wait()
                if not self.pending:
                    return
                head, since = self.pending[0], self._head_since
            left = since + head.timeout - time.monotonic()
            try:
                ready, _, _ = select.select([fd], [], [], max(left, 0.0))
                late = not ready or time.monotonic() > since + head.timeout  # even if here now
                if not late:
                    value = recv(fd)
            except (EOFError, OSError):
                self._lose(DecodeError(head.path, "the decoder process crashed on this file"))
                return
            if late:
                self._lose(DecodeError(head.path, f"decoding took over {head.timeout:.0f} s"))
                return
            with self._cond:
                if not self.pending or self.pending[0] is not head:
                    return  # closed meanwhile: its jobs were failed there
                self.pending.popleft()
                self._head_since = time.monotonic()
            if isinstance(value, DecodeError):
                head.future.set_exception(value)
            else:
                head.future.set_result(value)

    def _lose(self, error: DecodeError) -> None:
        """The process died or hung on the oldest job: that job fails with `error`, the
        ones queued behind it go to other workers (the pool replaces this one first)."""
        self.kill()
        with self._cond:
            if not self.pending:  # closed meanwhile: its jobs were failed there
                return
            head, *rest = self.pending
            self.pending.clear()
        self._on_lost(self, rest)
        head.future.set_exception(error)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.alive:  # first: a `submit` blocked on a full stdin pipe holds the lock
            self.proc.kill()
        with self._cond:
            self.ended = True
            self._cond.notify()
        self.proc.wait()
        with contextlib.suppress(OSError):  # stdout is the reader thread's to close
            self.proc.stdin.close()

    def close(self) -> None:
        """Ask the worker to exit (end of its input), then make sure it did; jobs still
        queued fail (the pool is shutting down)."""
        with self._cond:
            self.ended = True
            left = list(self.pending)
            self.pending.clear()
            self._cond.notify()
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()
        for job in left:
            job.future.set_exception(DecodeError(job.path, "the decode pool was closed"))


@dataclass
class _Job:
    """A job on its way through a worker: what to run, how long it may take, who waits."""

    job: DecodeJob
    timeout: float
    future: Future = field(default_factory=Future)

    @property
    def path(self) -> str:
        return self.job.path


class DecodePool:
    """`workers` decode processes; jobs queue on the least loaded one.

    `decode` blocks the calling thread (not the GIL) until its clip is back; `submit`
    returns at once with a Future, for callers that keep several clips in flight.
    """

    def __init__(self, workers: int):
        self.workers = workers
        self._all: list[_Worker] = []
        self._lock = threading.Lock()

    def submit(self, job: DecodeJob, timeout: float = DECODE_TIMEOUT_S) -> Future:
        """Queue `job`; its Future gives the Clip or raises DecodeError naming the file."""
        item = _Job(job, timeout)
        self._dispatch(item)
        return item.future

    def decode(self, job: DecodeJob, timeout: float = DECODE_TIMEOUT_S) -> Clip:
        """Decode `job` in a worker; DecodeError names the file on any failure."""
        return self.submit(job, timeout).result()

    def decode_many(
        self, jobs: list[DecodeJob], timeout: float = DECODE_TIMEOUT_S
    ) -> list[Clip | DecodeError]:
        """Run `jobs` in one worker, one message each way: what each returns (a Clip for a
        DecodeJob), or a DecodeError naming the file in place of each that failed.

        A group that crashes or hangs its worker is decoded again a clip a job, so only the
        clip at fault is lost. `timeout` bounds the whole group, then each clip of the
        retry: a group merely slower than that costs its time twice, never its clips."""
        try:
            return self.submit(DecodeGroup(tuple(jobs)), timeout).result()
        except DecodeError:
            return [_outcome(future) for future in [self.submit(j, timeout) for j in jobs]]

    def _dispatch(self, item: _Job) -> None:
        for _ in range(self.workers + 2):  # a worker found dead is replaced, the next tried
            with self._lock:
                while len(self._all) < self.workers:
                    self._all.append(_Worker(self._lost))
                worker = min(self._all, key=lambda w: w.load)
            # one that died while idle is replaced before it gets the job; a failed write
            # (it died since) is caught by `submit`
            if worker.alive and worker.submit(item):
                return
            self._lost(worker, [])
        item.future.set_exception(DecodeError(item.path, "no decoder process would start"))

    def _lost(self, worker: _Worker, unanswered: list[_Job]) -> None:
        """Replace a dead, hung or idle-killed worker; resend the jobs it never answered."""
        worker.kill()
        with self._lock:
            if worker in self._all:
                self._all[self._all.index(worker)] = _Worker(self._lost)
        for item in unanswered:
            self._dispatch(item)

    def pids(self) -> list[int]:
        """Process ids of the workers (started on first use)."""
        with self._lock:
            return [w.proc.pid for w in self._all]

    def close(self) -> None:
        """Stop every worker; a later `decode` starts new ones."""
        with self._lock:
            workers, self._all = self._all, []
        for worker in workers:
            worker.close()


def _outcome(future: Future) -> Clip | DecodeError:
    """What a job's future holds: its result, or the DecodeError it failed with."""
    try:
        return future.result()
    except DecodeError as e:
        return e


_SHARED: dict[int, DecodePool] = {}
_SHARED_LOCK = threading.Lock()


def shared_pool(workers: int = 0) -> DecodePool:
    """The process-wide pool of `workers` decoders (0: one per core), closed at exit."""
    workers = workers or os.cpu_count() or 1
    with _SHARED_LOCK:
        if workers not in _SHARED:
            _SHARED[workers] = DecodePool(workers)
        return _SHARED[workers]


@atexit.register
def _close_shared() -> None:
    for pool in list(_SHARED.values()):
        pool.close()


def serve() -> None:
    """Worker main loop: a job in on stdin, its `run_or_error` out (a Clip, a DecodeError,
    or for a group the list of them)."""
    keep_freed_memory()
    proto_in, proto_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):  # stray prints or FFmpeg logs must not corrupt the protocol
        os.dup2(devnull, fd)
    while True:
        try:
            job = recv(proto_in)
        except EOFError:
            return
        send(proto_out, run_or_error(job))


if __name__ == "__main__":
    serve()

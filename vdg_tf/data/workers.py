"""Long-lived decode worker processes: PyAV decoding outside the training process's GIL.

PyAV releases the GIL inside FFmpeg, but its per-packet Python loop, frame objects and
numpy copies hold it, so decoding threads of one process serialise on that part
(`vdg benchmark pipeline` measures threads against processes). Each worker here is a
`python -m vdg_tf.data.workers` process that decodes one clip at a time, talking
length-prefixed pickles over its stdin/stdout. Not `multiprocessing`: its spawned
children re-run the user's main script (a training script without a `__main__` guard
would run again in every worker, and one that imports TensorFlow pays that import per
worker); these import only PyAV, numpy and the decoder.

POSIX only (it waits on pipes with `select`); on Windows the pipeline decodes in threads.
One pool per process, shared by every dataset, started on first use and kept until exit,
so an epoch never pays start-up. A worker that dies (a crash inside FFmpeg) or hangs on
a file is replaced and that clip reported; the epoch goes on.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pickle
import queue
import select
import struct
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vdg_tf.config import AudioSpec, VideoSpec
from vdg_tf.data.decode import Clip, DecodeError, decode_clip

DECODE_TIMEOUT_S = 300.0  # one clip: far above any sane clip, short of a stuck run
_HEADER = struct.Struct("<Q")
PIPE_BYTES = 1 << 20


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


def _send(fd: int, obj: object) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


def _recv_exact(fd: int, n: int) -> bytearray:
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        chunk = os.readv(fd, [view[got:]])
        if chunk == 0:
            raise EOFError("worker pipe closed")
        got += chunk
    return buf


def _widen(fd: int) -> None:
    """Pipe buffer large enough for a whole clip: one write and one read per clip instead
    of 64 KiB turns with a context switch each (Linux; elsewhere the default stays)."""
    with contextlib.suppress(ImportError, AttributeError, OSError):
        import fcntl

        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)


def _recv(fd: int) -> object:
    (size,) = _HEADER.unpack(_recv_exact(fd, _HEADER.size))
    return pickle.loads(_recv_exact(fd, size))


class _WorkerGone(Exception):
    """The worker was dead before it got the job; the job can go to another."""


class _Worker:
    """One decode process; used by one thread at a time."""

    def __init__(self) -> None:
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])  # importable without an install
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vdg_tf.data.workers"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            bufsize=0,
        )
        _widen(self.proc.stdout.fileno())

    def decode(self, job: DecodeJob, timeout: float) -> Clip:
        """The clip, or DecodeError: the file's own error, a crash, or no answer in `timeout`."""
        try:
            _send(self.proc.stdin.fileno(), job)
        except OSError:  # it died before this job reached it: not the file's fault
            self.kill()
            raise _WorkerGone from None
        try:
            ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
            if not ready:
                self.kill()
                raise DecodeError(f"{job.path}: decoding took over {timeout:.0f} s")
            status, value = _recv(self.proc.stdout.fileno())
        except (EOFError, OSError):
            self.kill()
            raise DecodeError(f"{job.path}: the decoder process crashed on this file") from None
        if status != "ok":
            raise DecodeError(value)
        return value

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.alive:
            self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                pipe.close()

    def close(self) -> None:
        """Ask the worker to exit (end of its input), then make sure it did."""
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()


class DecodePool:
    """`workers` decode processes; `decode` blocks the calling thread (not the GIL) on one."""

    def __init__(self, workers: int):
        self.workers = workers
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self._all: list[_Worker] = []
        self._lock = threading.Lock()

    def _start(self) -> None:
        with self._lock:
            while len(self._all) < self.workers:
                worker = _Worker()
                self._all.append(worker)
                self._idle.put(worker)

    def decode(self, job: DecodeJob, timeout: float = DECODE_TIMEOUT_S) -> Clip:
        """Decode `job` in a free worker; DecodeError names the file on any failure."""
        if len(self._all) < self.workers:
            self._start()
        worker = self._replace_if_dead(self._idle.get())
        try:
            try:
                return worker.decode(job, timeout)
            except _WorkerGone:
                worker = self._replace_if_dead(worker)
                return worker.decode(job, timeout)
        finally:
            self._idle.put(self._replace_if_dead(worker))

    def _replace_if_dead(self, worker: _Worker) -> _Worker:
        """A worker that crashed, was killed after a hang, or died while idle -> a new one."""
        if worker.alive:
            return worker
        worker.kill()
        with self._lock:
            if worker in self._all:
                self._all.remove(worker)
            fresh = _Worker()
            self._all.append(fresh)
        return fresh

    def pids(self) -> list[int]:
        """Process ids of the workers (started on first use)."""
        with self._lock:
            return [w.proc.pid for w in self._all]

    def close(self) -> None:
        """Stop every worker; a later `decode` starts new ones."""
        with self._lock:
            workers, self._all = self._all, []
            self._idle = queue.SimpleQueue()
        for worker in workers:
            worker.close()


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
    """Worker main loop: a job in on stdin, `("ok", clip)` or `("error", message)` out."""
    proto_in, proto_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):  # stray prints or FFmpeg logs must not corrupt the protocol
        os.dup2(devnull, fd)
    while True:
        try:
            job = _recv(proto_in)
        except EOFError:
            return
        try:
            reply = ("ok", job.run())
        except DecodeError as e:
            reply = ("error", str(e))
        except Exception as e:  # noqa: BLE001 - a worker must answer, whatever the file did
            reply = ("error", f"{job.path}: cannot decode: {type(e).__name__}: {e}")
        _send(proto_out, reply)


if __name__ == "__main__":
    serve()

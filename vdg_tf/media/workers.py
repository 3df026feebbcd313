"""Long-lived decode worker processes: PyAV decoding outside the training process's GIL.

PyAV releases the GIL inside FFmpeg, but its per-packet Python loop, frame objects and
numpy copies hold it, so decoding threads of one process serialise on that part
(`vdg benchmark pipeline` measures threads against processes). Each worker here is a
`python -I` process that decodes one clip at a time, talking length-prefixed pickles
(`vdg_tf.media.wire`) over its stdin/stdout. Not `multiprocessing`: its spawned children
re-run the user's main script (a training script without a `__main__` guard would run
again in every worker, and one that imports TensorFlow pays that import per worker);
these import only PyAV, numpy and the decoder.

Isolation: `-I` ignores `PYTHON*` variables and keeps the working folder off `sys.path`,
and the worker's import path is given explicitly (vdg_tf's own root, then the parent's
path without the working folder): a stray `numpy.py` or `av.py` where the user runs a
script never shadows the real package in a worker. A worker dies with its parent twice
over: on Linux it asks the kernel for SIGKILL when its parent goes (`PR_SET_PDEATHSIG`,
which also ends a worker stuck in C with the GIL held or stopped); that signal fires when
the *thread* that started the child ends, so every worker is started by one long-lived
spawner thread. A watchdog thread (every POSIX system) exits when the parent is gone. Its stderr, and anything a library prints, goes to a log file (`set_decode_log`:
the run folder's `decode.log` during training, else a temp file); a crash names that file.

POSIX only (it waits on pipes with `select`); on Windows the pipeline decodes in threads.
One pool per process, shared by every dataset, started on first use and kept until exit,
so an epoch never pays start-up. Jobs queue on the workers' pipes, so a worker never
waits for the next one. A worker that dies (a crash inside FFmpeg) or hangs on a file is
replaced and that clip reported; the jobs queued behind it go to another worker. Every
wait is bounded: a clip may take `timeout` (`data.decode_timeout`) from when its worker
starts on it, and a caller waits no longer than the jobs ahead of its own may take; a
replacement that cannot start fails the jobs waiting for it with the reason.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import ctypes
import os
import queue
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import Future, InvalidStateError
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vdg_tf.config import AudioSpec, VideoSpec
from vdg_tf.media.decode import MAX_BAD_FRACTION, Clip, DecodeError, decode_clip
from vdg_tf.media.heap import keep_freed_memory
from vdg_tf.media.wire import recv, send, widen

DECODE_TIMEOUT_S = 300.0  # one clip: far above any sane clip, short of a stuck run
WAIT_SLACK_S = 30.0  # a caller's wait beyond its jobs' own timeouts (start-up, messages)
PARENT_CHECK_S = 1.0  # how often a worker looks for its parent
# a worker's first lines: its import path as given, then the loop (`-I` ignores PYTHONPATH)
_BOOT = (
    "import sys; sys.path[:] = sys.argv[1].split(sys.argv[2]); "
    "from vdg_tf.media.workers import serve; serve(int(sys.argv[3]))"
)


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
    max_bad_fraction: float = MAX_BAD_FRACTION

    def run(self) -> Clip:
        """Decode in this process, single-threaded: clips already decode in parallel."""
        rng = np.random.default_rng(list(self.seed)) if self.seed is not None else None
        return decode_clip(
            self.path, self.video, self.audio, self.start, self.end, self.audio_path, rng, 1,
            max_bad_fraction=self.max_bad_fraction,
        )  # fmt: skip


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

    def __init__(self, on_lost, python: str = sys.executable) -> None:
        """Start the process (OSError when it cannot start: the caller reports it)."""
        self.log_path = decode_log()
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            self.proc = _spawner().popen(
                [python, "-I", "-c", _BOOT, os.pathsep.join(worker_path()), os.pathsep,
                 str(os.getpid())],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                bufsize=0,
            )  # fmt: skip
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
            now = time.monotonic()
            if not self.pending:
                self._head_since = now
            # the jobs ahead may each take their timeout, then this one its own
            job.deadline = now + sum(j.timeout for j in self.pending) + job.timeout
            job.worker = self
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
                self._lose(head.path, None)
                return
            if late:
                self._lose(head.path, f"decoding took over {head.timeout:g} s")
                return
            with self._cond:
                if not self.pending or self.pending[0] is not head:
                    return  # closed meanwhile: its jobs were failed there
                self.pending.popleft()
                self._head_since = time.monotonic()
            if isinstance(value, DecodeError):
                head.fail(value)
            else:
                head.settle(value)

    def _lose(self, path: str, problem: str | None) -> None:
        """The process died (`problem` None) or hung on the oldest job: that job fails, the
        ones queued behind it go to other workers (the pool replaces this one first). No
        job is left unanswered, even when the replacement cannot start."""
        self.kill()
        if problem is None:
            code = self.proc.returncode
            how = f"killed by signal {-code}" if code and code < 0 else f"exit status {code}"
            problem = (
                f"the decoder process crashed on this file ({how}; its stderr is in "
                f"{self.log_path})"
            )
        with self._cond:
            if not self.pending:  # closed meanwhile: its jobs were failed there
                return
            head, *rest = self.pending
            self.pending.clear()
        head.fail(DecodeError(path, problem))
        try:
            self._on_lost(self, rest)
        except Exception as e:  # noqa: BLE001 - this thread is the only one that answers them
            for job in rest:
                job.fail(DecodeError(job.path, f"decode worker lost and not replaced: {e}"))

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
            job.fail(DecodeError(job.path, "the decode pool was closed"))


@dataclass
class _Job:
    """A job on its way through a worker: what to run, how long it may take, who waits.

    `deadline` (set when a worker queues it, again if it moves to another) is when its
    answer is overdue even counting the jobs ahead of it: the caller's bound on waiting.
    """

    job: DecodeJob
    timeout: float
    future: Future = field(default_factory=Future)
    deadline: float = float("inf")
    worker: _Worker | None = None

    @property
    def path(self) -> str:
        return self.job.path

    def settle(self, value) -> None:
        """Answer the job (once: a later answer, say a reply racing a timeout, is dropped)."""
        with contextlib.suppress(InvalidStateError):
            self.future.set_result(value)

    def fail(self, error: DecodeError) -> None:
        with contextlib.suppress(InvalidStateError):
            self.future.set_exception(error)

    def wait(self):
        """The job's answer; raises its DecodeError, or one saying it never came."""
        while True:
            left = self.deadline + WAIT_SLACK_S - time.monotonic()
            try:  # an infinite deadline: not queued yet (its dispatch answers it either way)
                return self.future.result(timeout=max(left, 0.0) if left < 1e9 else None)
            except FutureTimeout:
                if time.monotonic() < self.deadline + WAIT_SLACK_S:
                    continue  # it moved to another worker meanwhile: a new deadline
            worker = self.worker
            self.fail(DecodeError(self.path, "no answer from the decode worker in time"))
            if worker is not None:
                worker.kill()  # replaced on the next dispatch


class DecodePool:
    """`workers` decode processes; jobs queue on the least loaded one.

    `decode` blocks the calling thread (not the GIL) until its clip is back; `submit`
    returns at once with a Future, for callers that keep several clips in flight.
    """

    def __init__(self, workers: int, python: str = sys.executable):
        self.workers = workers
        self.python = python  # the interpreter workers start with
        self._all: list[_Worker] = []
        self._lock = threading.Lock()

    def submit(self, job: DecodeJob, timeout: float = DECODE_TIMEOUT_S) -> Future:
        """Queue `job`; its Future gives the Clip or raises DecodeError naming the file.

        `timeout`: seconds the clip may take once its worker starts on it."""
        return self._submit(job, timeout).future

    def _submit(self, job: DecodeJob, timeout: float) -> _Job:
        item = _Job(job, timeout)
        self._dispatch(item)
        return item

    def decode(self, job: DecodeJob, timeout: float = DECODE_TIMEOUT_S) -> Clip:
        """Decode `job` in a worker; DecodeError names the file on any failure."""
        return self._submit(job, timeout).wait()

    def decode_many(
        self, jobs: list[DecodeJob], timeout: float = DECODE_TIMEOUT_S
    ) -> list[Clip | DecodeError]:
        """Run `jobs` in one worker, one message each way: what each returns (a Clip for a
        DecodeJob), or a DecodeError naming the file in place of each that failed.

        A group that crashes or hangs its worker is decoded again a clip a job, so only the
        clip at fault is lost. `timeout` bounds the whole group, then each clip of the
        retry: a group merely slower than that costs its time twice, never its clips."""
        try:
            return self._submit(DecodeGroup(tuple(jobs)), timeout).wait()
        except DecodeError:
            return [_outcome(item) for item in [self._submit(j, timeout) for j in jobs]]

    def _dispatch(self, item: _Job) -> None:
        for _ in range(self.workers + 2):  # a worker found dead is replaced, the next tried
            with self._lock:
                try:
                    while len(self._all) < self.workers:
                        self._all.append(_Worker(self._lost, self.python))
                except OSError as e:
                    if not self._all:
                        item.fail(DecodeError(item.path, _cannot_start(e)))
                        return
                worker = min(self._all, key=lambda w: w.load)
            # one that died while idle is replaced before it gets the job; a failed write
            # (it died since) is caught by `submit`
            if worker.alive and worker.submit(item):
                return
            self._lost(worker, [])
        item.fail(DecodeError(item.path, "no decoder process would start"))

    def _lost(self, worker: _Worker, unanswered: list[_Job]) -> None:
        """Replace a dead, hung or idle-killed worker; resend the jobs it never answered.

        A replacement that cannot start leaves the pool a worker short (the next dispatch
        tries again) and fails the unanswered jobs with the reason."""
        worker.kill()
        try:
            new = _Worker(self._lost, self.python)
        except OSError as e:
            new, error = None, _cannot_start(e)
        with self._lock:
            if worker in self._all:
                if new is not None:
                    self._all[self._all.index(worker)] = new
                else:
                    self._all.remove(worker)
            elif new is not None:
                new.close()  # closed meanwhile: no one needs it
                new = None
                error = "the decode pool was closed"
        if new is None:
            for item in unanswered:
                item.fail(DecodeError(item.path, error))
            return
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


def _outcome(item: _Job) -> Clip | DecodeError:
    """What a job answers: its result, or the DecodeError it failed with."""
    try:
        return item.wait()
    except DecodeError as e:
        return e


def _cannot_start(e: OSError) -> str:
    return f"cannot start a decode worker process: {e.strerror or e}"


def worker_path() -> list[str]:
    """The import path a worker gets: vdg_tf's own root (importable without an install),
    then this process's path without the working folder (`""`, `.` or the cwd itself)."""
    root = str(Path(__file__).resolve().parents[2])
    cwd = os.path.realpath(os.getcwd())
    paths = [root]
    for entry in sys.path:
        if entry in ("", ".") or os.path.realpath(entry) == cwd or entry in paths:
            continue
        paths.append(entry)
    return paths


_LOG: dict[str, Path | None] = {"path": None, "temp": None}


def set_decode_log(path: str | Path | None) -> None:
    """Workers started from now on append their stderr to `path` (None: a temp file of
    this process). Training points it at the run folder's `decode.log`."""
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
    _LOG["path"] = path


def decode_log() -> Path:
    """Where a worker started now logs: `set_decode_log`'s file, else a temp file of this
    process (removed at exit when empty)."""
    if _LOG["path"] is not None:
        return _LOG["path"]
    if _LOG["temp"] is None:
        _LOG["temp"] = Path(tempfile.gettempdir()) / f"vdg-decode-{os.getpid()}.log"
    return _LOG["temp"]


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
    temp = _LOG["temp"]
    with contextlib.suppress(OSError):
        if temp is not None and temp.stat().st_size == 0:
            temp.unlink()


class _Spawner:
    """Starts processes from one thread that lives as long as this process, so a child's
    `PR_SET_PDEATHSIG` (tied to the thread that started it) fires only when the process
    ends, not when a short-lived thread that replaced a worker does."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._serve, daemon=True, name="vdg-decode-spawner").start()

    def popen(self, args: list[str], **kwargs) -> subprocess.Popen:
        """`subprocess.Popen(args, **kwargs)`, run on the spawner thread (OSError as Popen's)."""
        done: Future = Future()
        self._jobs.put((done, args, kwargs))
        return done.result()

    def _serve(self) -> None:
        while True:
            done, args, kwargs = self._jobs.get()
            try:
                done.set_result(subprocess.Popen(args, **kwargs))
            except BaseException as e:  # handed to the caller, who raises it
                done.set_exception(e)


_SPAWNER: dict[int, _Spawner] = {}  # by process id: a forked child has no spawner thread
_SPAWNER_LOCK = threading.Lock()


def _spawner() -> _Spawner:
    with _SPAWNER_LOCK:
        pid = os.getpid()
        if pid not in _SPAWNER:
            _SPAWNER[pid] = _Spawner()
        return _SPAWNER[pid]


def _die_with_parent() -> None:
    """Linux: SIGKILL this process when its parent's spawning thread ends (the kernel's
    doing, so it works while this process is stuck in C or stopped)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG


def _watch_parent(parent: int) -> None:
    """Exit the worker as soon as its parent is gone (it is then re-parented): a worker
    busy on a clip would not notice its input closing."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_S)
    os._exit(0)


def serve(parent: int | None = None) -> None:
    """Worker main loop: a job in on stdin, its `run_or_error` out (a Clip, a DecodeError,
    or for a group the list of them). With `parent`, exit when that process is gone."""
    if parent is not None:
        _die_with_parent()
        if os.getppid() != parent:  # gone before this process got here (or set its signal)
            return
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    keep_freed_memory()
    proto_in, proto_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)  # stray prints go to the log (stderr), never into the protocol
    while True:
        try:
            job = recv(proto_in)
        except EOFError:
            return
        send(proto_out, run_or_error(job))


if __name__ == "__main__":
    serve()

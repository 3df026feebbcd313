"""Live feeds decoded in worker processes: one `python -I` process a source, reading it into
windows (`read_windows`) and sending each window back the moment it is complete.

Why a process a feed: demuxing, decoding and resizing many cameras is most of the work of
following them, and in the model's process it would hold the GIL the model needs; a
feed whose decoder crashes or hangs ends alone (its process), and the others go on. The
worker starts like the clip decoders of `workers.py` (isolated import path, dies with its
parent, its stderr in the decode log) but answers one job with many messages:

    ("ready",)                                once it runs, before it opens the source
    ("window", Window)                        each window (`Window.arrived` stamped there)
    ("end", ended, note, duration)            how the source ended (`Windows.ended`)
    ("error", message)                        a DecodeError naming the source

A pipe reaches the worker as a descriptor: `-` (this process's stdin) and `/dev/fd/N`
(a pipe of this process, as bash's `<(ffmpeg ...)` gives) are passed to the child under
the same number; files, named pipes and URLs it opens itself.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

from vdg_tf.config import AudioSpec, VideoSpec
from vdg_tf.media.decode import DecodeError
from vdg_tf.media.heap import keep_freed_memory
from vdg_tf.media.wire import recv, send, widen
from vdg_tf.media.workers import _die_with_parent, _spawner, _watch_parent, decode_log, worker_path

_BOOT = (
    "import sys; sys.path[:] = sys.argv[1].split(sys.argv[2]); "
    "from vdg_tf.media.feeds import serve_feed; serve_feed(int(sys.argv[3]))"
)
# Decoders run this much nicer than the model process: a window must be answered within
# the stride, while a decoder has a stride of slack before its feed falls behind, so when
# every feed's decoder wakes at once the model thread goes first (measured: BENCHMARKS.md).
DECODE_NICE = 10
REAP_WAIT_S = 30.0  # how long a reader waits for its worker to exit after its last word
_FD_PATH = re.compile(r"/(?:dev|proc/self)/fd/(\d+)")


@dataclass(frozen=True)
class FeedJob:
    """One live source to read into windows: what `read_windows` takes."""

    source: str
    video: VideoSpec
    audio: AudioSpec
    window_s: float
    stride_s: float
    follow: bool = True
    timeout_s: float = 10.0
    nice: int = DECODE_NICE


class FeedProcess:
    """A worker process reading one feed; `on_message(self, message)` gets each message
    (module docstring) on a reader thread, and a last `("error", ...)` if the process
    dies without saying how the source ended. `name` is what the caller calls the feed."""

    def __init__(self, name: str, job: FeedJob, on_message: Callable, python: str = sys.executable):
        self.name, self.job, self._on_message = name, job, on_message
        self.log_path = decode_log()
        source, fds, own = _handed_over(job.source)
        try:
            with open(self.log_path, "ab") as log:
                self.proc = _spawner().popen(
                    [python, "-I", "-c", _BOOT, os.pathsep.join(worker_path()), os.pathsep,
                     str(os.getpid())],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, bufsize=0,
                    pass_fds=fds,
                )  # fmt: skip
        finally:
            for fd in own:  # the child has its own copy now
                os.close(fd)
        widen(self.proc.stdout.fileno())
        job = replace(job, source=source)
        send(self.proc.stdin.fileno(), job)
        self.proc.stdin.close()
        self._thread = threading.Thread(target=self._read, daemon=True, name=f"vdg-feed-{name}")
        self._thread.start()

    def _read(self) -> None:
        fd, said_end = self.proc.stdout.fileno(), False
        try:
            while True:
                message = recv(fd)
                said_end = message[0] in ("end", "error")
                self._on_message(self, message)
                if said_end:
                    break
        except (EOFError, OSError):
            pass
        finally:
            with contextlib.suppress(OSError):
                self.proc.stdout.close()
        if said_end:  # the worker exits once it has said how the source ended: reap it here
            try:
                self.proc.wait(REAP_WAIT_S)
            except subprocess.TimeoutExpired:  # stuck in its teardown (a network source)
                self.stop()
        else:
            code = self.proc.wait()
            how = f"killed by signal {-code}" if code and code < 0 else f"exit status {code}"
            self._on_message(self, ("error", f"{self.job.source}: the decoder process ended "
                                    f"({how}; its stderr is in {self.log_path})"))  # fmt: skip

    def stop(self) -> None:
        """End the worker (it has said its last, or the caller no longer listens)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)


def _handed_over(source: str) -> tuple[str, tuple[int, ...], list[int]]:
    """The source as the child names it, the descriptors it inherits, and the ones this
    process made for it (closed once the child has them)."""
    m = _FD_PATH.fullmatch(source)
    if source == "-" or (m and int(m[1]) <= 2):  # the child's 0-2 are its own: a copy
        fd = os.dup(sys.stdin.fileno() if source == "-" else int(m[1]))
        return f"/dev/fd/{fd}", (fd,), [fd]
    if m:
        return f"/dev/fd/{m[1]}", (int(m[1]),), []
    return source, (), []


def serve_feed(parent: int | None = None) -> None:
    """Worker main: a `FeedJob` in on stdin, its windows and how it ended out on stdout."""
    if parent is not None:
        _die_with_parent()
        if os.getppid() != parent:
            return
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    keep_freed_memory()
    proto_in, out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)  # stray prints go to the log, never into the protocol
    try:
        job = recv(proto_in)
    except EOFError:
        return
    if job.nice:
        with contextlib.suppress(OSError):  # a niceness limit only costs the priority
            os.nice(job.nice)
    from vdg_tf.media.windows import read_windows

    send(out, ("ready",))
    try:
        ws = read_windows(job.source, job.video, job.audio, job.window_s, job.stride_s,
                          follow=job.follow, timeout_s=job.timeout_s, threads=1)  # fmt: skip
        for w in ws:
            send(out, ("window", w))
        send(out, ("end", ws.ended or "end", ws.note, ws.duration))
    except DecodeError as e:
        send(out, ("error", str(e)))
    except BrokenPipeError:
        return
    except Exception as e:  # noqa: BLE001 - the parent must hear why this feed ended
        send(out, ("error", f"{job.source}: cannot decode: {type(e).__name__}: {e}"))

"""Fixed windows over a whole video or a live stream, decoded in one pass with flat memory.

`read_windows` demuxes the source once and yields a `Window` (the frames and audio a model
takes, sampled exactly as a training clip of that span is: `sample_times`, the same resize,
the centre `audio.seconds` of audio) as soon as the source has delivered its last frame.
Only frames some window needs are resized, and only the frames and audio of open windows
are kept, so an hour of video costs what one window does.

Sources: a file path; `-` (a container on stdin, e.g. MPEG-TS piped from ffmpeg or a
camera tool); a named pipe or `/dev/fd/N` (a pipe, as `<(ffmpeg ...)` gives); any URL FFmpeg opens (rtsp://, udp://, http://); or, with `follow`, a file
that is still being written (read like `tail -f`). A live source (stdin, a URL, a growing
file) that sends nothing for `timeout_s` ends there, `ended == "stalled"`, with every
window whose data had arrived. Pipes and growing files need a streamable container
(MPEG-TS, Matroska, fragmented MP4).
"""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

from vdg_tf.config import AudioSpec, VideoSpec
from vdg_tf.media.convert import audio_window, fit_audio, resize, thread_scaler, to_mono
from vdg_tf.media.decode import DecodeError, require_video, sample_times


@dataclass
class Window:
    """One window of a source: `frames` uint8 [T,S,S,3], `audio` float32 mono samples;
    `arrived`: `time.monotonic()` when the data that completed it was read (the start of
    its latency; the clock is system-wide, so a worker process's stamp holds here too)."""

    index: int
    start: float
    end: float
    frames: np.ndarray
    audio: np.ndarray
    has_audio: bool
    arrived: float = 0.0


class LiveReader(io.RawIOBase):
    """A live byte source FFmpeg reads: a read returns what has arrived, waits at the end
    for more, and reports the end once nothing came for `stall_s` seconds (`stalled`).

    The end is final: FFmpeg reads past the end several times (probing, resyncing), and
    waiting again on each read made a 5 s timeout take 20 s.
    """

    def __init__(self, stall_s: float):
        self.stall_s, self.stalled = stall_s, False

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        if self.stalled:
            return 0
        n = self._wait_read(b)
        if n is None:
            self.stalled = True
            return 0
        return n

    def _wait_read(self, b) -> int | None:
        """Bytes read into `b` (0: the source closed), or None after `stall_s` of nothing."""
        raise NotImplementedError


class FollowFile(LiveReader):
    """A file read while another process appends to it: it ends `stall_s` seconds after
    it last grew."""

    def __init__(self, path: str | Path, stall_s: float = 5.0, poll_s: float = 0.05):
        super().__init__(stall_s)
        self.f = open(path, "rb")  # noqa: SIM115  closed by close()
        self.poll_s = poll_s
        self.idle_s = 0.0  # seconds spent waiting at the end, over the whole read

    def _wait_read(self, b) -> int | None:
        waited = 0.0
        while True:
            n = self.f.readinto(b)
            if n:
                return n
            if waited >= self.stall_s:
                return None
            time.sleep(self.poll_s)
            waited += self.poll_s
            self.idle_s += self.poll_s

    def close(self) -> None:
        self.f.close()
        super().close()


class PipeReader(LiveReader):
    """A pipe (stdin): each read returns the bytes there are (a buffered read of 32 KiB
    would hold back windows whose data already came), and the pipe ends when its writer
    closes it or sends nothing for `stall_s` seconds."""

    def __init__(self, raw, stall_s: float = 10.0):
        super().__init__(stall_s)
        self.raw = raw

    def _wait_read(self, b) -> int | None:
        import select  # only live pipes need it

        ready, _, _ = select.select([self.raw], [], [], self.stall_s)
        return self.raw.readinto(b) if ready else None


def open_source(source: str, follow: bool = False, timeout_s: float = 10.0):
    """An open PyAV input container for a path, `-` (stdin), a URL, or a growing file, and
    the `LiveReader` it reads through (None for files and URLs)."""
    try:
        if source == "-":
            raw = getattr(sys.stdin.buffer, "raw", None)
            reader = PipeReader(raw, timeout_s) if raw is not None else sys.stdin.buffer
            return av.open(reader, mode="r"), reader if raw is not None else None
        if "://" in source:
            return av.open(source, mode="r", timeout=(timeout_s, timeout_s)), None
        path = Path(source)
        if path.is_fifo():  # a named pipe, or a pipe handed over as /dev/fd/N
            reader = PipeReader(open(path, "rb", buffering=0), timeout_s)  # noqa: SIM115
            return av.open(reader, mode="r"), reader
        if not path.is_file():
            raise DecodeError(source, "file not found")
        if follow:
            reader = FollowFile(path, stall_s=timeout_s)
            return av.open(reader, mode="r"), reader
        return av.open(str(path), mode="r"), None
    except DecodeError:
        raise
    except (av.FFmpegError, OSError, ValueError) as e:
        raise DecodeError(source, f"cannot open: {e}") from None


@dataclass
class _Open:
    """A window whose frames are still arriving."""

    index: int
    start: float
    end: float
    times: np.ndarray
    audio_span: tuple[float, float]
    frames: list = field(default_factory=list)


class _Audio:
    """Mono samples at the target rate from a stream time on, trimmed as windows close."""

    def __init__(self, rate: int):
        self.rate, self.t0, self.chunks, self.count = rate, None, [], 0

    @property
    def end(self) -> float:
        return -1.0 if self.t0 is None else self.t0 + self.count / self.rate

    def add(self, t: float, samples: np.ndarray) -> None:
        if self.t0 is None:
            self.t0 = t
        self.chunks.append(samples)
        self.count += len(samples)

    def span(self, lo: float, hi: float) -> np.ndarray:
        if self.t0 is None or not self.chunks:
            return np.zeros(0, np.float32)
        data = np.concatenate(self.chunks)
        self.chunks = [data]
        a, b = (int(round((x - self.t0) * self.rate)) for x in (lo, hi))
        return data[max(a, 0) : max(b, 0)]

    def trim(self, before: float) -> None:
        """Drop samples before time `before` (no open window needs them)."""
        if self.t0 is None or before <= self.t0:
            return
        data = np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.float32)
        cut = min(int((before - self.t0) * self.rate), len(data))
        self.chunks, self.count = [data[cut:]], len(data) - cut
        self.t0 += cut / self.rate


def read_windows(
    source: str,
    video: VideoSpec,
    audio: AudioSpec,
    window_s: float,
    stride_s: float,
    follow: bool = False,
    timeout_s: float = 10.0,
    threads: int = 0,
) -> Windows:
    """Windows `[i * stride_s, i * stride_s + window_s)` of `source`, in order, each as soon
    as its last frame (and its audio) has been decoded; times are seconds from the
    stream's first frame. A source shorter than one window gives one window over all of it.

    Iterate the result; afterwards its `ended` says how the source ended. Raises
    ValueError for a window or stride that is not a positive number of seconds, and
    `DecodeError` (naming the source) when it cannot be opened, holds no video or is a
    still image. `threads`: decoder threads (0: FFmpeg's choice; a live feed's worker uses
    1, since frame threads hold each frame back a frame a thread).
    """
    return Windows(source, video, audio, window_s, stride_s, follow, timeout_s, threads)


class Windows:
    """The windows of one source (iterate once), and how the source ended.

    After iteration: `ended` is "end", "stalled" (a live source that sent nothing for
    `timeout_s`: stdin, a URL, a growing file) or "cut short" (a file whose video stops
    well before the duration it states, as a truncated download does: `note` says
    where); `duration` is the seconds of video seen.
    """

    def __init__(self, source, video, audio, window_s, stride_s, follow=False, timeout_s=10.0,
                 threads=0):  # fmt: skip
        for name, value in (("window", window_s), ("stride", stride_s)):
            if not 0 < value < float("inf"):  # NaN fails this too
                raise ValueError(f"{name}: must be a positive number of seconds, got {value}")
        self.source, self.video, self.audio = source, video, audio
        self.window_s, self.stride_s, self.follow, self.timeout_s = (
            window_s, stride_s, follow, timeout_s
        )  # fmt: skip
        self.threads = threads
        self.ended: str | None = None
        self.note = ""
        self.duration: float | None = None
        self._timed_out = False

    def __iter__(self) -> Iterator[Window]:
        container, reader = open_source(self.source, self.follow, self.timeout_s)
        try:
            yield from self._windows(container, reader)
        except (av.FFmpegError, OSError) as e:
            raise DecodeError(self.source, f"cannot decode: {e}") from None
        finally:
            container.close()

    def _windows(self, container, reader: LiveReader | None) -> Iterator[Window]:
        vs = require_video(container, self.source)
        if self.threads:
            vs.thread_count = self.threads
        else:
            vs.thread_type = "AUTO"
        aus = container.streams.audio[0] if container.streams.audio else None
        asm = _Assembler(vs, aus, self.video, self.audio, self.window_s, self.stride_s)
        for packet in self._packets(container, [vs] + ([aus] if aus is not None else [])):
            arrived = time.monotonic()
            asm.add(packet)
            for w in asm.ready():
                w.arrived = arrived
                yield w
        stalled = self._timed_out or (reader is not None and reader.stalled)
        self.ended = "stalled" if stalled else "end"
        if asm.prev is None:
            raise DecodeError(self.source, "no decodable video frames")
        self.duration = asm.duration()
        self._check_cut_short(vs)
        arrived = time.monotonic()
        for w in asm.tail(self.duration):
            w.arrived = arrived
            yield w

    def _packets(self, container, streams) -> Iterator[av.Packet]:
        """The demuxed packets; a URL that sends nothing for `timeout_s` (PyAV's read
        timeout interrupts FFmpeg) ends the stream there instead of failing it."""
        packets = container.demux(streams)
        while True:
            try:
                yield next(packets)
            except StopIteration:
                return
            except av.ExitError:
                self._timed_out = True
                break
        for stream in streams:  # PyAV flushes the decoders only at a clean end
            flush = av.Packet()
            flush.stream, flush.time_base = stream, stream.time_base
            yield flush

    def _check_cut_short(self, vs) -> None:
        """`ended = "cut short"` when a file's video stops well before the duration its
        index states (a truncated faststart mp4 still states the whole length)."""
        live = self.follow or self.source == "-" or "://" in self.source
        if live or self.ended != "end" or not (vs.duration and vs.time_base):
            return
        stated = float(vs.duration * vs.time_base)
        rate = vs.guessed_rate or vs.average_rate
        slack = max(1.0, 3.0 / float(rate)) if rate else 1.0
        if stated - self.duration > slack:
            self.ended = "cut short"
            self.note = (
                f"the file ends early: its video stops at {self.duration:.1f} s of the "
                f"{stated:.1f} s it states"
            )


class _Assembler:
    """Fills the open windows from one demux pass: each video frame is every target time
    before the next frame's; audio is kept from the first open window's span on."""

    def __init__(self, vs, aus, video: VideoSpec, audio: AudioSpec, window_s, stride_s):
        self.vs, self.aus, self.video, self.audio = vs, aus, video, audio
        self.window_s, self.stride_s = window_s, stride_s
        self.resampler = av.AudioResampler(format="flt", layout="mono", rate=audio.sample_rate)
        self.buf = _Audio(audio.sample_rate)
        self.scaler = thread_scaler()
        self.t0 = None  # the stream's first video time: window times count from it
        self.opened: list[_Open] = []
        self.next_index = 0
        self.prev, self.prev_t, self.prev_img = None, 0.0, None
        self.first: list[tuple[float, av.VideoFrame]] = []  # frames until a window is out
        self.emitted = 0
        self.bad = [0]  # packets the decoder refused (damage, a cut stream): skipped

    def add(self, packet: av.Packet) -> None:
        """Decode one packet into the audio buffer or the open windows."""
        if packet.stream.type == "audio":
            for frame in _decoded(packet, self.bad):
                for rs in to_mono(frame, self.resampler, self.audio.sample_rate):
                    t = float(rs.time) if rs.time is not None else max(self.buf.end, 0.0)
                    samples = np.frombuffer(rs.planes[0], np.float32, rs.samples).copy()
                    self.buf.add(t - (self.t0 or 0.0), samples)
            return
        for frame in _decoded(packet, self.bad):
            self._add_frame(frame)

    def _add_frame(self, frame: av.VideoFrame) -> None:
        if self.t0 is None:
            self.t0 = float(frame.time) if frame.time is not None else 0.0
            if self.buf.t0 is not None:
                self.buf.t0 -= self.t0
        # a frame without a timestamp shows where the previous one did
        t = float(frame.time) - self.t0 if frame.time is not None else self.prev_t
        self._open_upto(t)
        if self.emitted == 0:
            self.first.append((t, frame))
        # the previous frame shows until this one: it is every target before `t`
        for w in self.opened:
            while len(w.frames) < len(w.times) and w.times[len(w.frames)] < t - 1e-6:
                if self.prev_img is None:
                    self.prev_img = self.resized(self.prev if self.prev is not None else frame)
                w.frames.append(self.prev_img)
        self.prev, self.prev_t, self.prev_img = frame, t, None

    def _open_upto(self, upto: float) -> None:
        while self.next_index * self.stride_s <= upto:
            s = self.next_index * self.stride_s
            e = s + self.window_s
            times = sample_times(s, e, self.video)
            self.opened.append(_Open(self.next_index, s, e, times, audio_window(s, e, self.audio)))
            self.next_index += 1

    def ready(self) -> Iterator[Window]:
        """The windows complete now (frames, and audio up to their span's end)."""
        while self.opened and self._complete(self.opened[0]):
            yield self._finish(self.opened.pop(0))
            self.emitted += 1
            self.first.clear()
        if self.opened and self.emitted:  # before the first window, a short source needs it all
            self.buf.trim(self.opened[0].audio_span[0])

    def _complete(self, w: _Open) -> bool:
        return len(w.frames) == len(w.times) and (
            self.aus is None or self.buf.end >= w.audio_span[1]
        )

    def _finish(self, w: _Open) -> Window:
        has = self.aus is not None
        samples = self.buf.span(*w.audio_span) if has else np.zeros(0, np.float32)
        return Window(w.index, w.start, w.end, np.stack(w.frames), fit_audio(samples, self.audio),
                      has and self.buf.t0 is not None)  # fmt: skip

    def resized(self, frame: av.VideoFrame) -> np.ndarray:
        """The frame as the model sees it (resized, upright)."""
        return resize(frame, self.video.size, self.video.resize, self.scaler)

    def duration(self) -> float:
        """Seconds of video seen: the last frame's time plus one frame."""
        rate = self.vs.average_rate
        return self.prev_t + (float(1 / rate) if rate else 0.0)

    def tail(self, duration: float) -> Iterator[Window]:
        """The windows left when the source ended: those it covers whole (the last frame
        holds to the end), or one window over all of a source shorter than a window."""
        if self.emitted == 0:
            span = audio_window(0.0, max(duration, self.buf.end), self.audio)  # all the audio
            w = _Open(0, 0.0, duration, sample_times(0.0, duration, self.video), span)
            times = [t for t, _ in self.first]
            for target in w.times:
                i = max(int(np.searchsorted(times, target + 1e-6)) - 1, 0)
                w.frames.append(self.resized(self.first[i][1]))
            yield self._finish(w)
            return
        for w in self.opened:
            if w.end > duration + 1e-3:
                break  # a window the source ended inside is not a whole window
            last = self.resized(self.prev)
            w.frames += [last] * (len(w.times) - len(w.frames))
            yield self._finish(w)


def _decoded(packet: av.Packet, bad: list[int]) -> list:
    """The frames of `packet`; a packet the decoder refuses is skipped and counted."""
    try:
        return packet.decode()
    except av.FFmpegError:
        bad[0] += 1
        return []

"""Fixed windows over a whole video or a live stream, decoded in one pass with flat memory.

`read_windows` demuxes the source once and yields a `Window` (the frames and audio a model
takes, sampled exactly as a training clip of that span is: `sample_times`, the same resize,
the centre `audio.seconds` of audio) as soon as the source has delivered its last frame.
Only frames some window needs are resized, and only the frames and audio of open windows
are kept, so an hour of video costs what one window does.

Sources: a file path; `-` (a container on stdin, e.g. MPEG-TS piped from ffmpeg or a
camera tool); any URL FFmpeg opens (rtsp://, udp://, http://); or, with `follow`, a file
that is still being written (read like `tail -f`, ending after `stall_s` without growth).
Pipes and growing files need a streamable container (MPEG-TS, Matroska, fragmented MP4).
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
from vdg_tf.media.decode import DecodeError, require_decoder, sample_times


@dataclass
class Window:
    """One window of a source: `frames` uint8 [T,S,S,3], `audio` float32 mono samples."""

    index: int
    start: float
    end: float
    frames: np.ndarray
    audio: np.ndarray
    has_audio: bool


class FollowFile(io.RawIOBase):
    """A file read while another process appends to it: at its end a read waits for more
    bytes, and reports the end only after `stall_s` seconds without growth."""

    def __init__(self, path: str | Path, stall_s: float = 5.0, poll_s: float = 0.05):
        self.f = open(path, "rb")  # noqa: SIM115  closed by close()
        self.stall_s, self.poll_s = stall_s, poll_s

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        waited = 0.0
        while True:
            n = self.f.readinto(b)
            if n:
                return n
            if waited >= self.stall_s:
                return 0
            time.sleep(self.poll_s)
            waited += self.poll_s

    def close(self) -> None:
        self.f.close()
        super().close()


def open_source(source: str, follow: bool = False, timeout_s: float = 10.0):
    """An open PyAV input container for a path, `-` (stdin), a URL, or a growing file."""
    try:
        if source == "-":
            return av.open(sys.stdin.buffer, mode="r")
        if "://" in source:
            return av.open(source, mode="r", timeout=(timeout_s, timeout_s))
        path = Path(source)
        if not path.is_file():
            raise DecodeError(source, "file not found")
        if follow:
            return av.open(FollowFile(path, stall_s=timeout_s), mode="r")
        return av.open(str(path), mode="r")
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
) -> Iterator[Window]:
    """Windows `[i * stride_s, i * stride_s + window_s)` of `source`, in order, each as soon
    as its last frame (and its audio) has been decoded; times are seconds from the
    stream's first frame. A source shorter than one window gives one window over all of it.

    Raises `DecodeError` (naming the source) when it cannot be opened or holds no video.
    """
    if window_s <= 0 or stride_s <= 0:
        raise ValueError(f"window and stride must be positive, got {window_s} and {stride_s}")
    container = open_source(source, follow, timeout_s)
    try:
        if not container.streams.video:
            raise DecodeError(source, "no video stream")
        yield from _windows(container, source, video, audio, window_s, stride_s)
    except (av.FFmpegError, OSError) as e:
        raise DecodeError(source, f"cannot decode: {e}") from None
    finally:
        container.close()


def _windows(container, source, video, audio, window_s, stride_s) -> Iterator[Window]:
    vs = container.streams.video[0]
    require_decoder(vs, source)
    vs.thread_type = "AUTO"
    aus = container.streams.audio[0] if container.streams.audio else None
    streams = [vs] + ([aus] if aus is not None else [])
    resampler = av.AudioResampler(format="flt", layout="mono", rate=audio.sample_rate)
    buf = _Audio(audio.sample_rate)
    scaler = thread_scaler()
    t0 = None  # the stream's first video time: window times count from it
    opened: list[_Open] = []
    next_index = 0
    prev, prev_t, prev_img = None, 0.0, None
    first: list[tuple[float, av.VideoFrame]] = []  # frames until the first window is out
    emitted = 0
    bad = [0]  # packets the decoder refused (damage, a cut stream): skipped, as players do

    def opening(upto: float) -> None:
        nonlocal next_index
        while next_index * stride_s <= upto:
            s = next_index * stride_s
            times = sample_times(s, s + window_s, video)
            opened.append(
                _Open(next_index, s, s + window_s, times, audio_window(s, s + window_s, audio))
            )
            next_index += 1

    def ready(w: _Open, ended: bool) -> bool:
        return len(w.frames) == len(w.times) and (
            ended or aus is None or buf.end >= w.audio_span[1]
        )

    def finish(w: _Open) -> Window:
        samples = buf.span(*w.audio_span) if aus is not None else np.zeros(0, np.float32)
        return Window(w.index, w.start, w.end, np.stack(w.frames), fit_audio(samples, audio),
                      aus is not None and buf.t0 is not None)  # fmt: skip

    def resized(frame) -> np.ndarray:
        return resize(frame, video.size, video.resize, scaler)

    for packet in container.demux(streams):
        if packet.stream.type == "audio":
            for frame in _decoded(packet, bad):
                for rs in to_mono(frame, resampler, audio.sample_rate):
                    t = float(rs.time) if rs.time is not None else max(buf.end, 0.0)
                    buf.add(
                        t - (t0 or 0.0), np.frombuffer(rs.planes[0], np.float32, rs.samples).copy()
                    )
        else:
            for frame in _decoded(packet, bad):
                t = float(frame.time) if frame.time is not None else prev_t
                if t0 is None:
                    t0 = t
                    if buf.t0 is not None:
                        buf.t0 -= t0
                t -= t0
                opening(t)
                if emitted == 0:
                    first.append((t, frame))
                # the previous frame shows until this one: it is every target before `t`
                for w in opened:
                    while len(w.frames) < len(w.times) and w.times[len(w.frames)] < t - 1e-6:
                        if prev_img is None:
                            prev_img = resized(prev if prev is not None else frame)
                        w.frames.append(prev_img)
                prev, prev_t, prev_img = frame, t, None
        while opened and ready(opened[0], False):
            yield finish(opened.pop(0))
            emitted += 1
            first.clear()
        if opened and emitted:  # before the first window, a short source needs it all
            buf.trim(opened[0].audio_span[0])
    if prev is None:
        raise DecodeError(source, "no decodable video frames")
    duration = prev_t + (float(vs.average_rate and 1 / vs.average_rate) if vs.average_rate else 0.0)
    if emitted == 0:  # shorter than a window: one window over all of it, as a clip
        span = audio_window(0.0, max(duration, buf.end), audio)  # all the audio there is
        w = _Open(0, 0.0, duration, sample_times(0.0, duration, video), span)
        times = [t for t, _ in first]
        for target in w.times:
            i = max(int(np.searchsorted(times, target + 1e-6)) - 1, 0)
            w.frames.append(resized(first[i][1]))
        yield finish(w)
        return
    for w in opened:
        if w.end > duration + 1e-3:
            break  # a window the source ended inside is not a whole window
        last = resized(prev)
        w.frames += [last] * (len(w.times) - len(w.frames))
        yield finish(w)


def _decoded(packet: av.Packet, bad: list[int]) -> list:
    """The frames of `packet`; a packet the decoder refuses is skipped and counted."""
    try:
        return packet.decode()
    except av.FFmpegError:
        bad[0] += 1
        return []

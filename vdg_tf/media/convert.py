"""What decoded frames and audio become in a clip: resized frames, mono audio, the audio window.

Shared by `decode` (one clip) and `windows` (windows over a whole file or a live stream),
so a window is sampled exactly as a training clip of that span is.
"""

from __future__ import annotations

import threading

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from vdg_tf.config import AudioSpec


def resize(frame: av.VideoFrame, size: int, mode: str, scaler: VideoReformatter) -> np.ndarray:
    """Short-side resize + centre crop (`crop`), long-side resize + black pad (`pad`), or
    the whole frame resized to a square (`stretch`, aspect not kept: detection's boxes),
    upright as players show it: phones store portrait video as landscape frames plus a
    display rotation (degrees counter-clockwise), which is applied here.

    One swscale context per thread (`scaler`), single-threaded: PyAV's default builds a
    new context with a thread per core for every frame, which for a small frame costs more
    than the scaling and stalls badly when decode threads already fill the cores. Area
    averaging: it does not alias when shrinking, and costs 19 us a frame here against
    bilinear's 27 (96x96 -> 64x64, PyAV 18).
    """
    w, h = frame.width, frame.height
    if mode == "stretch":
        img = scaler.reformat(frame, size, size, "rgb24", interpolation="AREA", threads=1)
        out = img.to_ndarray()
        turns = round(frame.rotation / 90) % 4
        return np.rot90(out, turns) if turns else out
    scale = size / min(w, h) if mode == "crop" else size / max(w, h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    img = scaler.reformat(frame, nw, nh, "rgb24", interpolation="AREA", threads=1).to_ndarray()
    if mode == "crop":
        y, x = (nh - size) // 2, (nw - size) // 2
        out = img[y : y + size, x : x + size]
    else:
        out = np.zeros((size, size, 3), np.uint8)
        y, x = (size - nh) // 2, (size - nw) // 2
        out[y : y + nh, x : x + nw] = img
    turns = round(frame.rotation / 90) % 4
    return np.rot90(out, turns) if turns else out


_SCALERS = threading.local()


def thread_scaler() -> VideoReformatter:
    """This thread's swscale context, kept across clips: FFmpeg reuses it while sizes and
    formats stay the same, and building one cost as much as the clip's 8 resizes."""
    scaler = getattr(_SCALERS, "scaler", None)
    if scaler is None:
        scaler = _SCALERS.scaler = VideoReformatter()
    return scaler


def audio_window(lo: float, hi: float, audio: AudioSpec) -> tuple[float, float]:
    """The audio a clip keeps: its centre `audio.seconds` (all of it when shorter)."""
    spare = max(hi - lo - audio.seconds, 0.0)
    return lo + spare / 2, hi - spare / 2


def to_mono(frame: av.AudioFrame, resampler: av.AudioResampler, rate: int) -> list:
    """The frame as mono float at `rate`: as it is when it already is (no swresample
    call per frame), else through the resampler."""
    if (
        frame.sample_rate == rate
        and frame.layout.nb_channels == 1
        and frame.format.name in ("flt", "fltp")
    ):
        return [frame]
    return resampler.resample(frame)


def fit_audio(samples: np.ndarray, audio: AudioSpec) -> np.ndarray:
    """Centre-crop or zero-pad to exactly `audio.samples` samples."""
    n = audio.samples
    if len(samples) >= n:
        off = (len(samples) - n) // 2
        return samples[off : off + n]
    out = np.zeros(n, np.float32)
    out[: len(samples)] = samples
    return out

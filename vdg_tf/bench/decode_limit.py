"""The raw decode-only limit of `vdg benchmark pipeline`: what PyAV alone costs per clip.

Kept free of TensorFlow (as `vdg_tf.bench/__init__` is): decode worker processes import
this module to run `DecodeOnlyJob`. Built on `vdg_tf.media`'s public functions, so the
limit bounds the clip, the skipped frames and the codec check exactly as `decode_clip`.
"""

from __future__ import annotations

from dataclasses import dataclass

import av

from vdg_tf.config import DataConfig
from vdg_tf.manifest import ClipRow
from vdg_tf.media.decode import (
    FrameSkipper,
    clip_bounds,
    clock_origin,
    require_decoder,
    sample_times,
)


def decode_only(row: ClipRow, cfg: DataConfig, threads: int = 1) -> int:
    """Demux and decode both streams up to the last sampled frame time; no conversion.

    `threads`: FFmpeg's own decode threads (0: one per core), as in `decode_clip`; with
    one thread it skips the frames `decode_clip` skips (`FrameSkipper`): the same frames.
    A file that cannot be decoded counts 0 frames (the pipeline skips and reports it).
    """
    try:
        return _decoded_frames(row, cfg, threads)
    except (av.FFmpegError, OSError, ValueError, IndexError):
        return 0


def _decoded_frames(row: ClipRow, cfg: DataConfig, threads: int) -> int:
    with av.open(row.video) as c:
        require_decoder(c.streams.video[0], row.video)  # a DecodeError is a ValueError
        origin = clock_origin(c)  # frame times are on the container's clock
        lo, hi = (t + origin for t in clip_bounds(c, row.start, row.end))
        streams = [c.streams.video[0], *c.streams.audio[:1]]
        streams[0].codec_context.thread_count = threads
        if threads != 1:
            streams[0].thread_type = "AUTO"
        times = sample_times(lo, hi, cfg.video)
        skipper = FrameSkipper(streams[0], times) if threads == 1 else None
        frames = 0
        for packet in c.demux(streams):
            if skipper is not None and packet.stream.type == "video":
                skipper.before(packet)
            for frame in packet.decode():
                if packet.stream.type == "video":
                    frames += 1
                    if frame.time is not None and frame.time > times[-1]:
                        return frames
        return frames


@dataclass(frozen=True)
class DecodeOnlyJob:
    """`decode_only` as a job for the decode worker processes: the limit without a GIL."""

    row: ClipRow
    cfg: DataConfig

    @property
    def path(self) -> str:  # what a worker names when the job fails
        return self.row.video

    def run(self) -> int:
        return decode_only(self.row, self.cfg, 1)

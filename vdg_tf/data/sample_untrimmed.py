"""Sample data for localisation: long untrimmed mp4 files whose action segments are known.

Each video is `seconds` long: a background (a still colour, or with `noise` the colour
plus per-frame pixel noise and a circle drifting through the whole video, so motion
alone does not mean "action") with a quiet noise track. Now and then an action happens:
a square crosses the frame in one of the sample task's four directions (`left`, `right`,
`up`, `down`) while the matching tone of the sample task sounds (`class_cues`: left/low,
right/mid, up/high, down/shrill, rendered by `sample.render_audio`). Gaps between actions
are background. The manifest rows are the localisation contract,
`{"video": ..., "segments": [{"start", "end", "label"}]}`, with start and end on frame
times (the square is on screen on exactly the frames from `start` to `end`).

The square is drawn here over the video's own background rather than by
`sample.render_frames`: that renderer paints a new background per clip, which would mark
every action's boundaries by a background change instead of by the action. Frames are
generated and encoded one at a time, so a 10-minute video costs one frame of memory.

Example:
  info = make_untrimmed_sample("data/untrimmed", videos=8, seconds=60, seed=0)
  info["manifest_train"]  # data/untrimmed/manifest_train.jsonl: rows with "segments"
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from vdg_tf._progress import bar
from vdg_tf.data.sample import DIRECTIONS, _encode_audio, class_cues, render_audio
from vdg_tf.files import atomic_dir, atomic_path, write_json
from vdg_tf.manifest import write_manifest

ACTIONS = DIRECTIONS  # the labels: the direction the square moves


@dataclass(frozen=True)
class UntrimmedSpec:
    """How the untrimmed videos look: frame size (320 x 240 is UCF101's and THUMOS'
    format), frame and sample rates, action lengths and the background between them."""

    width: int = 320
    height: int = 240
    fps: int = 12
    sample_rate: int = 16000
    min_action: float = 2.0
    max_action: float = 5.0
    min_gap: float = 2.0
    max_gap: float = 8.0
    noise: bool = True


def make_untrimmed_sample(
    out: str | Path,
    videos: int = 8,
    seconds: float = 60.0,
    seed: int = 0,
    *,
    eval_fraction: float = 0.25,
    spec: UntrimmedSpec | None = None,
    progress: bool = False,
) -> dict:
    """Write `videos` untrimmed mp4 files plus `manifest_train.jsonl`/`manifest_eval.jsonl`.

    Deterministic for a seed (video i draws from its own generator seeded by (seed, i)).
    The folder is built beside `out` and swapped in whole (`files.atomic_dir`): a folder of
    other files is refused, an earlier sample is replaced.

    Args:
      out: the folder to write.
      videos: how many videos; the first `eval_fraction` of them (at least one) are the
        evaluation split.
      seconds: the length of each video.
      seed: the random seed.
      spec: sizes and timing (`UntrimmedSpec`).
      progress: show a bar on stderr.

    Returns:
      {"manifest_train", "manifest_eval", "videos", "train_videos", "eval_videos",
       "segments", "labels", "seconds"}
    """
    spec = spec or UntrimmedSpec()
    if videos < 2:
        raise ValueError(f"videos: need at least 2 (one to train, one to evaluate), got {videos}")
    if seconds < spec.max_action + 2 * spec.min_gap:
        raise ValueError(
            f"seconds: {seconds:g} s is too short for one action of up to {spec.max_action:g} s "
            f"between gaps of {spec.min_gap:g} s"
        )
    rows = []
    with atomic_dir(out) as tmp:
        tmp.chmod(0o755)  # mkdtemp's folder is private; the data is not
        (tmp / "videos").mkdir()
        ids = range(videos)
        for i in bar(ids, "writing videos", total=videos, unit="video") if progress else ids:
            rng = np.random.default_rng([seed, i])
            name = f"videos/{i:05d}.mp4"
            segments = plan_segments(rng, seconds, spec)
            write_untrimmed(tmp / name, segments, seconds, spec, rng)
            rows.append({"video": name, "segments": segments})
        n_eval = max(1, int(round(videos * eval_fraction)))
        write_manifest(tmp / "manifest_train.jsonl", rows[n_eval:])
        write_manifest(tmp / "manifest_eval.jsonl", rows[:n_eval])
        labels = sorted({s["label"] for r in rows for s in r["segments"]})
        write_json(tmp / "info.json", {"videos": videos, "seconds": seconds, "seed": seed})
    out = Path(out)
    return {
        "manifest_train": str(out / "manifest_train.jsonl"),
        "manifest_eval": str(out / "manifest_eval.jsonl"),
        "videos": videos,
        "train_videos": videos - n_eval,
        "eval_videos": n_eval,
        "segments": sum(len(r["segments"]) for r in rows),
        "labels": labels,
        "seconds": seconds,
    }


def plan_segments(rng: np.random.Generator, seconds: float, spec: UntrimmedSpec) -> list[dict]:
    """Non-overlapping actions, each `min_action`..`max_action` long, after gaps of
    `min_gap`..`max_gap` (the video ends in background), on frame times."""
    out, t = [], float(rng.uniform(spec.min_gap, spec.max_gap))
    while True:
        length = float(rng.uniform(spec.min_action, spec.max_action))
        if t + length + spec.min_gap > seconds:
            break
        first, last = round(t * spec.fps), round((t + length) * spec.fps)
        label = ACTIONS[int(rng.integers(len(ACTIONS)))]
        # frame times, rounded for a readable manifest (still the same frame numbers)
        out.append(
            {"start": round(first / spec.fps, 6), "end": round(last / spec.fps, 6), "label": label}
        )
        t = last / spec.fps + float(rng.uniform(spec.min_gap, spec.max_gap))
    return out


def write_untrimmed(
    path: str | Path,
    segments: list[dict],
    seconds: float,
    spec: UntrimmedSpec,
    rng: np.random.Generator,
) -> None:
    """Encode one untrimmed video (H.264 + AAC) with the given action segments."""
    n = round(seconds * spec.fps)
    audio = _soundtrack(rng, segments, n / spec.fps, spec)
    with atomic_path(path) as tmp, av.open(str(tmp), "w", format="mp4") as container:
        stream = container.add_stream("h264", rate=spec.fps)
        stream.width, stream.height, stream.pix_fmt = spec.width, spec.height, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "20"}
        sound = container.add_stream("aac", rate=spec.sample_rate, layout="mono")
        for frame in _frames(rng, segments, n, spec):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
        _encode_audio(container, sound, audio, spec.sample_rate)


def _soundtrack(rng, segments: list[dict], seconds: float, spec: UntrimmedSpec) -> np.ndarray:
    """Quiet noise, with each action's tone (`class_cues`) over exactly its segment."""
    rate = spec.sample_rate
    audio = rng.normal(0, 0.04, size=int(round(seconds * rate))).astype(np.float32)
    for seg in segments:
        a, b = int(round(seg["start"] * rate)), int(round(seg["end"] * rate))
        pitch = class_cues(ACTIONS.index(seg["label"]))[1]
        audio[a:b] = render_audio(rng, pitch, (b - a) / rate, rate)[: b - a]
    return audio


def _frames(rng, segments: list[dict], n: int, spec: UntrimmedSpec) -> Iterator[np.ndarray]:
    """Frame t of the video: background, the drifting circle, and the square of the action
    whose frames include t."""
    w, h = spec.width, spec.height
    short = min(w, h)
    yy, xx = np.mgrid[0:h, 0:w]
    bg = np.broadcast_to(rng.integers(0, 90, size=3), (h, w, 3)).astype(np.int16)
    circle = rng.integers(60, 256, size=3)
    cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(short / 12, short / 7)
    vy, vx = rng.uniform(-1.5, 1.5, size=2) * short / 96
    squares = {}
    for seg in segments:
        first, last = round(seg["start"] * spec.fps), round(seg["end"] * spec.fps)
        path = _square_path(rng, seg["label"], last - first, spec)
        squares.update(zip(range(first, last), path, strict=True))
    for t in range(n):
        img = bg.copy()
        if spec.noise:
            img += rng.integers(-12, 13, size=(h, w, 3), dtype=np.int16)
            disk = (yy - (cy + vy * t) % h) ** 2 + (xx - (cx + vx * t) % w) ** 2 < r * r
            img[disk] = circle
        if t in squares:
            x, y, side, color = squares[t]
            img[y : y + side, x : x + side] = color
        yield np.clip(img, 0, 255).astype(np.uint8)


def _square_path(rng, direction: str, n: int, spec: UntrimmedSpec) -> list[tuple]:
    """(x, y, side, colour) of the square on each of its `n` frames, crossing 45-75% of the
    frame in `direction` (as `sample.render_frames` moves it)."""
    w, h = spec.width, spec.height
    side = int(rng.integers(min(w, h) // 7, min(w, h) // 4))
    horizontal = direction in ("left", "right")
    extent, across = (w, h) if horizontal else (h, w)
    travel = rng.uniform(0.45, 0.75) * (extent - side)
    path = rng.uniform(0, extent - side - travel) + travel * np.linspace(0, 1, n)
    if direction in ("left", "up"):
        path = path[::-1]
    fixed = int(rng.integers(0, across - side))
    color = rng.integers(150, 256, size=3)
    return [
        (int(round(p)), fixed, side, color) if horizontal else (fixed, int(round(p)), side, color)
        for p in path
    ]

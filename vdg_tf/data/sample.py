"""The sample dataset: real mp4 files (H.264 + AAC) where only fusion solves the task.

Each clip's class shows in three cues, one per modality: the direction a square moves
(4 directions), the pitch of a tone (4 bands) and a word in the caption (4 words). The
8 classes are laid out so that each cue value belongs to two classes (one modality alone
is right at most 1/2 of the time) while any two cues name the class (a model trained
with modality dropout survives losing one). Distractors (a drifting circle, noise, a
chirp, filler words) keep the cues from being trivial.

The same rows carry every task's keys: `labels` (the three cue names, multi-label),
`target` (a sentiment-like score in [-3, 3]), `question` + `answer` (which cue a
question asks about), so one set of files exercises every task head.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vdg_tf._progress import bar
from vdg_tf.files import atomic_path
from vdg_tf.manifest import write_manifest

DIRECTIONS = ("left", "right", "up", "down")
PITCHES = ("low", "mid", "high", "shrill")
PITCH_HZ = {"low": (200, 300), "mid": (480, 620), "high": (1100, 1400), "shrill": (2300, 2800)}
TIMES = ("day", "night", "dawn", "dusk")
QUESTIONS = {
    "direction": "which way does the square move",
    "pitch": "what pitch is the tone",
    "time": "what time of day is it",
}


def class_cues(k: int) -> tuple[str, str, str]:
    """Cues of class k in 0..7: v = k mod 4, s = k div 4; pitch v + s, word v + 2s (mod 4).

    v and s recover from any two cues, and each cue value belongs to exactly two classes.
    """
    v, s = k % 4, k // 4
    return DIRECTIONS[v], PITCHES[(v + s) % 4], TIMES[(v + 2 * s) % 4]


def class_score(k: int) -> float:
    """A sentiment-like target of class k on the integer scale -3 .. +3 (clips add noise of
    0.1, so rounding gives the level back: the ordinal task's classes)."""
    return float(np.clip((k % 4) * 2 - 3 + k // 4, -3, 3))


FILLER = [
    "a",
    "clip",
    "of",
    "the",
    "square",
    "crossing",
    "the",
    "street",
    "near",
    "the",
    "old",
    "park",
    "with",
    "people",
    "and",
    "cars",
    "filmed",
    "slowly",
    "from",
    "a",
    "window",
    "camera",
    "on",
    "a",
    "quiet",
    "busy",
    "morning",
    "evening",
    "afternoon",
]


@dataclass(frozen=True)
class SampleSpec:
    """Sizes of generated clips: `width` x `height` pixels (96 x 96 keeps the demo fast;
    320 x 240 at 25 fps is UCF101's format, for benchmarks on realistic frames)."""

    width: int = 96
    height: int = 96
    fps: int = 12
    sample_rate: int = 16000
    min_seconds: float = 1.0
    max_seconds: float = 3.0


def write_clip(
    path: str | Path,
    frames: np.ndarray,
    fps: int,
    audio: np.ndarray | None = None,
    sample_rate: int = 16000,
    video_codec: str = "h264",
    audio_codec: str = "aac",
) -> None:
    """Encode uint8 frames [T,H,W,3] and optional mono float audio [N] into one container.

    The container follows the file suffix (.mp4, .mkv, .webm, ...). Written to a temp name
    first, then renamed, so an interrupted run never leaves a half file under the real name.
    """
    path = Path(path)
    fmt = {".mp4": "mp4", ".mkv": "matroska", ".webm": "webm", ".mov": "mov"}.get(path.suffix)
    with atomic_path(path) as tmp, av.open(str(tmp), "w", format=fmt) as out:
        vs = out.add_stream(video_codec, rate=fps)
        vs.width, vs.height = frames.shape[2], frames.shape[1]
        vs.pix_fmt = "yuv420p"
        if video_codec in ("h264", "libx264"):
            vs.options = {"preset": "veryfast", "crf": "20"}
        aus = None
        if audio is not None:
            aus = out.add_stream(audio_codec, rate=sample_rate, layout="mono")
        for frame in frames:
            out.mux(vs.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(vs.encode())
        if aus is not None:
            _encode_audio(out, aus, audio, sample_rate)


def _encode_audio(out: av.container.OutputContainer, stream, audio: np.ndarray, rate: int) -> None:
    """Feed audio in encoder-sized chunks with running timestamps."""
    fmt = stream.codec_context.format.name if stream.codec_context.format else "fltp"
    chunk = stream.codec_context.frame_size or 1024
    samples = np.clip(audio, -1.0, 1.0).astype(np.float32)
    for i in range(0, len(samples), chunk):
        part = samples[i : i + chunk]
        if fmt.startswith("s16"):
            part = (part * 32767).astype(np.int16)
        elif fmt.startswith("s32"):
            part = (part * 2147483647).astype(np.int32)
        frame = av.AudioFrame.from_ndarray(part[None, :], format=fmt, layout="mono")
        frame.sample_rate = rate
        frame.pts = i
        frame.time_base = Fraction(1, rate)
        out.mux(stream.encode(frame))
    out.mux(stream.encode())


AUDIO_FORMATS = {".wav": ("wav", "pcm_s16le"), ".flac": ("flac", "flac"), ".mp3": ("mp3", "libmp3lame"),
                 ".m4a": ("ipod", "aac"), ".ogg": ("ogg", "libopus")}  # fmt: skip


def write_audio(path: str | Path, audio: np.ndarray, sample_rate: int = 16000) -> None:
    """Write mono float audio to WAV, FLAC, MP3, M4A or Ogg/Opus (by suffix) through PyAV."""
    path = Path(path)
    if path.suffix not in AUDIO_FORMATS:
        raise ValueError(f"{path}: unknown audio suffix (known: {', '.join(AUDIO_FORMATS)})")
    fmt, codec = AUDIO_FORMATS[path.suffix]
    with av.open(str(path), "w", format=fmt) as out:
        _encode_audio(
            out, out.add_stream(codec, rate=sample_rate, layout="mono"), audio, sample_rate
        )


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int = 16000) -> None:
    """Write mono float audio as 16-bit PCM WAV."""
    write_audio(Path(path).with_suffix(".wav"), audio, sample_rate)


def render_frames(
    rng: np.random.Generator, direction: str, n: int, width: int, height: int | None = None
) -> np.ndarray:
    """A square crossing the frame (left, right, up or down) over noise with a drifting circle.

    `height` defaults to `width` (square frames); the square's size follows the short side.
    """
    height = height or width
    short = min(width, height)
    yy, xx = np.mgrid[0:height, 0:width]
    bg = rng.integers(0, 90, size=3)
    side = int(rng.integers(short // 7, short // 4))
    extent = width if direction in ("left", "right") else height  # along the motion
    across = height if direction in ("left", "right") else width
    travel = rng.uniform(0.45, 0.75) * (extent - side)
    path = rng.uniform(0, extent - side - travel) + travel * np.linspace(0, 1, n)
    if direction in ("left", "up"):
        path = path[::-1]
    fixed = np.full(n, float(rng.integers(0, across - side)))
    xs, ys = (path, fixed) if direction in ("left", "right") else (fixed, path)
    color = rng.integers(150, 256, size=3)
    circle_c = rng.integers(60, 256, size=3)
    cy, cx = rng.uniform(0, height), rng.uniform(0, width)
    vy, vx = rng.uniform(-1.5, 1.5, size=2) * short / 96  # same speed relative to the frame
    r = rng.uniform(short / 12, short / 7)
    out = np.empty((n, height, width, 3), np.uint8)
    for t in range(n):
        img = np.broadcast_to(bg, (height, width, 3)).astype(np.int16)
        img = img + rng.integers(-12, 13, size=(height, width, 3))
        disk = (yy - cy - vy * t) ** 2 + (xx - cx - vx * t) ** 2 < r * r
        img[disk] = circle_c
        x, y = int(round(xs[t])), int(round(ys[t]))
        img[y : y + side, x : x + side] = color
        out[t] = np.clip(img, 0, 255).astype(np.uint8)
    return out


def render_audio(rng: np.random.Generator, pitch: str, seconds: float, rate: int) -> np.ndarray:
    """A tone in one of four pitch bands with noise and a random chirp as distractor."""
    t = np.arange(int(seconds * rate)) / rate
    f = rng.uniform(*PITCH_HZ[pitch])
    tone = 0.35 * np.sin(2 * np.pi * f * t + rng.uniform(0, 6.28))
    audio = tone + rng.normal(0, 0.04, size=t.shape)
    c0 = rng.uniform(0, max(seconds - 0.4, 0.01))
    chirp = (t >= c0) & (t < c0 + 0.4)
    fc = rng.uniform(3400, 4200)
    audio[chirp] += 0.3 * np.sin(2 * np.pi * fc * t[chirp] * (1 + (t[chirp] - c0)))
    return audio.astype(np.float32)


def render_caption(rng: np.random.Generator, time_word: str) -> str:
    """A filler sentence with the time-of-day cue word at a random position."""
    words = list(rng.choice(FILLER, size=int(rng.integers(5, 10))))
    words.insert(int(rng.integers(0, len(words) + 1)), time_word)
    return " ".join(words)


def sample_row(rng: np.random.Generator, video: str, k: int) -> dict:
    """The manifest row of a clip of class k, with every task's keys."""
    direction, pitch, word = class_cues(k)
    asked = str(rng.choice(list(QUESTIONS)))
    answer = {"direction": direction, "pitch": pitch, "time": word}[asked]
    return {
        "video": video,
        "text": render_caption(rng, word),
        "label": f"{direction}-{pitch}-{word}",
        "labels": [direction, pitch, word],
        "target": round(class_score(k) + float(rng.normal(0, 0.1)), 3),
        "question": QUESTIONS[asked],
        "answer": answer,
    }


def make_sample_data(
    out: str | Path,
    clips: int = 240,
    seed: int = 0,
    eval_fraction: float = 0.25,
    spec: SampleSpec | None = None,
    progress: bool = False,
) -> dict:
    """Write `clips` mp4 files plus `manifest_train.jsonl` / `manifest_eval.jsonl`.

    Deterministic for a seed: clip i uses its own generator seeded by (seed, i), and
    labels are balanced by cycling through the 8 classes (`class_cues`). The files are
    written to a temp folder beside `out` that then replaces it whole, so a rerun
    leaves no clip of an earlier, larger run; a folder that holds anything else is refused.
    Returns {"manifest_train", "manifest_eval", "clips", "train_clips", "eval_clips",
    "labels"}.
    """
    spec = spec or SampleSpec()
    final = Path(out)
    _check_replaceable(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp"))
    tmp.chmod(0o755)  # mkdtemp's folder is private; the data is not
    try:
        rows = _write_clips(tmp, clips, seed, spec, progress)
        n_eval = max(1, int(round(clips * eval_fraction)))
        train, evaluation = rows[n_eval:], rows[:n_eval]
        write_manifest(tmp / "manifest_train.jsonl", train)
        write_manifest(tmp / "manifest_eval.jsonl", evaluation)
        labels = sorted({r["label"] for r in rows})
        info = {"made_by": MADE_BY, "clips": clips, "seed": seed, "labels": labels}
        (tmp / INFO).write_text(json.dumps(info))
        _swap_in(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {
        "manifest_train": str(final / "manifest_train.jsonl"),
        "manifest_eval": str(final / "manifest_eval.jsonl"),
        "clips": clips,
        "train_clips": len(train),
        "eval_clips": len(evaluation),
        "labels": labels,
    }


MADE_BY = "vdg make-sample-data"
INFO = "info.json"


def _check_replaceable(folder: Path) -> None:
    """Refuse to replace a folder that is neither empty nor earlier sample data."""
    if not folder.exists():
        return
    if not folder.is_dir():
        raise ValueError(f"{folder}: a file, not a folder for the sample data")
    entries = list(folder.iterdir())
    if not entries or (folder / INFO).is_file() and (folder / "manifest_train.jsonl").is_file():
        return
    raise ValueError(
        f"{folder}: not empty and not sample data vdg wrote ({len(entries)} entries); "
        "choose a new or empty folder"
    )


def _swap_in(new: Path, final: Path) -> None:
    """Put `new` at `final`: the old folder is renamed aside first, then removed."""
    aside = None
    if final.exists():
        aside = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".old"))
        os.replace(final, aside)
    os.replace(new, final)
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


def _write_clips(out: Path, clips: int, seed: int, spec: SampleSpec, progress: bool) -> list[dict]:
    """Render and encode `clips` clips into `out/clips`; their manifest rows."""
    (out / "clips").mkdir(parents=True, exist_ok=True)
    order = np.random.default_rng(seed).permutation(clips)
    rows = []
    it = bar(range(clips), "writing clips", total=clips, unit="clip") if progress else range(clips)
    for i in it:
        rng = np.random.default_rng([seed, i])
        k = int(order[i]) % 8
        direction, pitch, word = class_cues(k)
        seconds = float(rng.uniform(spec.min_seconds, spec.max_seconds))
        n = max(2, int(round(seconds * spec.fps)))
        name = f"clips/{i:05d}.mp4"
        write_clip(
            out / name,
            render_frames(rng, direction, n, spec.width, spec.height),
            spec.fps,
            render_audio(rng, pitch, n / spec.fps, spec.sample_rate),
            spec.sample_rate,
        )
        rows.append(sample_row(rng, name, k))
    return rows

"""Untrimmed sample videos: decoded back, the square and the tone are exactly where the
manifest's segments say, moving the labelled way, and nowhere else."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest

from vdg_tf.data.sample import PITCH_HZ, class_cues
from vdg_tf.data.sample_untrimmed import ACTIONS, UntrimmedSpec, make_untrimmed_sample
from vdg_tf.files import ForeignPathError
from vdg_tf.manifest import read_manifest

SPEC = UntrimmedSpec(
    width=64, height=48, fps=8, min_action=1.5, max_action=3.0, min_gap=1.0, max_gap=3.0,
    noise=False,
)  # fmt: skip
SECONDS = 16.0


@pytest.fixture(scope="module")
def untrimmed(tmp_path_factory):
    out = tmp_path_factory.mktemp("untrimmed") / "data"
    return out, make_untrimmed_sample(out, videos=3, seconds=SECONDS, seed=4, spec=SPEC)


def _decode(path: Path) -> tuple[np.ndarray, np.ndarray, int]:
    with av.open(str(path)) as c:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    with av.open(str(path)) as c:
        rate = c.streams.audio[0].rate
        audio = np.concatenate([f.to_ndarray().mean(axis=0) for f in c.decode(audio=0)])
    return frames, audio, rate


def _rows(out: Path) -> list[dict]:
    return [
        json.loads(line)
        for name in ("manifest_eval.jsonl", "manifest_train.jsonl")
        for line in (out / name).read_text().splitlines()
    ]


def test_manifests_and_counts(untrimmed):
    out, info = untrimmed
    assert (info["videos"], info["train_videos"], info["eval_videos"]) == (3, 2, 1)
    rows = _rows(out)
    assert info["segments"] == sum(len(r["segments"]) for r in rows) >= 6
    assert set(info["labels"]) <= set(ACTIONS)
    parsed, problems = read_manifest(info["manifest_train"])
    assert len(parsed) == 2 and not problems
    for r in rows:
        ends = [0.0] + [s["end"] for s in r["segments"]]
        for seg, previous_end in zip(r["segments"], ends, strict=False):
            assert seg["start"] >= previous_end + SPEC.min_gap - 1e-9  # background between
            assert SPEC.min_action - 0.5 / SPEC.fps <= seg["end"] - seg["start"]
        assert r["segments"][-1]["end"] <= SECONDS - SPEC.min_gap


def test_square_and_tone_are_exactly_in_the_segments(untrimmed):
    out, _ = untrimmed
    for row in _rows(out):
        frames, audio, rate = _decode(out / row["video"])
        assert frames.shape == (int(SECONDS * SPEC.fps), SPEC.height, SPEC.width, 3)
        bright = (frames.max(axis=3) > 130).sum(axis=(1, 2))  # background < 90, square >= 150
        inside = np.zeros(len(frames), bool)
        for seg in row["segments"]:
            a, b = round(seg["start"] * SPEC.fps), round(seg["end"] * SPEC.fps)
            inside[a:b] = True
            _check_motion(frames[a:b], seg["label"])
            _check_tone(audio[int(seg["start"] * rate) : int(seg["end"] * rate)], rate, seg)
        assert (bright[inside] > 20).all() and (bright[~inside] == 0).all()
        quiet = np.concatenate(
            [audio[int(a * rate) : int(b * rate)] for a, b in _gaps(row["segments"])]
        )
        assert np.sqrt(np.mean(quiet**2)) < 0.08  # noise only between actions


def _check_motion(frames: np.ndarray, label: str) -> None:
    ys, xs = [], []
    for f in (frames[1], frames[-2]):
        y, x = np.nonzero(f.max(axis=2) > 130)
        ys.append(y.mean())
        xs.append(x.mean())
    dx, dy = xs[1] - xs[0], ys[1] - ys[0]
    expected = {"right": dx > 3, "left": dx < -3, "down": dy > 3, "up": dy < -3}
    assert expected[label], (label, dx, dy)


def _check_tone(audio: np.ndarray, rate: int, seg: dict) -> None:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    peak = np.fft.rfftfreq(len(audio), 1 / rate)[int(np.argmax(spectrum))]
    lo, hi = PITCH_HZ[class_cues(ACTIONS.index(seg["label"]))[1]]
    assert lo - 20 <= peak <= hi + 20, (seg, peak)


def _gaps(segments: list[dict]) -> list[tuple[float, float]]:
    """Background spans, 0.2 s away from each action (AAC smears edges a little)."""
    edges = [0.0] + [t for s in segments for t in (s["start"], s["end"])] + [SECONDS]
    return [(a + 0.2, b - 0.2) for a, b in zip(edges[::2], edges[1::2], strict=True) if b - a > 0.5]


def test_same_seed_same_data_and_rerun_replaces(tmp_path):
    spec = UntrimmedSpec(width=32, height=32, fps=4, min_gap=1.0, max_gap=2.0)
    a = make_untrimmed_sample(tmp_path / "a", videos=2, seconds=10, seed=9, spec=spec)
    b = make_untrimmed_sample(tmp_path / "b", videos=2, seconds=10, seed=9, spec=spec)
    assert _rows(tmp_path / "a") == _rows(tmp_path / "b") and a["segments"] == b["segments"]
    assert (tmp_path / "a").stat().st_mode & 0o777 == 0o755  # readable like any data folder
    again = make_untrimmed_sample(tmp_path / "a", videos=3, seconds=10, seed=1, spec=spec)
    assert len(list((tmp_path / "a" / "videos").iterdir())) == 3 and again["videos"] == 3
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    with pytest.raises(ForeignPathError):
        make_untrimmed_sample(foreign, videos=2, seconds=10, spec=spec)
    with pytest.raises(ValueError, match="seconds: 3 s is too short"):
        make_untrimmed_sample(tmp_path / "c", videos=2, seconds=3, spec=spec)

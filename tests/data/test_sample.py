"""The sample-data generator writes real, decodable, deterministic media."""

import json
from pathlib import Path

import av
import numpy as np

from vdg_tf.config import AudioSpec, VideoSpec
from vdg_tf.data.sample import make_sample_data
from vdg_tf.manifest import read_manifest
from vdg_tf.media.decode import decode_clip


def test_clips_are_mp4_with_h264_and_aac(sample_data):
    rows, problems = read_manifest(sample_data["manifest_train"])
    assert not problems and rows
    with av.open(rows[0].video) as c:
        assert c.streams.video[0].codec_context.name == "h264"
        assert c.streams.audio[0].codec_context.name == "aac"
        assert c.streams.audio[0].codec_context.sample_rate == 16000
        frames = sum(1 for _ in c.decode(video=0))
        assert frames >= 12  # at least 1 s at 12 fps
        c.seek(0)
        audio = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)])
        assert np.abs(audio).max() > 0.1  # a real tone, not silence


def test_labels_combine_three_cues_and_are_balanced(sample_data):
    rows = (
        read_manifest(sample_data["manifest_train"])[0]
        + read_manifest(sample_data["manifest_eval"])[0]
    )
    labels = [r.label for r in rows]
    assert len(set(labels)) == 8
    assert (
        max(labels.count(x) for x in set(labels)) - min(labels.count(x) for x in set(labels)) <= 1
    )
    for r in rows:
        word = r.label.split("-")[2]
        assert word in r.text.split()


def test_generator_is_deterministic(tmp_path):
    a = make_sample_data(tmp_path / "a", clips=3, seed=7)
    b = make_sample_data(tmp_path / "b", clips=3, seed=7)
    assert Path(a["manifest_train"]).read_text() == Path(b["manifest_train"]).read_text()
    # rendered content is identical; x264 output can differ by rounding between runs
    for name in ("00000.mp4", "00002.mp4"):
        fa, fb = (
            decode_clip(str(tmp_path / d / "clips" / name), VideoSpec(), AudioSpec()) for d in "ab"
        )
        assert np.abs(fa.frames.astype(float) - fb.frames).mean() < 2.0
        assert np.abs(fa.audio - fb.audio).max() < 0.05
    info = json.loads((tmp_path / "a/info.json").read_text())
    assert info["clips"] == 3


def test_fusion_is_necessary_by_construction():
    """One modality names at most half the classes (each cue value is shared by exactly two
    of the 8), and any two modalities name every class: the README's "fusion is necessary"."""
    from itertools import combinations

    from vdg_tf.data.sample import class_cues

    cues = [class_cues(k) for k in range(8)]
    assert len(set(cues)) == 8
    for m in range(3):
        values = [c[m] for c in cues]
        assert all(values.count(v) == 2 for v in values)  # a perfect one-modality model: 1/2
    for pair in combinations(range(3), 2):
        assert len({tuple(c[m] for m in pair) for c in cues}) == 8

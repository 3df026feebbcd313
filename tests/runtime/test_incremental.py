"""Incremental (ring-buffer) inference on real decoded video with a real tiny trained model:
encode_frame runs only on frames new since the last window, the outputs equal whole-window
inference, batches of windows work, and a model that cannot split says so in one line."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from vdg_tf.media.windows import read_windows
from vdg_tf.runtime.incremental import frame_keys
from vdg_tf.runtime.predict import Predictor, predict

_RUNS: dict = {}


def train_streamable(sample_data, folder):
    """A tiny `model.video_frames: independent` model trained on the sample data, trained
    once per session however many test modules ask (the modules share this cache)."""
    if "run" not in _RUNS:
        from tests.helpers import tiny_config
        from vdg_tf.training import train

        cfg = tiny_config(4)
        cfg = replace(cfg, model=replace(cfg.model, video_frames="independent"))
        _RUNS["run"] = train(cfg, sample_data["manifest_train"], folder, progress=False)
    return _RUNS["run"]


@pytest.fixture(scope="module")
def streamable_run(sample_data, tmp_path_factory):
    return train_streamable(sample_data, tmp_path_factory.mktemp("streamable"))


@pytest.fixture(scope="module")
def short_video(tmp_path_factory):
    """4 s of two sample-class parts (96x96, 12 fps, H.264 + AAC): 5 windows of 2 s every 0.5 s."""
    from tests.runtime.conftest import render_long_video

    path = tmp_path_factory.mktemp("short") / "short.mp4"
    render_long_video(path, classes=(1, 6), renders=1, seed=5)
    return path


def test_encode_frame_runs_only_on_new_frames(streamable_run, short_video):
    p = Predictor(streamable_run.out)
    assert p.incremental is not None
    records = predict(p, [str(short_video)], window=2.0, stride=0.5).records
    n, frames = len(records), p.bundle.config.data.video.frames  # 4 frames: one new a window
    assert n == 5  # (4 s - 2 s) / 0.5 s + 1
    assert p.incremental.encoded == frames + (n - 1) * frames // 4
    assert p.incremental.reused == (n - 1) * frames * 3 // 4
    assert len(p.incremental.ring) == frames  # the last window's embeddings only


def test_incremental_equals_whole_windows_in_batches(streamable_run, short_video):
    inc, full = Predictor(streamable_run.out), Predictor(streamable_run.out, incremental=False)
    assert full.incremental is None
    cfg = inc.bundle.config.data
    windows = list(read_windows(str(short_video), cfg.video, cfg.audio, 2.0, 0.5))
    a = np.concatenate([inc.outputs(windows[:4], ["a caption"] * 4),  # a batch of 4, then 1
                        inc.outputs(windows[4:], ["a caption"])])  # fmt: skip
    b = full.outputs(windows, ["a caption"] * len(windows))
    assert a.shape == b.shape == (len(windows), len(inc.labels))
    assert np.abs(a - b).max() < 1e-5
    assert (a.argmax(1) == b.argmax(1)).all()


def test_a_shared_frame_has_one_key_and_other_pixels_are_not_reused(short_video, streamable_run):
    p = Predictor(streamable_run.out)
    spec = p.bundle.config.data.video
    w0, w1 = list(read_windows(str(short_video), spec, p.bundle.config.data.audio, 2.0, 0.5))[:2]
    assert frame_keys(w0, spec)[1] == frame_keys(w1, spec)[0]  # the same sample time
    np.testing.assert_array_equal(w0.frames[1], w1.frames[0])  # and the same decoded frame
    p.outputs([w0], [""])
    changed = replace(w1, frames=w1.frames.copy())
    changed.frames[0] ^= 1  # same time, other pixels (another source): encoded anew
    before = p.incremental.encoded
    p.outputs([changed], [""])
    assert p.incremental.encoded - before == spec.frames // 4 + 1


def test_a_model_that_cannot_split_falls_back_with_one_line(trained_run, vdg_log):
    p = Predictor(trained_run.out)  # the default folded encoder
    assert p.incremental is None
    assert len(vdg_log) == 1 and "incremental inference off" in vdg_log[0]
    assert "mixes neighbouring frames" in vdg_log[0]
    assert "every window runs the whole model" in vdg_log[0]
    assert Predictor(trained_run.out, incremental=False).incremental is None
    assert len(vdg_log) == 1  # asked for whole windows: nothing to say

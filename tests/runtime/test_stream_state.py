"""Streaming the causal encoder (`model.video_frames: causal`) with its motion state: on real
decoded video with a real tiny trained model, window outputs from the carried state equal
the whole model's on each window (Keras and the LiteRT export), each frame is encoded once
while the stream goes on, and a jump restarts from a zero state with the same outputs."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import tf_keras as keras

from vdg_tf.media.windows import read_windows
from vdg_tf.models.layers import CausalFrameStack
from vdg_tf.runtime.predict import Predictor
from vdg_tf.runtime.stream_state import CausalRunner


@pytest.fixture(scope="module")
def causal_run(sample_data, tmp_path_factory):
    """A tiny causal model, one epoch: the equalities below hold for any weights."""
    from tests.helpers import tiny_config
    from vdg_tf.training import train

    cfg = tiny_config(1)
    cfg = replace(cfg, model=replace(cfg.model, video_frames="causal"))
    return train(cfg, sample_data["manifest_train"], tmp_path_factory.mktemp("causal"),
                 progress=False)  # fmt: skip


@pytest.fixture(scope="module")
def stream(causal_run, tmp_path_factory):
    """The run's predictors (state carried / whole windows) and the windows, 1 s every
    0.25 s (one new frame each), of 4 s of two sample-class parts (H.264 + AAC)."""
    from tests.runtime.conftest import render_long_video

    path = tmp_path_factory.mktemp("short") / "short.mp4"
    render_long_video(path, classes=(1, 6), renders=1, seed=5)
    inc, full = Predictor(causal_run.out), Predictor(causal_run.out, incremental=False)
    cfg = inc.bundle.config.data
    return inc, full, list(read_windows(str(path), cfg.video, cfg.audio, 1.0, 0.25))


def test_causal_frame_stack_puts_each_frame_beside_the_ones_before():
    x = np.arange(5, dtype=np.float32).reshape(1, 5, 1, 1, 1)  # frame t holds t
    y = CausalFrameStack(3)(x).numpy()
    assert y.shape == (1, 3, 1, 1, 3)
    np.testing.assert_array_equal(y[0, :, 0, 0], [[0, 1, 2], [1, 2, 3], [2, 3, 4]])
    again = CausalFrameStack.from_config(CausalFrameStack(3).get_config())
    assert again.kernel == 3
    with pytest.raises(ValueError, match="kernel"):
        CausalFrameStack(1)


def test_carried_state_equals_whole_windows_and_encodes_each_frame_once(stream):
    inc, full, ws = stream
    runner = inc.incremental
    assert isinstance(runner, CausalRunner) and runner.context == 2
    inc.reset()
    a = np.concatenate([inc.outputs([w], ["a caption"]) for w in ws])
    b = full.outputs(ws, ["a caption"] * len(ws))
    assert a.shape == b.shape == (len(ws), len(inc.labels))
    assert np.abs(a - b).max() < 1e-5
    frames = inc.bundle.config.data.video.frames
    assert runner.restarts == 1  # the stream's start; then one new frame a window
    assert runner.encoded == frames + len(ws) - 1
    # a batch of windows, and a jump (every other window): restarts, same outputs
    inc.reset()
    batched = np.concatenate([inc.outputs(ws[:3], ["a caption"] * 3),
                              inc.outputs(ws[3:], ["a caption"] * (len(ws) - 3))])  # fmt: skip
    assert np.abs(batched - b).max() < 1e-5
    inc.reset()
    restarts = runner.restarts
    skipped = np.concatenate([inc.outputs([w], ["a caption"]) for w in ws[::2]])
    assert np.abs(skipped - b[::2]).max() < 1e-5 and runner.restarts > restarts


def test_litert_export_carries_the_state_as_inputs_and_outputs(causal_run, stream, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    from vdg_tf.export.api import export_model
    from vdg_tf.runtime.incremental import LiteRTParts

    inc, full, ws = stream
    path = tmp_path / "causal.tflite"
    export_model(causal_run.out, "float32", path, incremental=True)
    sig = Interpreter(model_path=str(path)).get_signature_list()["encode_frame"]
    assert sig == {"inputs": ["frame", "motion_state"], "outputs": ["embedding", "motion_state"]}
    runner = CausalRunner(LiteRTParts(path), inc.bundle.config.data.video)
    out = np.concatenate([runner.outputs(inc.inputs([w], ["a caption"]), [w]) for w in ws])
    assert np.abs(out - full.outputs(ws, ["a caption"] * len(ws))).max() < 1e-5
    assert runner.restarts == 1


def test_causal_encoder_needs_three_frames():
    from vdg_tf.models.encoders.video import video_encoder

    with pytest.raises(ValueError, match="data.video.frames: 2 is too few"):
        video_encoder(keras.Input((2, 32, 32, 3)), 2, 32, frames_mode="causal")

"""Model builders: contracted inputs, one training step, save/load with identical outputs."""

import numpy as np
import pytest

from tests.conftest import tiny_config
from vdg_tf.models import FUSIONS, build_classifier, get_fusion, inference_model
from vdg_tf.training.artifacts import load_model, save_model_atomic
from vdg_tf.training.train import compile_classifier


def random_batch(cfg, n=4, vocab=50, spec_frames=101):
    rng = np.random.default_rng(0)
    v, a, t = cfg.data.video, cfg.data.audio, cfg.data.text
    x = {
        "video": rng.random((n, v.frames, v.size, v.size, 3), dtype=np.float32),
        "audio": rng.standard_normal((n, spec_frames, a.mels, 1)).astype(np.float32),
        "text": rng.integers(0, vocab, (n, t.max_tokens)).astype(np.int32),
    }
    for m in ("video", "audio", "text"):
        x[f"{m}_mask"] = np.ones((n, 1), np.float32)
    return x, rng.integers(0, 3, n).astype(np.int32)


@pytest.mark.parametrize("fusion", sorted(FUSIONS))
def test_builds_trains_a_step_and_round_trips(fusion, tmp_path):
    cfg = tiny_config()
    cfg.model.fusion = fusion
    model = build_classifier(cfg, num_classes=3, vocab_size=50, spec_frames=101)
    assert sorted(model.input_names) == [
        "audio",
        "audio_mask",
        "text",
        "text_mask",
        "video",
        "video_mask",
    ]
    assert sorted(model.output_names) == ["audio_head", "fused", "text_head", "video_head"]
    x, y = random_batch(cfg)
    compile_classifier(model, cfg, steps_per_epoch=1)
    before = [w.copy() for w in model.get_weights()]
    model.fit(x, {n: y for n in model.output_names}, epochs=1, verbose=0)
    assert any(not np.allclose(b, a) for b, a in zip(before, model.get_weights(), strict=True))

    save_model_atomic(model, tmp_path / "m.keras")
    again = load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(again(x)["fused"], model(x)["fused"], atol=1e-6)
    probs = inference_model(model)(x).numpy()
    assert probs.shape == (4, 3)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)


def test_mask_zeroes_a_modality():
    cfg = tiny_config()
    model = build_classifier(cfg, num_classes=3, vocab_size=50, spec_frames=101)
    x, _ = random_batch(cfg)
    x["audio_mask"][:] = 0.0
    noisy = dict(x, audio=x["audio"] * 5.0)
    np.testing.assert_allclose(model(x)["fused"], model(noisy)["fused"], atol=1e-6)


def test_unknown_fusion_lists_the_known_ones():
    with pytest.raises(
        ValueError, match="model.fusion: unknown 'late' \\(known: serial, parallel\\)"
    ):
        get_fusion("late")


def test_video_size_must_fit_the_strides():
    cfg = tiny_config()
    cfg.data.video.size = 36
    with pytest.raises(ValueError, match="data.video.size: 36"):
        build_classifier(cfg, 3, 50, 101)


def test_parallel_fusion_ignores_missing_modality():
    """With a modality masked, the mean is over the others: not dragged towards zero."""
    cfg = tiny_config()
    cfg.model.fusion = "parallel"
    model = build_classifier(cfg, num_classes=3, vocab_size=50, spec_frames=101)
    x, _ = random_batch(cfg)
    x["text_mask"][:] = 0.0
    layer = model.get_layer("fusion_mean")
    probe = type(model)(model.inputs, layer.output)
    total = type(model)(model.inputs, model.get_layer("fusion_sum").output)(x).numpy()
    np.testing.assert_allclose(probe(x).numpy(), total / 2.0, rtol=1e-5, atol=1e-6)

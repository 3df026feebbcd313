"""Image and audio backbones: frames folded into the batch, weights from a saved file,
clear errors on a file of another backbone, QAT coverage and an int8 TFLite export."""

from __future__ import annotations

import numpy as np
import pytest
import tf_keras as keras

from tests.helpers import tiny_config
from tests.models.test_builder import random_batch
from vdg_tf.bundle import load_model, save_model
from vdg_tf.compression import quantize_aware
from vdg_tf.export.inspect import inspect_tflite
from vdg_tf.export.litert import LiteRTModel
from vdg_tf.export.tflite import ExportConfig, convert
from vdg_tf.models import build_classifier, inference_model
from vdg_tf.models.backbones import (
    VIDEO_BACKBONES,
    backbone_layers,
    set_backbone_trainable,
    standalone_backbone,
)
from vdg_tf.models.layers import FoldFrames, UnfoldFrames

SIZE, FRAMES = 32, 2


def backbone_config(backbone="mobilenet_v2_0.35", weights=None, modalities=("video",)):
    cfg = tiny_config()
    cfg.data.video.size, cfg.data.video.frames = SIZE, FRAMES
    cfg.model.modalities = modalities
    cfg.model.video_backbone, cfg.model.weights = backbone, weights
    return cfg


def test_fold_and_unfold_are_inverse_and_serialise():
    x = np.arange(2 * 3 * 4 * 4 * 3, dtype=np.float32).reshape(2, 3, 4, 4, 3)
    folded = FoldFrames()(x)
    assert folded.shape == (6, 4, 4, 3)
    np.testing.assert_array_equal(folded[4], x[1, 1])
    unfold = UnfoldFrames(3)
    np.testing.assert_array_equal(unfold(folded), x)
    again = UnfoldFrames.from_config(unfold.get_config())
    assert again.frames == 3


@pytest.mark.parametrize("suffix", [".h5", ".weights.h5"])
def test_weights_load_from_a_saved_file(tmp_path, suffix):
    source = standalone_backbone("mobilenet_v2_0.35", SIZE)
    path = tmp_path / f"mnv2_035{suffix}"
    source.save_weights(str(path))
    model = build_classifier(backbone_config(weights=str(path)), 3, 50, 101)
    for name in ("Conv1", "block_5_project", "Conv_1_bn"):
        for got, want in zip(
            model.get_layer(f"video_bb_{name}").get_weights(),
            source.get_layer(name).get_weights(),
            strict=True,
        ):
            np.testing.assert_array_equal(got, want)
    x, _ = random_batch(backbone_config())
    assert model(x)["fused"].shape == (4, 3)


def test_weights_of_another_width_name_the_file_and_layer(tmp_path):
    path = tmp_path / "mnv2_100.h5"
    standalone_backbone("mobilenet_v2_1.0", SIZE).save_weights(str(path))
    with pytest.raises(ValueError, match=r"mnv2_100.h5: not weights of mobilenet_v2_0.35: layer '"):
        build_classifier(backbone_config(weights=str(path)), 3, 50, 101)


def test_weights_path_that_does_not_exist(tmp_path):
    missing = tmp_path / "nope.h5"
    with pytest.raises(ValueError, match=r"model.weights: .*nope.h5: no such file"):
        build_classifier(backbone_config(weights=str(missing)), 3, 50, 101)


def test_weights_without_a_backbone_is_an_error(tmp_path):
    cfg = backbone_config(backbone="none", weights=str(tmp_path / "w.h5"))
    cfg.data.video.size = 32
    with pytest.raises(ValueError, match="model.weights: .* needs a model.video_backbone"):
        build_classifier(cfg, 3, 50, 101)


def test_backbone_model_round_trips_and_freezes(tmp_path):
    cfg = backbone_config(modalities=("video", "audio", "text"))
    cfg.model.audio_backbone = "yamnet_0.25"
    model = build_classifier(cfg, 3, 50, 101)
    x, _ = random_batch(cfg)
    save_model(model, tmp_path / "m.keras")
    again = load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(again(x)["fused"], model(x)["fused"], atol=1e-5)
    frozen = set_backbone_trainable(model, False)
    assert frozen == len(backbone_layers(model)) > 50
    assert all(not w.name.startswith("video_bb_") for w in model.trainable_weights)
    set_backbone_trainable(model, True)
    assert any("Conv1" in w.name for w in model.trainable_weights)


@pytest.mark.slow
def test_mobilenet_v2_goes_through_qat_and_int8_tflite(tmp_path):
    """QAT annotates every backbone conv (fold/unfold pass through); int8 TFLite runs."""
    cfg = backbone_config(modalities=("video", "audio"))
    model = build_classifier(cfg, 3, 50, 101)
    result = quantize_aware(model)
    video_float = [n for n in result.float_layers if n.startswith("video")]
    # the mask Multiply is every model's (the converter quantizes it post-training)
    assert video_float == ["video_rescale (Rescaling)", "video_masked (Multiply)"], video_float
    x, _ = random_batch(cfg, n=4)

    def representative():
        for i in range(4):
            yield {k: v[i : i + 1] for k, v in x.items() if not k.startswith("text")}

    qat_model = inference_model(result.model)
    data = convert(qat_model, ExportConfig("edge-int8", representative))
    path = tmp_path / "m.tflite"
    path.write_bytes(data)
    report = inspect_tflite(path)
    assert report["int8_op_fraction"] > 0.9, report
    probs = LiteRTModel(path).predict_one({k: v[0] for k, v in x.items() if "text" not in k})
    assert probs.shape == (3,) and abs(float(probs.sum()) - 1.0) < 0.02


def test_unknown_backbone_lists_the_known_ones():
    from vdg_tf.config import Config, ConfigError

    with pytest.raises(ConfigError, match="model.video_backbone: unknown 'resnet' \\(known: "):
        Config.from_dict({"model": {"video_backbone": "resnet"}})
    assert "mobilenet_v2_0.35" in VIDEO_BACKBONES


@pytest.mark.parametrize("backbone", ["efficientnet_b0", "mobilenet_v3_small"])
def test_other_backbones_go_through_qat_with_their_float_layers_listed(backbone):
    model = build_classifier(backbone_config(backbone, modalities=("video", "text")), 3, 50, 101)
    result = quantize_aware(model)
    assert any(n.endswith("(Multiply)") for n in result.float_layers)  # squeeze-excite
    convs = [
        layer for layer in result.model.layers
        if type(layer).__name__ == "QuantizeWrapperV2"
        and isinstance(layer.layer, keras.layers.Conv2D)
    ]  # fmt: skip
    assert len(convs) > 20


@pytest.mark.slow
@pytest.mark.parametrize("frozen", [2, 1])
def test_freeze_backbone_epochs_then_fine_tune(frozen):
    """All epochs frozen: the backbone keeps its weights; one frozen: it learns after."""
    from vdg_tf.training.finetune import fit_in_phases
    from vdg_tf.training.train import compile_classifier

    cfg = backbone_config(modalities=("video", "audio"))
    cfg.train.epochs, cfg.train.freeze_backbone_epochs = 2, frozen
    model = build_classifier(cfg, 3, 50, 101)
    x, y = random_batch(cfg)
    conv = model.get_layer("video_bb_block_1_expand")
    before, head = conv.get_weights()[0].copy(), model.get_layer("fused").get_weights()[0].copy()
    history = fit_in_phases(
        model,
        cfg,
        lambda m, c, epochs: compile_classifier(m, c, 1, epochs),
        lambda **kw: model.fit(x, {n: y for n in model.output_names}, verbose=0, **kw),
    )
    assert len(history.history["loss"]) == 2
    assert not np.allclose(head, model.get_layer("fused").get_weights()[0])
    assert np.allclose(before, conv.get_weights()[0]) == (frozen == 2)
    assert conv.trainable


def test_a_video_only_backbone_model_goes_through_qat():
    """One modality: serial fusion has nothing to concatenate, and QAT clones the model."""
    result = quantize_aware(build_classifier(backbone_config(modalities=("video",)), 3, 50, 101))
    assert "video_rescale (Rescaling)" in result.float_layers

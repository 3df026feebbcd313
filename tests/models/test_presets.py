"""Presets: one name gives a whole configuration, explicit keys win, each preset builds."""

from __future__ import annotations

import pytest

from vdg_tf.config import Config, ConfigError
from vdg_tf.models import build_classifier
from vdg_tf.models.presets import PRESETS


def test_tiny_is_todays_default_model():
    default, tiny = Config(), Config.from_dict({"model": {"preset": "tiny"}})
    assert tiny.data == default.data
    assert {**vars(tiny.model), "preset": None} == vars(default.model)


def test_explicit_keys_override_the_preset_and_the_file_holds_resolved_values(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: {preset: small, fused_dim: 48}\ndata: {video: {size: 160}}\n")
    cfg = Config.load(path)
    assert (cfg.model.video_backbone, cfg.model.fused_dim) == ("mobilenet_v2_1.0", 48)
    assert (cfg.data.video.size, cfg.data.video.frames) == (160, 8)
    cfg.save(tmp_path / "saved.yaml")
    assert Config.load(tmp_path / "saved.yaml") == cfg
    base = cfg.with_overrides({"model": {"preset": "base"}})
    assert (base.data.video.size, base.model.fused_dim) == (224, 256)
    assert cfg.with_overrides({"train": {"epochs": 2}}).model.fused_dim == 48


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(
        ConfigError, match=r"config.model.preset: unknown 'huge' \(known: base, small, tiny\)"
    ):
        Config.from_dict({"model": {"preset": "huge"}})


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_each_preset_builds_at_its_input_size(name):
    cfg = Config.from_dict({"model": {"preset": name}})
    model = build_classifier(cfg, num_classes=5, vocab_size=400, spec_frames=201)
    v = cfg.data.video
    shapes = {t.name.split(":")[0]: tuple(t.shape) for t in model.inputs}
    assert shapes["video"] == (None, v.frames, v.size, v.size, 3)
    assert shapes["audio"] == (None, 201, cfg.data.audio.mels, 1)
    assert shapes["text"] == (None, cfg.data.text.max_tokens)
    assert model.output["fused"].shape == (None, 5)
    has_backbone = any(layer.name.startswith("video_bb_") for layer in model.layers)
    assert has_backbone == (name != "tiny")


def test_the_shipped_pretrained_config_loads():
    cfg = Config.load("configs/small_pretrained.yaml")
    assert (cfg.model.video_backbone, cfg.model.weights) == ("mobilenet_v2_1.0", "imagenet")
    assert (cfg.data.video.size, cfg.train.freeze_backbone_epochs) == (112, 3)

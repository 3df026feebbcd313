"""Config dataclasses round-trip through YAML and refuse unknown keys by name."""

import pytest

from vdg_tf.config import Config


def test_yaml_round_trip(tmp_path):
    cfg = Config()
    cfg.model.fusion = "parallel"
    cfg.data.video.frames = 4
    cfg.save(tmp_path / "c.yaml")
    assert Config.load(tmp_path / "c.yaml") == cfg


def test_unknown_key_is_named(tmp_path):
    (tmp_path / "c.yaml").write_text("model:\n  fusoin: serial\n")
    with pytest.raises(ValueError, match=r"config.model: unknown key\(s\) \['fusoin'\]"):
        Config.load(tmp_path / "c.yaml")

"""YAML that expands without bound (an alias chain, a recursive alias) is refused at once,
and no error message formats more of a value than it prints."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from vdg_tf.bundle import Bundle
from vdg_tf.config import Config, ConfigError, load_yaml, parse_yaml


def _bomb(levels: int = 10, width: int = 9) -> str:
    """A "billion laughs" alias chain: `width ** levels` values from a few hundred bytes."""
    chain = [f"&a0 [{', '.join(['1'] * width)}]"]
    for i in range(1, levels):
        chain.append(f"&a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
    return "train: {epochs: [" + ", ".join(chain) + "]}\n"


def test_an_alias_chain_is_refused_with_one_line(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(_bomb())
    assert path.stat().st_size < 700
    with pytest.raises(ConfigError, match=r"bomb\.yaml: YAML aliases expand to over 100,000"):
        Config.load(path)


def test_a_recursive_alias_is_refused():
    with pytest.raises(ConfigError, match="f.yaml: line 1: a recursive YAML alias"):
        parse_yaml("a: &x [1, *x]\n", "f.yaml")


def test_ordinary_anchors_still_load(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("base: &lr {learning_rate: 0.01}\nother: *lr\n")
    assert load_yaml(path) == {"base": {"learning_rate": 0.01}, "other": {"learning_rate": 0.01}}


def test_the_bomb_through_the_command_line_and_a_pipeline_ends_at_once(sample_data, tmp_path):
    """Both entry points in a real `vdg` process (a hang would end at the subprocess timeout,
    which only guards the suite: the refusal happens before any work)."""
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(_bomb())
    pipeline = tmp_path / "pipe.yaml"
    pipeline.write_text("name: p\nstages:\n  - train: " + _bomb().split("train: ", 1)[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    data = str(sample_data["manifest_train"])
    for args in (
        ["train", "--config", str(bomb), "--data", data, "--out", str(tmp_path / "r")],
        ["run", str(pipeline), "--data", data, "--eval-data", data, "--out", str(tmp_path / "p")],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "vdg_tf.cli", *args],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
        last = done.stderr.strip().splitlines()[-1]
        assert done.returncode == 2, done.stderr[-2000:]
        assert "YAML aliases expand to over 100,000 values" in last and len(last) < 300
        assert not (tmp_path / "r").exists() and not (tmp_path / "p").exists()


def test_a_bomb_inside_a_model_files_config_is_refused():
    texts = {"config.yaml": _bomb(), "labels.txt": "a\nb\n"}
    with pytest.raises(ConfigError, match="run: config.yaml: YAML aliases expand"):
        Bundle.from_texts(texts, "run")


def test_a_huge_wrong_value_gives_a_short_error(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("train: {epochs: [" + ", ".join(map(str, range(50_000))) + "]}\n")
    with pytest.raises(ConfigError) as e:
        Config.load(path)
    assert "train.epochs" in str(e.value) and len(str(e.value)) < 300

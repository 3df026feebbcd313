"""Config loading: every bad value is refused at load with one line naming its field;
ready configs and pipeline overrides load; configs round-trip through dicts and YAML."""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest
import yaml

from vdg_tf.config import Config, ConfigError, load_dataclass

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))
PIPELINES = sorted((ROOT / "pipelines").glob("*.yaml"))


def _nest(path: str, value):
    """`("a.b.c", v)` -> `{"a": {"b": {"c": v}}}`."""
    for key in reversed(path.split(".")):
        value = {key: value}
    return value


# (dotted field, bad value, the whole error line)
BAD = [
    ("data.batch_size", "16", "config.data.batch_size: expected an integer, got '16' (str)"),
    ("data.batch_size", True, "config.data.batch_size: expected an integer, got True (bool)"),
    ("data.batch_size", 2.5, "config.data.batch_size: expected an integer, got 2.5 (float)"),
    ("data.batch_size", 0, "config.data.batch_size: must be >= 1, got 0"),
    ("train.epochs", -3, "config.train.epochs: must be >= 1, got -3"),
    ("train.patience", -1, "config.train.patience: must be >= 0, got -1"),
    ("data.video.frames", 0, "config.data.video.frames: must be >= 1, got 0"),
    ("data.video.size", 4, "config.data.video.size: must be >= 8, got 4"),
    ("data.video.fps", "x", "config.data.video.fps: expected a number or null, got 'x' (str)"),
    ("data.video.fps", 0, "config.data.video.fps: must be > 0, got 0.0"),
    ("data.video.resize", "squash", "config.data.video.resize: unknown 'squash' (known: crop, pad, stretch)"),
    ("data.strict", "false", "config.data.strict: expected true or false, got 'false' (str)"),
    ("data.cache", 1, "config.data.cache: expected true or false, got 1 (int)"),
    ("data.normal_labels", "normal",
     "config.data.normal_labels: expected a list of strings, got 'normal' (str)"),
    ("data.normal_labels", [], "config.data.normal_labels: must not be empty, got []"),
    ("data.normal_labels", [1], "config.data.normal_labels[0]: expected a string, got 1 (int)"),
    ("data.shuffle_buffer", 0, "config.data.shuffle_buffer: must be >= 1, got 0"),
    ("data.decoder", "gpu", "config.data.decoder: unknown 'gpu' (known: processes, threads)"),
    ("data.decode_workers", -1, "config.data.decode_workers: must be >= 0, got -1"),
    ("data.audio.sample_rate", 800, "config.data.audio.sample_rate: must be >= 1000, got 800"),
    ("data.audio.mels", 0, "config.data.audio.mels: must be >= 1, got 0"),
    ("data.text.max_tokens", 0, "config.data.text.max_tokens: must be >= 1, got 0"),
    ("data.text.vocab_size", 1, "config.data.text.vocab_size: must be >= 2, got 1"),
    ("data.text.tokenizer", "bpe", "config.data.text.tokenizer: unknown 'bpe' (known: byte, wordpiece)"),
    ("data.augment", 3, "config.data.augment: expected a mapping or null, got 3 (int)"),
    ("data.augment.flip", "yes", "config.data.augment.flip: expected true or false, got 'yes' (str)"),
    ("data.augment.token_dropout", 1.0,
     "config.data.augment.token_dropout: must be in [0, 1), got 1.0"),
    ("data.video", [8], "config.data.video: expected a mapping, got [8] (list)"),
    ("model.modalities", "video",
     "config.model.modalities: expected a list of strings, got 'video' (str)"),
    ("model.modalities", [], "config.model.modalities: must not be empty, got []"),
    ("model.modalities", ["video", "video"], "config.model.modalities: 'video' is given twice"),
    ("model.modalities", ["video", "smell"],
     "config.model.modalities[1]: unknown 'smell' (known: audio, text, video)"),
    ("model.width", 0, "config.model.width: must be >= 1, got 0"),
    ("model.embed_dim", 0, "config.model.embed_dim: must be >= 1, got 0"),
    ("model.fused_dim", -8, "config.model.fused_dim: must be >= 1, got -8"),
    ("model.dropout", 1.0, "config.model.dropout: must be in [0, 1), got 1.0"),
    ("model.dropout", -0.1, "config.model.dropout: must be in [0, 1), got -0.1"),
    ("model.modality_dropout", 1.5, "config.model.modality_dropout: must be in [0, 1), got 1.5"),
    ("model.fusion_weights", "0.5",
     "config.model.fusion_weights: expected a list of numbers or null, got '0.5' (str)"),
    ("model.fusion_weights", [1, -1], "config.model.fusion_weights[1]: must be >= 0, got -1.0"),
    ("model.fusion", 3, "config.model.fusion: expected a string, got 3 (int)"),
    ("train.learning_rate", 0, "config.train.learning_rate: must be > 0, got 0.0"),
    ("train.learning_rate", "3e-3",
     "config.train.learning_rate: expected a number, got '3e-3' (str)"),
    ("train.learning_rate", True, "config.train.learning_rate: expected a number, got True (bool)"),
    ("train.learning_rate", math.nan, "config.train.learning_rate: expected a finite number, got nan"),
    ("train.learning_rate", math.inf, "config.train.learning_rate: expected a finite number, got inf"),
    ("train.label_smoothing", 1, "config.train.label_smoothing: must be in [0, 1), got 1.0"),
]  # fmt: skip


@pytest.mark.parametrize(("key", "value", "error"), BAD, ids=[f"{k}={v!r}" for k, v, _ in BAD])
def test_bad_value_is_one_line_naming_the_field(key, value, error):
    with pytest.raises(ConfigError) as e:
        Config.from_dict(_nest(key, value))
    assert str(e.value) == error


@pytest.mark.parametrize(
    ("d", "error"),
    [
        (
            {"model": {"fusoin": "serial"}},
            "config.model.fusoin: unknown key (known: audio_backbone, dropout, ",
        ),
        ({"dat": {}}, "config.dat: unknown key (known: data, model, train)"),
        ({"data": {1: 2}}, "config.data: keys must be names, got 1 (int)"),
        ([1], "config: expected a mapping, got [1] (list)"),
    ],
)
def test_bad_shape_is_one_line_naming_the_place(d, error):
    with pytest.raises(ConfigError) as e:
        Config.from_dict(d)
    assert str(e.value).startswith(error)
    assert "\n" not in str(e.value)


# Choices whose names live in a later stage's table, imported at load.
REGISTRY = [
    ("model.fusion", "config.model.fusion: unknown 'foo' (known: attention, gated, hybrid, "),
    ("model.temporal", "config.model.temporal: unknown 'foo' (known: attention, conv, gru, pool)"),
    (
        "model.text_encoder",
        "config.model.text_encoder: unknown 'foo' (known: conv, gru, lstm, transformer)",
    ),
    ("train.schedule", "config.train.schedule: unknown 'foo' (known: constant, cosine, "),
    ("train.mixed_precision", "config.train.mixed_precision: unknown 'foo' (known: auto, off, on)"),
    ("train.strategy", "config.train.strategy: unknown 'foo' (known: auto, default, mirrored, "),
    ("data.task", "config.data.task: unknown 'foo' (known: "),
]


@pytest.mark.parametrize(("key", "error"), REGISTRY, ids=[k for k, _ in REGISTRY])
def test_registry_choice_is_checked_at_load(key, error):
    with pytest.raises(ConfigError) as e:
        Config.from_dict(_nest(key, "foo"))
    assert str(e.value).startswith(error)
    assert "\n" not in str(e.value)


def test_registry_choice_accepts_every_registered_name():
    from vdg_tf.models.fusion import FUSIONS

    for name in FUSIONS:
        assert Config.from_dict({"model": {"fusion": name}}).model.fusion == name


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_ready_config_loads(path):
    assert isinstance(Config.load(path), Config)


@pytest.mark.parametrize("path", PIPELINES, ids=[p.name for p in PIPELINES])
def test_every_pipeline_config_section_loads(path):
    section = yaml.safe_load(path.read_text()).get("config")
    cfg = Config().with_overrides(section)
    assert cfg == Config.from_dict(section)


def test_ready_configs_and_pipelines_exist():
    assert CONFIGS and PIPELINES


def _changed() -> Config:
    cfg = Config()
    cfg.data.task = "anomaly"
    cfg.data.normal_labels = ("left", "right")
    cfg.data.video.frames = 4
    cfg.data.video.fps = 2.5
    cfg.data.augment = None
    cfg.model.modalities = ("video", "text")
    cfg.model.fusion = "hybrid"
    cfg.model.fusion_weights = (0.25, 0.75)
    cfg.train.learning_rate = 1e-4
    return cfg


@pytest.mark.parametrize("cfg", [Config(), _changed()], ids=["defaults", "changed"])
def test_round_trip_through_dict_and_yaml(cfg, tmp_path):
    assert Config.from_dict(cfg.to_dict()) == cfg
    cfg.save(tmp_path / "c.yaml")
    assert Config.load(tmp_path / "c.yaml") == cfg


def test_lists_become_the_annotated_tuples():
    cfg = Config.from_dict({"model": {"modalities": ["video"], "fusion_weights": [1]}})
    assert cfg.model.modalities == ("video",)
    assert cfg.model.fusion_weights == (1.0,)
    assert isinstance(cfg.model.fusion_weights[0], float)


def test_with_overrides_deep_merges_and_checks():
    base = _changed()
    cfg = base.with_overrides({"data": {"video": {"size": 32}}, "train": {"epochs": 2}})
    assert (cfg.data.video.size, cfg.data.video.frames, cfg.train.epochs) == (32, 4, 2)
    assert cfg.model == base.model and cfg.data.normal_labels == ("left", "right")
    assert base.data.video.size == 64  # the original is left as it was
    assert base.with_overrides({"data": {"augment": {"flip": True}}}).data.augment.flip
    assert base.with_overrides(None) == base
    with pytest.raises(ConfigError, match=r"^config\.data\.video\.frames: must be >= 1, got 0$"):
        base.with_overrides({"data": {"video": {"frames": 0}}})


def test_load_reads_yaml_1_2_numbers(tmp_path):
    (tmp_path / "c.yaml").write_text("train: {learning_rate: 3e-3}\nmodel: {l2: 1E-5}\n")
    cfg = Config.load(tmp_path / "c.yaml")
    assert (cfg.train.learning_rate, cfg.model.l2) == (3e-3, 1e-5)


def test_empty_file_gives_defaults(tmp_path):
    (tmp_path / "c.yaml").write_text("# nothing set\n")
    assert Config.load(tmp_path / "c.yaml") == Config()


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("model:\n  fusion: [serial\n", "invalid YAML at line 3, column 1: "),
        ("- data\n- model\n", "expected a mapping of sections (data, model, train), got list"),
        ("plain words\n", "expected a mapping of sections (data, model, train), got str"),
        ("model:\n  fusoin: serial\n", "config.model.fusoin: unknown key (known: "),
        ("data: {batch_size: '16'}\n", "config.data.batch_size: expected an integer, got '16'"),
    ],
    ids=["syntax", "list", "scalar", "unknown-key", "wrong-type"],
)
def test_load_error_is_one_line_naming_the_file(tmp_path, text, error):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        Config.load(path)
    assert str(e.value).startswith(f"{path}: {error}")
    assert "\n" not in str(e.value)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.yaml: cannot read config: "):
        Config.load(tmp_path / "nope.yaml")


# Pipeline stage options: the real classes, loaded from a real pipeline file


def _load_pipeline(tmp_path, d):
    from vdg_tf.pipeline import PipelineSpec

    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(d))
    return path, PipelineSpec.load(path)


def _with(stage: dict) -> dict:
    """A pipeline whose stage 2 is `stage` (a train stage option goes to stage 0)."""
    if "train" in stage:
        return {"stages": [stage]}
    return {"stages": [{"train": {}}, {"prune": {}}, stage]}


# (stage mapping, the whole error line after the file name)
BAD_STAGES = [
    ({"qat": {"epochs": -3}}, "stages[2].qat.epochs: must be >= 1, got -3"),
    ({"qat": {"epochs": 2.5}}, "stages[2].qat.epochs: expected an integer, got 2.5 (float)"),
    ({"qat": {"epocs": 2}}, "stages[2].qat.epocs: unknown key (known: epochs, preserve_clusters, "
                            "preserve_sparsity)"),
    ({"cluster": {"clusters": 2}}, "stages[2].cluster.clusters: must be >= 3, got 2"),
    ({"cluster": {"epochs": 0}}, "stages[2].cluster.epochs: must be >= 1, got 0"),
    ({"cluster": {"min_weights": -1}}, "stages[2].cluster.min_weights: must be >= 0, got -1"),
    ({"prune": {"epochs": 0}}, "stages[2].prune.epochs: must be >= 1, got 0"),
    ({"prune": {"frequency": 0}}, "stages[2].prune.frequency: must be >= 1, got 0"),
    ({"prune": {"min_weights": -5}}, "stages[2].prune.min_weights: must be >= 0, got -5"),
    ({"prune": {"target_sparsity": 1.0}},
     "stages[2].prune.target_sparsity: must be in [0, 1), got 1.0"),
    ({"prune": {"schedule": "cubic"}},
     "stages[2].prune.schedule: unknown 'cubic' (known: constant, polynomial)"),
    ({"prune": {"targets": {"video": 1.5}}},
     "stages[2].prune.targets.video: must be in [0, 1), got 1.5"),
    ({"prune": {"m_by_n": [4, 2]}},
     "stages[2].prune.m_by_n: needs m < n (m zeros in every n weights), got (4, 2)"),
    ({"prune": {"m_by_n": [0, 4]}}, "stages[2].prune.m_by_n[0]: must be >= 1, got 0"),
    ({"prune": {"m_by_n": [2, 4, 8]}},
     "stages[2].prune.m_by_n: expected a list of 2 integers or null, got [2, 4, 8] (list)"),
    ({"prune": {"skip": ["fused", "fused"]}}, "stages[2].prune.skip: 'fused' is given twice"),
    ({"int4_qat": {"epochs": 0}}, "stages[2].int4_qat.epochs: must be >= 1, got 0"),
    ({"distill": {"alpha": 1.5}}, "stages[2].distill.alpha: must be in [0, 1], got 1.5"),
    ({"distill": {"temperature": 0}}, "stages[2].distill.temperature: must be > 0, got 0.0"),
    ({"distill": {"epochs": 0}}, "stages[2].distill.epochs: must be >= 1, got 0"),
    ({"export": {"targets": []}}, "stages[2].export.targets: must not be empty, got []"),
    ({"export": {"targets": ["float32", "float32"]}},
     "stages[2].export.targets: 'float32' is given twice"),
    ({"export": {"calibration_samples": 0}},
     "stages[2].export.calibration_samples: must be >= 1, got 0"),
    ({"export": {"sources": {"gpu-fp16": "qat"}}},
     "stages[2].export.sources: 'gpu-fp16' is not one of the targets (float32, edge-int8)"),
    ({"export": {"sources": {"edge-int8": "best"}}},
     "stages[2].export.sources.edge-int8: unknown 'best' (known: clustered, distilled, int4_aware, "
     "latest, pruned, qat, trained)"),
    ({"sweep": {"sparsity": [0.5, 1.0]}}, "stages[2].sweep.sparsity[1]: must be in [0, 0.99], got 1.0"),
    ({"sweep": {"qat": {"epochs": 0}}}, "stages[2].sweep.qat.epochs: must be >= 1, got 0"),
    ({"sweep": {"prune": {"frequency": 0}}}, "stages[2].sweep.prune.frequency: must be >= 1, got 0"),
    ({"sweep": {"int4_qat": {"epochs": -1}}},
     "stages[2].sweep.int4_qat.epochs: must be >= 1, got -1"),
    ({"train": {"epochs": 0}}, "stages[0].train.epochs: must be >= 1, got 0"),
    ({"train": {"learning_rate": 0}}, "stages[0].train.learning_rate: must be > 0, got 0.0"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("stage", "error"),
    BAD_STAGES,
    ids=[e.split(":")[0] + str(list(s.values())[0]) for s, e in BAD_STAGES],
)
def test_bad_stage_option_fails_at_load_naming_file_and_field(tmp_path, stage, error):
    with pytest.raises(ConfigError) as e:
        _load_pipeline(tmp_path, _with(stage))
    assert str(e.value) == f"{tmp_path / 'pipeline.yaml'}: {error}"


@pytest.mark.parametrize(
    ("top", "error"),
    [
        ({"finetune_lr_scale": 0}, "finetune_lr_scale: must be in (0, 1], got 0.0"),
        ({"finetune_lr_scale": "x"}, "finetune_lr_scale: expected a number, got 'x' (str)"),
        ({"stages": []}, "stages: must not be empty, got []"),
        ({"stages": [3]}, "stages[0]: expected a mapping, got 3 (int)"),
        ({"extra": 1}, "extra: unknown key (known: config, finetune_lr_scale, name, stages)"),
    ],
)
def test_bad_pipeline_top_level_fails_at_load(tmp_path, top, error):
    with pytest.raises(ConfigError) as e:
        _load_pipeline(tmp_path, {"stages": [{"train": {}}], **top})
    assert str(e.value) == f"{tmp_path / 'pipeline.yaml'}: {error}"


def test_stage_options_load_as_the_real_classes(tmp_path):
    from vdg_tf.compression import PruneConfig, QATConfig
    from vdg_tf.compression.cluster import ClusterConfig

    _, spec = _load_pipeline(tmp_path, {"stages": [
        {"train": {}},
        {"prune": {"m_by_n": [2, 4], "skip": ["fused"], "targets": {"video": 0.75}, "frequency": 5}},
        {"cluster": {"clusters": 8, "min_weights": 0}},
        {"qat": {"epochs": 1, "preserve_clusters": True}},
    ]})  # fmt: skip
    prune, cluster, qat = (s.options for s in spec.stages[1:])
    assert prune == PruneConfig(
        frequency=5, skip=("fused",), targets={"video": 0.75}, m_by_n=(2, 4)
    )
    assert cluster == ClusterConfig(clusters=8, min_weights=0)
    assert qat == QATConfig(epochs=1, preserve_clusters=True)


def _settings_classes() -> list[type]:
    """Every settings dataclass a user's file reaches: the config tree, the pipeline file,
    each stage's options and the compression configs they build."""
    from vdg_tf.compression import Int4QATConfig, PruneConfig, QATConfig
    from vdg_tf.compression.cluster import ClusterConfig
    from vdg_tf.compression.distill import DistillConfig
    from vdg_tf.pipeline.spec import PipelineFile
    from vdg_tf.pipeline.stages import STAGES

    found, todo = [], [Config, PipelineFile, PruneConfig, ClusterConfig, QATConfig,
                        Int4QATConfig, DistillConfig, *(s.Options for s in STAGES.values())]  # fmt: skip
    while todo:
        cls = todo.pop()
        if cls in found:
            continue
        found.append(cls)
        todo += [t for t in typing.get_type_hints(cls).values() if dataclasses.is_dataclass(t)]
        for t in typing.get_type_hints(cls).values():  # `X | None` sections
            todo += [a for a in typing.get_args(t) if dataclasses.is_dataclass(a)]
    return found


def _numeric(tp) -> bool:
    return tp in (int, float) or any(a in (int, float) for a in typing.get_args(tp))


def test_every_numeric_setting_has_a_rule():
    """A number a user writes is bounded at load: no int or float field without a rule."""
    bare = [
        f"{cls.__name__}.{f.name}"
        for cls in _settings_classes()
        for f in dataclasses.fields(cls)
        if _numeric(typing.get_type_hints(cls)[f.name])
        and not {"min", "max", "above", "below", "choices"} & set(f.metadata)
    ]
    assert bare == []


def test_every_registry_named_by_a_setting_imports():
    from vdg_tf.config import _registry_names

    registries = {
        f.metadata["registry"]
        for cls in _settings_classes()
        for f in dataclasses.fields(cls)
        if "registry" in f.metadata
    }
    assert len(registries) >= 10
    for spec in sorted(registries):
        assert _registry_names(spec), spec


# the loader's machinery on what no settings class uses yet (Literal choices)


@dataclass
class WithLiteral:
    mode: Literal["fast", "slow"] = "fast"


def test_literal_choices_are_checked():
    assert load_dataclass(WithLiteral, {"mode": "slow"}, "x").mode == "slow"
    with pytest.raises(ConfigError, match=r"^x\.mode: unknown 'medium' \(known: fast, slow\)$"):
        load_dataclass(WithLiteral, {"mode": "medium"}, "x")


@dataclass
class FromMissingStage:
    name: str = field(default="a", metadata={"registry": "vdg_tf_no_such_stage:NAMES"})


@dataclass
class FromBrokenStage:
    name: str = field(default="a", metadata={"registry": "vdg_tf_broken_stage:NAMES"})


def test_registry_of_a_missing_module_is_an_error():
    """Checking never turns off: a registry that does not import is a bug, not a pass."""
    with pytest.raises(TypeError, match="registry 'vdg_tf_no_such_stage:NAMES': no module"):
        load_dataclass(FromMissingStage, {"name": "anything"}, "x")


def test_registry_of_a_broken_module_raises(tmp_path, monkeypatch):
    (tmp_path / "vdg_tf_broken_stage.py").write_text("import vdg_tf_not_installed\nNAMES = ()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="vdg_tf_not_installed"):
        load_dataclass(FromBrokenStage, {"name": "a"}, "x")


@dataclass
class Misspelt:
    n: int = field(default=1, metadata={"mn": 1})


def test_unknown_rule_is_a_bug_in_the_dataclass():
    with pytest.raises(TypeError, match=r"Misspelt\.n: unknown metadata rule\(s\) \['mn'\]"):
        load_dataclass(Misspelt, {"n": 1}, "x")

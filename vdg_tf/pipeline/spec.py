"""A pipeline file, checked whole when it is loaded: every stage, option and value.

    name: edge_int8
    config: {train: {epochs: 24}}       # overrides of vdg_tf/config.py
    finetune_lr_scale: 0.05              # prune/cluster/QAT/distill learning rate, x training's
    stages:
      - train: {}                        # or {epochs: 30}: overrides of the `train:` section
      - prune: {target_sparsity: 0.5, epochs: 6}
      - qat: {epochs: 4, preserve_sparsity: true}
      - export: {targets: [float32, edge-int8]}

A misspelled option in the last stage fails at load, naming `stages[4].qat.<key>`, before
any training has spent its minutes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from vdg_tf.config import Config, ConfigError, load_dataclass, load_yaml
from vdg_tf.pipeline.stages import STAGES


@dataclass
class StageSpec:
    """One stage: its kind (a key of `STAGES`), its checked options and its record key."""

    kind: str
    options: Any
    key: str


@dataclass
class PipelineFile:
    """The top level of a pipeline file, as written; its values are checked by these rules."""

    name: str = "pipeline"
    config: dict | None = None  # overrides of vdg_tf/config.py (checked by `Config`)
    # prune/cluster/QAT/distill learning rate, as a fraction of training's
    finetune_lr_scale: float = field(default=0.05, metadata={"above": 0.0, "max": 1.0})
    # one `{kind: options}` mapping per stage, `train` first
    stages: list[dict] = field(default_factory=list, metadata={"nonempty": True})


@dataclass
class PipelineSpec:
    """A parsed, fully checked pipeline."""

    name: str
    config: Config
    stages: list[StageSpec] = field(default_factory=list)
    finetune_lr_scale: float = 0.05

    @classmethod
    def from_dict(cls, d: Any) -> PipelineSpec:
        """Check and build a pipeline from a mapping (a parsed YAML file).

        Every value is checked by the config loader's rules (the stage options' own
        dataclasses); errors name the field from the file's top, e.g.
        `stages[2].qat.epochs: must be >= 1, got -3`.
        """
        if not isinstance(d, dict):
            raise ConfigError(f"pipeline: expected a mapping with 'stages', got {type(d).__name__}")
        top = load_dataclass(PipelineFile, d, "")
        config = Config.from_dict(top.config or {}, where="config")
        stages = [_stage(item, i, config) for i, item in enumerate(top.stages)]
        return cls(top.name, config, stages, top.finetune_lr_scale)

    @classmethod
    def load(cls, path: str | Path) -> PipelineSpec:
        """Read and check a pipeline YAML file (errors name the file and the field)."""
        raw = load_yaml(path, "pipeline")
        try:
            return cls.from_dict(raw)
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None


def _stage(item: dict, i: int, config: Config) -> StageSpec:
    """Stage `i` of a pipeline file: its kind, its options loaded by the stage's `Options`
    rules, then what only the stage can check (options that must work together)."""
    here = f"stages[{i}]"
    if len(item) != 1:
        raise ConfigError(f"{here}: expected one mapping like {{prune: {{...}}}}")
    ((kind, options),) = item.items()
    if kind not in STAGES:
        raise ConfigError(f"{here}: unknown stage '{kind}' (known: {', '.join(STAGES)})")
    if (i == 0) != (kind == "train"):
        what = (
            "the first stage must be 'train'" if i == 0 else "'train' can only be the first stage"
        )
        raise ConfigError(f"{here}: {what}, got '{kind}'")
    stage = STAGES[kind]
    opts = load_dataclass(stage.Options, options or {}, f"{here}.{kind}")
    stage.check(opts, f"{here}.{kind}", config)
    return StageSpec(kind, opts, f"{i:02d}_{kind}")


def builtin_pipeline(name: str) -> PipelineSpec:
    """A pipeline shipped inside the package (`vdg_tf/pipeline/builtin/<name>.yaml`)."""
    folder = resources.files("vdg_tf.pipeline") / "builtin"
    names = sorted(
        p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml")
    )
    if name not in names:
        raise ValueError(f"built-in pipeline: unknown '{name}' (known: {', '.join(names)})")
    with resources.as_file(folder / f"{name}.yaml") as path:
        return PipelineSpec.load(path)

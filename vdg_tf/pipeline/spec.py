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
class PipelineSpec:
    """A parsed, fully checked pipeline."""

    name: str
    config: Config
    stages: list[StageSpec] = field(default_factory=list)
    finetune_lr_scale: float = 0.05

    @classmethod
    def from_dict(cls, d: Any, where: str = "pipeline") -> PipelineSpec:
        """Check and build a pipeline from a mapping (a parsed YAML file)."""
        if not isinstance(d, dict):
            raise ConfigError(f"{where}: expected a mapping with 'stages', got {type(d).__name__}")
        known = ("name", "config", "finetune_lr_scale", "stages")
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(known)})")
        config = Config.from_dict(d.get("config") or {}, where="config")
        scale = d.get("finetune_lr_scale", 0.05)
        if isinstance(scale, bool) or not isinstance(scale, int | float) or not 0 < scale <= 1:
            raise ConfigError(f"finetune_lr_scale: expected a number in (0, 1], got {scale!r}")
        items = d.get("stages")
        if not isinstance(items, list) or not items:
            raise ConfigError(f"{where}: 'stages' must be a non-empty list of stages")
        stages = []
        for i, item in enumerate(items):
            here = f"stages[{i}]"
            if not isinstance(item, dict) or len(item) != 1:
                raise ConfigError(f"{here}: expected one mapping like {{prune: {{...}}}}")
            ((kind, options),) = item.items()
            if kind not in STAGES:
                raise ConfigError(f"{here}: unknown stage '{kind}' (known: {', '.join(STAGES)})")
            if i == 0 and kind != "train":
                raise ConfigError(f"{here}: the first stage must be 'train', got '{kind}'")
            if i > 0 and kind == "train":
                raise ConfigError(f"{here}: 'train' can only be the first stage")
            stage = STAGES[kind]
            opts = load_dataclass(stage.Options, options or {}, f"{here}.{kind}")
            stage.check(opts, f"{here}.{kind}", config)
            stages.append(StageSpec(kind, opts, f"{i:02d}_{kind}"))
        return cls(str(d.get("name", "pipeline")), config, stages, float(scale))

    @classmethod
    def load(cls, path: str | Path) -> PipelineSpec:
        """Read and check a pipeline YAML file (errors name the file and the field)."""
        raw = load_yaml(path, "pipeline")
        try:
            return cls.from_dict(raw, str(path))
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None


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

"""`vdg.preprocess`: decode a manifest into TFRecord shards, locally or as an Apache Beam job.

One entry point and one typed result for both engines: the local path
(`vdg_tf.data.records.preprocess`, decode worker processes on this machine) is the
default; `runner` (DirectRunner, FlinkRunner, SparkRunner, DataflowRunner, ...) runs the
same job on Beam (`vdg_tf.data.beam_records`). Either folder is what `vdg train --data`,
`vdg evaluate --data` and the tf.data service read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vdg_tf.config import Config, DataConfig
from vdg_tf.results import Result


@dataclass
class PreprocessResult(Result):
    """What a preprocess run wrote: clips `written` into `shards`, clips `skipped` (with
    reasons), and on Beam the dead-letter file of the clips that failed to decode."""

    out: Path
    runner: str  # "local" or the Beam runner
    written: int
    skipped: int
    shards: list[str]
    skipped_files: list[str] = field(default_factory=list)
    dead_letter: str | None = None

    def to_dict(self) -> dict:
        # `clips`: the name the earlier `--json` form used for `written`
        return super().to_dict() | {"clips": self.written}

    def format(self) -> str:
        where = f" (dead letters: {self.dead_letter})" if self.dead_letter and self.skipped else ""
        return (
            f"{self.written} clips in {len(self.shards)} shards under {self.out} "
            f"({self.runner}); skipped {self.skipped}{where}"
        )


def _data_config(config: Config | DataConfig | str | Path | None) -> DataConfig:
    if isinstance(config, DataConfig):
        return config
    if isinstance(config, Config):
        return config.data
    return (Config.load(config) if config else Config()).data


def parse_beam_options(pairs: list[str] | None) -> dict[str, str]:
    """`["k=v", ...]` (repeatable `--beam-option`) -> `{k: v}`; a pair without `=` is refused."""
    options = {}
    for pair in pairs or []:
        key, eq, value = pair.partition("=")
        if not eq or not key.strip("-"):
            raise ValueError(f"--beam-option {pair}: expected KEY=VALUE, e.g. temp_location=/tmp")
        options[key.strip().removeprefix("--")] = value
    return options


def preprocess(
    manifest: str | Path,
    out: str | Path,
    config: Config | DataConfig | str | Path | None = None,
    *,
    shards: int = 4,
    runner: str | None = None,
    beam_options: dict[str, str] | None = None,
    progress: bool = False,
) -> PreprocessResult:
    """Decode every clip of `manifest` once into `shards` TFRecord files under `out`.

    Args:
      manifest: the manifest (JSON Lines) to decode.
      out: a new or empty folder, or an earlier preprocess folder.
      config: the config (or its path) whose `data` section sets frames, size and audio.
      shards: TFRecord files to write (the unit the tf.data service hands to workers).
      runner: None for the local decoder; else an Apache Beam runner name.
      beam_options: pipeline options for the runner (`{"temp_location": "/tmp"}`).
      progress: a progress bar on stderr (local path).

    Example:
      r = vdg.preprocess("data/manifest_train.jsonl", "data/shards", runner="DirectRunner")
      print(r.written, r.skipped)
    """
    if shards < 1:
        raise ValueError(f"--shards: need at least 1, got {shards}")
    cfg = _data_config(config)
    if runner is None:
        if beam_options:
            raise ValueError("--beam-option: only with --runner (the local path takes none)")
        from vdg_tf.data.records import preprocess as local

        index = local(manifest, out, cfg, shards=shards, progress=progress)
    else:
        from vdg_tf.data.beam_records import preprocess_beam

        index = preprocess_beam(manifest, out, cfg, shards, runner, beam_options)
    return PreprocessResult(
        Path(out), runner or "local", index["clips"], index["skipped"], index["shards"],
        index["skipped_files"], index.get("dead_letter"),
    )  # fmt: skip

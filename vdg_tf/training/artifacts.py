"""The run folder: what `vdg train` writes and what later stages read back.

Files: `model.keras` (training model with auxiliary heads), `labels.txt`, `vocab.txt`,
`config.yaml`, `metrics.json`, `history.csv`, `curves.png`. Every file is written to a
temp name and renamed, so a killed run never leaves a half-written artifact.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import tf_keras as keras

from vdg_tf.config import Config
from vdg_tf.data.features import TextTokenizer
from vdg_tf.files import atomic_write_text

MODEL_FILE = "model.keras"


def save_model_atomic(model: keras.Model, path: str | Path) -> None:
    """`model.save` to a temp file beside `path` (`.keras`, or `.h5` for QAT models), then rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*HDF5 file.*legacy")
        model.save(tmp)
    os.replace(tmp, path)


@dataclass
class Run:
    """A trained run read back from its folder."""

    path: Path
    model: keras.Model
    config: Config
    labels: list[str]
    tokenizer: TextTokenizer


def run_metadata(cfg: Config, labels: list[str], tokenizer: TextTokenizer) -> dict[str, str]:
    """Labels, vocabulary and the exact config as text, keyed by their file names."""
    files = {
        "labels.txt": "".join(f"{name}\n" for name in labels),
        "config.yaml": _yaml(cfg),
    }
    if tokenizer.vocabulary is not None:
        files["vocab.txt"] = "\n".join(tokenizer.vocabulary) + "\n"
    return files


def save_run_metadata(out: Path, cfg: Config, labels: list[str], tokenizer: TextTokenizer) -> None:
    """Labels, vocabulary and the exact config: what any later stage needs beside a model."""
    out.mkdir(parents=True, exist_ok=True)
    for name, text in run_metadata(cfg, labels, tokenizer).items():
        atomic_write_text(out / name, text)


def _yaml(cfg: Config) -> str:
    import yaml

    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)


def load_metadata(folder: str | Path) -> tuple[Config, list[str], TextTokenizer]:
    """Config, labels and tokenizer stored in a run (or export) folder."""
    folder = Path(folder)
    for name in ("config.yaml", "labels.txt"):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder}: missing {name} (not a vdg run or export folder)")
    cfg = Config.load(folder / "config.yaml")
    labels = (folder / "labels.txt").read_text().splitlines()
    tokenizer = TextTokenizer.load(folder / "vocab.txt", cfg.data.text)
    return cfg, labels, tokenizer


def load_run(folder: str | Path) -> Run:
    """Read a run folder written by `vdg train` (or a stage of `vdg run`)."""
    folder = Path(folder)
    if not (folder / MODEL_FILE).is_file():
        raise FileNotFoundError(f"{folder}: no {MODEL_FILE} (not a vdg run folder)")
    cfg, labels, tokenizer = load_metadata(folder)
    model = load_model(folder / MODEL_FILE)
    return Run(folder, model, cfg, labels, tokenizer)


def load_model(path: str | Path) -> keras.Model:
    """Load a `.keras` file with vdg_tf's custom objects registered (and tfmot's scopes)."""
    import tensorflow_model_optimization as tfmot

    import vdg_tf.models  # noqa: F401  registers custom layers
    import vdg_tf.training.schedules  # noqa: F401

    with tfmot.quantization.keras.quantize_scope():
        return keras.models.load_model(path, compile=False)

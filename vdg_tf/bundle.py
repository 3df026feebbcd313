"""A run bundle: the model and everything needed to use it, saved and loaded as one thing.

A bundle folder holds `model.keras` (the training model with its auxiliary heads),
`config.yaml` (the exact config that made it), `labels.txt`, `vocab.txt` (WordPiece
vocabulary), and `bundle.json` (task, vdg_tf version, the files and free-form metadata).
`vdg train`, `vdg run`, `vdg export`, `vdg evaluate` and `vdg predict` all read and
write this one format. Every file is written to a temp name and renamed.

Example:
    bundle = Bundle.load("runs/a")
    probs = inference_model(bundle.model)(inputs)
    bundle.task.predictions(probs, bundle.labels)
"""

from __future__ import annotations

import json
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import tf_keras as keras
import yaml

from vdg_tf import __version__
from vdg_tf.config import Config
from vdg_tf.data.features import TextTokenizer
from vdg_tf.files import atomic_path, atomic_write_text
from vdg_tf.tasks import Task, get_task

MODEL_FILE = "model.keras"
INFO_FILE = "bundle.json"
TEXT_FILES = ("config.yaml", "labels.txt", "vocab.txt", INFO_FILE)


@dataclass
class Bundle:
    """A model with its config, labels and tokenizer; `model` is None for metadata only."""

    config: Config
    labels: list[str]
    tokenizer: TextTokenizer
    model: keras.Model | None = None
    info: dict = field(default_factory=dict)
    path: Path | None = None

    @property
    def task(self) -> Task:
        return get_task(self.config.data)

    def texts(self) -> dict[str, str]:
        """The metadata as text, keyed by file name (also what a .tflite embeds)."""
        info = {"vdg_tf": __version__, "task": self.config.data.task, **self.info}
        files = {
            "config.yaml": yaml.safe_dump(self.config.to_dict(), sort_keys=False),
            "labels.txt": "".join(f"{name}\n" for name in self.labels),
            INFO_FILE: json.dumps(info, indent=2) + "\n",
        }
        if self.tokenizer.vocabulary is not None:
            files["vocab.txt"] = "\n".join(self.tokenizer.vocabulary) + "\n"
        return files

    def save_metadata(self, folder: str | Path) -> Path:
        """Write config, labels, vocabulary and `bundle.json` into `folder`."""
        folder = Path(folder)
        for name, text in self.texts().items():
            atomic_write_text(folder / name, text)
        return folder

    def save(self, folder: str | Path) -> Path:
        """Write the whole bundle: the model first, then the metadata that describes it."""
        if self.model is None:
            raise ValueError("Bundle.save: no model to save (use save_metadata)")
        folder = Path(folder)
        save_model(self.model, folder / MODEL_FILE)
        self.save_metadata(folder)
        self.path = folder
        return folder

    @classmethod
    def from_texts(cls, texts: dict[str, str], where: str = "bundle") -> Bundle:
        """A metadata-only bundle from its text files (read from a folder or a .tflite)."""
        missing = [n for n in ("config.yaml", "labels.txt") if n not in texts]
        if missing:
            raise FileNotFoundError(
                f"{where}: missing {', '.join(missing)} (not a vdg run, bundle or export)"
            )
        try:
            raw = yaml.safe_load(texts["config.yaml"])
        except yaml.YAMLError as e:
            raise ValueError(f"{where}: config.yaml is not valid YAML: {e}") from None
        config = Config.from_dict(raw)
        labels = texts["labels.txt"].splitlines()
        spec = config.data.text
        vocab = texts.get("vocab.txt")
        tokenizer = TextTokenizer(spec, vocab.splitlines() if vocab else None)
        info = json.loads(texts[INFO_FILE]) if INFO_FILE in texts else {}
        return cls(config, labels, tokenizer, info=info)

    @classmethod
    def load(cls, path: str | Path, model: bool = True) -> Bundle:
        """A bundle from a run folder, or from its `model.keras` (metadata beside it).

        With `model=False` only the metadata is read (fast: no TensorFlow model).
        """
        path = Path(path)
        if path.is_file() and path.suffix == ".keras":
            folder, model_file = path.parent, path
        elif path.is_dir():
            folder, model_file = path, path / MODEL_FILE
        elif path.exists():
            raise ValueError(f"{path}: not a run folder or a .keras model file")
        else:
            raise FileNotFoundError(f"{path}: no such run folder or model file")
        texts = {n: (folder / n).read_text() for n in TEXT_FILES if (folder / n).is_file()}
        bundle = cls.from_texts(texts, str(folder))
        bundle.path = folder
        if model:
            if not model_file.is_file():
                raise FileNotFoundError(f"{folder}: no {model_file.name} (training did not finish)")
            bundle.model = load_model(model_file)
        return bundle


def save_model(model: keras.Model, path: str | Path) -> None:
    """`model.save` through a temp file and a rename (`.keras`, or `.h5` for QAT weights)."""
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*HDF5 file.*legacy")
        model.save(tmp)


def load_model(path: str | Path) -> keras.Model:
    """Load a `.keras` model with vdg_tf's layers registered, in Keras' safe mode.

    Only the zip-based `.keras` format is read: a legacy HDF5 file (whatever its name) can
    run Python from a `Lambda` layer when loaded, so it is refused.
    """
    import tensorflow_model_optimization as tfmot

    import vdg_tf.models  # noqa: F401  registers custom layers

    path = Path(path)
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path}: not a .keras model file (vdg_tf loads only the zip-based .keras format; "
            "HDF5 models can run code when loaded)"
        )
    with tfmot.quantization.keras.quantize_scope():
        return keras.models.load_model(path, compile=False, safe_mode=True)

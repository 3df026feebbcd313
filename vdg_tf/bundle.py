"""A run bundle: the model and everything needed to use it, saved and loaded as one thing.

A bundle folder holds `model.keras` (the training model with its auxiliary heads),
`config.yaml` (the exact config that made it), `labels.txt`, `vocab.txt` (WordPiece
vocabulary), and `bundle.json` (task, vdg_tf version, the files and free-form metadata).
The model file also carries those texts inside its zip (`vdg/labels.txt`, ...), written
in the same rename as the weights, and they are what `Bundle.load` reads: a run killed
between files, or rerun on other data, never pairs a model with another run's labels.
`vdg train`, `vdg run`, `vdg export`, `vdg evaluate` and `vdg predict` all read and
write this one format. Every file is written to a temp name and renamed.

An exported model file carries the same metadata as sidecar files named after it
(`model.tflite` -> `model.labels.txt`, `model.config.yaml`, ...): a user's own
`labels.txt` beside an export is never overwritten, and two exports share a folder.

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
from vdg_tf.config import Config, parse_yaml
from vdg_tf.data.features import TextTokenizer
from vdg_tf.files import atomic_path, atomic_write_text
from vdg_tf.safety import check_keras_file
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
        save_model(self.model, folder / MODEL_FILE, self.texts())
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
        raw = parse_yaml(texts["config.yaml"], f"{where}: config.yaml")  # bounded: may be hostile
        config = Config.from_dict(raw)
        labels = texts["labels.txt"].splitlines()
        spec = config.data.text
        vocab = texts.get("vocab.txt")
        tokenizer = TextTokenizer(spec, vocab.splitlines() if vocab else None)
        info = json.loads(texts[INFO_FILE]) if INFO_FILE in texts else {}
        return cls(config, labels, tokenizer, info=info)

    @classmethod
    def load(cls, path: str | Path, model: bool = True, trust_model: bool = False) -> Bundle:
        """A bundle from a run folder, or from its `model.keras` (metadata beside it).

        With `model=False` only the metadata is read (fast: no TensorFlow model).
        `trust_model`: also load a model format that can run code (see `load_model`).
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
        texts = embedded_texts(model_file) if model_file.is_file() else {}
        if "config.yaml" not in texts:  # a model saved without them: the files beside it
            texts = {n: (folder / n).read_text() for n in TEXT_FILES if (folder / n).is_file()}
        bundle = cls.from_texts(texts, str(folder))
        bundle.path = folder
        if model:
            if not model_file.is_file():
                raise FileNotFoundError(f"{folder}: no {model_file.name} (training did not finish)")
            bundle.model = load_model(model_file, trust=trust_model)
        return bundle


def sidecar_path(model_file: str | Path, name: str) -> Path:
    """Where metadata file `name` of an exported model goes: `exports/model.tflite` and
    `labels.txt` -> `exports/model.labels.txt`."""
    model_file = Path(model_file)
    return model_file.with_name(f"{model_file.stem}.{name}")


def read_sidecars(model_file: str | Path) -> dict[str, str]:
    """The metadata files of an exported model, keyed by plain name: its own sidecars
    (`sidecar_path`, the one layout every export writes); {} when it has none."""
    own = {n: sidecar_path(model_file, n) for n in TEXT_FILES}
    return {n: p.read_text() for n, p in own.items() if p.is_file()}


EMBEDDED = "vdg/"  # folder of the bundle's texts inside a `.keras` zip


def save_model(model: keras.Model, path: str | Path, texts: dict[str, str] | None = None) -> None:
    """`model.save` through a temp file and a rename (`.keras`, or `.h5` for QAT weights).

    `texts` (a bundle's metadata, `Bundle.texts()`) are added inside a `.keras` zip before
    the rename, so the model and its labels appear together or not at all."""
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*HDF5 file.*legacy")
        model.save(tmp)
        if texts and zipfile.is_zipfile(tmp):
            with zipfile.ZipFile(tmp, "a") as archive:
                for name, text in texts.items():
                    archive.writestr(EMBEDDED + name, text)


def embedded_texts(path: str | Path) -> dict[str, str]:
    """The bundle texts saved inside a `.keras` zip by `save_model` ({} if none)."""
    if not zipfile.is_zipfile(path):
        return {}
    with zipfile.ZipFile(path) as archive:
        return {
            name.removeprefix(EMBEDDED): archive.read(name).decode("utf-8")
            for name in archive.namelist()
            if name.startswith(EMBEDDED) and name.removeprefix(EMBEDDED) in TEXT_FILES
        }


def load_model(path: str | Path, trust: bool = False) -> keras.Model:
    """Load a `.keras` model with vdg_tf's layers registered, in Keras' safe mode.

    Only the zip-based `.keras` format is read: a legacy HDF5 file (whatever its name) can
    run Python from a `Lambda` layer when loaded (tf_keras ignores `safe_mode` there), so
    it is refused; a `.keras` file's config is checked first (`vdg_tf.safety`: no Lambda,
    no object from outside Keras and vdg_tf). `trust=True` (`--trust-model`) is for a file
    whose source you trust: it also loads HDF5, and `.keras` files with Lambda layers
    (safe mode off, no check).
    """
    import tensorflow_model_optimization as tfmot

    import vdg_tf.models  # noqa: F401  registers custom layers

    path = Path(path)
    is_zip = zipfile.is_zipfile(path)
    if not is_zip and not trust:
        raise ValueError(
            f"{path}: not a zip-based .keras model (a legacy HDF5 model can run code when "
            "loaded, so it is refused); pass --trust-model to load one whose source you trust"
        )
    if is_zip and not trust:
        check_keras_file(path)  # before Keras imports or calls anything the file names
    with tfmot.quantization.keras.quantize_scope():
        if is_zip:
            return keras.models.load_model(path, compile=False, safe_mode=not trust)
        return keras.models.load_model(path, compile=False)  # trusted on purpose

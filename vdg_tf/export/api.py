"""`vdg export`: a run bundle to a verified-loadable `.tflite` for one target, in one call."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import tf_keras as keras

from vdg_tf._progress import bar
from vdg_tf.bundle import Bundle
from vdg_tf.data.sources import dataset_from
from vdg_tf.export.incremental import METADATA_KEY, convert_incremental
from vdg_tf.export.preprocess import (
    convert_preprocessed,
    preprocessing_model,
    raw_representative,
)
from vdg_tf.export.targets import get_target
from vdg_tf.export.tflite import ExportConfig, convert
from vdg_tf.export.verify import representative_inputs
from vdg_tf.files import atomic_dir, atomic_write_bytes, check_replaceable
from vdg_tf.models.builder import inference_model
from vdg_tf.models.serving import save_serving_model
from vdg_tf.training.trainer import write_saved_model


def export_model(
    model: str | Path | Bundle,
    target: str,
    out: str | Path,
    data: str | Path | None = None,
    calibration_samples: int = 64,
    saved_model: str | Path | None = None,
    embed_metadata: bool = False,
    batch: int | None = 1,
    trust_model: bool = False,
    preprocess: bool = False,
    incremental: bool = False,
) -> dict:
    """Convert a run bundle (folder, `model.keras`, or a loaded `Bundle`) for `target`.

    Int8 targets calibrate on `data` (training manifest or preprocessed folder). The
    bundle's labels, vocabulary and config are written beside the `.tflite` under names
    tied to it (`model.labels.txt`, `model.config.yaml`, ...; never over a user's file),
    and embedded in it with `embed_metadata`; `saved_model` also writes a SavedModel (a
    new folder, or one vdg wrote before: a folder of other files is refused). `batch`
    None exports a dynamic batch axis (1 by default: the smallest, all-int8 graph).
    `trust_model`: load a model format that can run code (`vdg_tf.bundle.load_model`).
    `preprocess`: resize + normalise frames and log-mel the waveform in the graph
    (`export/preprocess.py`): inputs `video` uint8 [B,T,H,W,3] at any H, W and `audio`
    the raw waveform. An int8 export keeps the preprocessing float and the model int8
    (`convert_preprocessed`). `incremental`: one `.tflite` with the `encode_frame`,
    `encode_audio`, `head` and `serving_default` signatures (`export/incremental.py`).

    Example:
      export_model("runs/a", "edge-int8", "exports/model.tflite", data="data/manifest_train.jsonl")
    """
    t = get_target(target, "--target")
    if incremental and preprocess:
        raise ValueError("--preprocess: not with --incremental (export one or the other)")
    if incremental and saved_model:
        raise ValueError("--saved-model: not with --incremental (export the SavedModel alone)")
    if saved_model:
        check_replaceable(saved_model)  # before the conversion, not after it
    bundle = model if isinstance(model, Bundle) else Bundle.load(model, trust_model=trust_model)
    keras_model = inference_model(bundle.model)
    if preprocess:
        keras_model = preprocessing_model(keras_model, bundle.config.data)
    rep = None
    if t.calibrated:
        if not data:
            raise ValueError(f"--target {target} needs --data TRAIN.jsonl for int8 calibration")
        rep = _representative(bundle, keras_model, data, calibration_samples, preprocess)
    meta = bundle.texts() if embed_metadata else None
    cfg = ExportConfig(target, rep, metadata=meta, batch=batch)
    if incremental:
        tflite = convert_incremental(bundle.model, cfg)
    elif preprocess:
        tflite = convert_preprocessed(keras_model, cfg)
    else:
        tflite = convert(keras_model, cfg)
    path = atomic_write_bytes(out, tflite)
    bundle.save_sidecars(path)
    result = {"path": str(path), "bytes": len(tflite), "target": target}
    if preprocess:
        result["preprocess"] = True
    if incremental:
        result[METADATA_KEY] = True
    if saved_model and preprocess:
        with atomic_dir(saved_model) as tmp:  # the same wrapped graph, any batch
            save_serving_model(keras_model, tmp)
            bundle.save_metadata(tmp)
        result["saved_model"] = str(saved_model)
    elif saved_model:
        result["saved_model"] = str(write_saved_model(bundle, saved_model))
    return result


def _representative(
    bundle: Bundle, model: keras.Model, data: str | Path, count: int, preprocess: bool
) -> Callable[[], Iterator[dict[str, np.ndarray]]]:
    """Calibration inputs keyed by `model`'s input names: pipeline features for a plain
    export, decoded frames and raw waveforms for a --preprocess one."""
    if preprocess:
        names = [i.name.split(":")[0] for i in model.inputs]
        cfg = bundle.config.data
        return lambda: bar(
            raw_representative(data, cfg, bundle.tokenizer, names, count),
            "calibrating",
            total=count,
            unit="sample",
        )
    ds = dataset_from(data, bundle.config.data, bundle.labels, bundle.tokenizer)
    return lambda: representative_inputs(ds, count)

"""`vdg export`: a run bundle to a verified-loadable `.tflite` for one target, in one call."""

from __future__ import annotations

from pathlib import Path

from vdg_tf.bundle import Bundle
from vdg_tf.data.sources import dataset_from
from vdg_tf.export.targets import get_target
from vdg_tf.export.tflite import ExportConfig, convert
from vdg_tf.export.verify import representative_inputs
from vdg_tf.files import atomic_write_bytes, check_replaceable
from vdg_tf.models.builder import inference_model
from vdg_tf.training.train import write_saved_model


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
) -> dict:
    """Convert a run bundle (folder, `model.keras`, or a loaded `Bundle`) for `target`.

    Int8 targets calibrate on `data` (training manifest or preprocessed folder). The
    bundle's labels, vocabulary and config are written beside the `.tflite` under names
    tied to it (`model.labels.txt`, `model.config.yaml`, ...; never over a user's file),
    and embedded in it with `embed_metadata`; `saved_model` also writes a SavedModel (a
    new folder, or one vdg wrote before: a folder of other files is refused). `batch`
    None exports a dynamic batch axis (1 by default: the smallest, all-int8 graph).
    `trust_model`: load a model format that can run code (`vdg_tf.bundle.load_model`).

    Example:
      export_model("runs/a", "edge-int8", "exports/model.tflite", data="data/manifest_train.jsonl")
    """
    t = get_target(target, "--target")
    if saved_model:
        check_replaceable(saved_model)  # before the conversion, not after it
    bundle = model if isinstance(model, Bundle) else Bundle.load(model, trust_model=trust_model)
    rep = None
    if t.calibrated:
        if not data:
            raise ValueError(f"--target {target} needs --data TRAIN.jsonl for int8 calibration")
        ds = dataset_from(data, bundle.config.data, bundle.labels, bundle.tokenizer)
        rep = lambda: representative_inputs(ds, calibration_samples)  # noqa: E731
    meta = bundle.texts() if embed_metadata else None
    tflite = convert(
        inference_model(bundle.model), ExportConfig(target, rep, metadata=meta, batch=batch)
    )
    path = atomic_write_bytes(out, tflite)
    bundle.save_sidecars(path)
    result = {"path": str(path), "bytes": len(tflite), "target": target}
    if saved_model:
        result["saved_model"] = str(write_saved_model(bundle, saved_model))
    return result

"""`vdg.export`: a model to a `.tflite` for one target, loaded back in LiteRT, in one call.

The one export path: `vdg export`, the pipeline's export stage and a Python user all call
`export`. The model may be a run folder, a `.keras` file, or a `Bundle` holding any Keras
model (trained, pruned, clustered, QAT-wrapped, int4-aware): what is converted is always
`inference_model(bundle.model)`, and int8 targets calibrate on `data`.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tf_keras as keras

from vdg_tf._progress import bar
from vdg_tf.bundle import Bundle, sidecar_path
from vdg_tf.data.inputs import INDEX, resolve_data
from vdg_tf.data.sources import dataset_from
from vdg_tf.export.detection import DetectorExport, detector_export, find_frame_detector
from vdg_tf.export.incremental import convert_incremental
from vdg_tf.export.inspect import inspect_tflite
from vdg_tf.export.model_metadata import standard_metadata
from vdg_tf.export.ownership import RECORD_KEY, check_export_paths, export_record
from vdg_tf.export.preprocess import (
    convert_preprocessed,
    preprocessing_model,
    raw_representative,
)
from vdg_tf.export.serving_text import write_raw_text_saved_model
from vdg_tf.export.targets import get_target
from vdg_tf.export.tflite import ExportConfig, convert
from vdg_tf.export.verify import representative_inputs
from vdg_tf.files import atomic_write_bytes, atomic_write_text, check_replaceable
from vdg_tf.models.builder import inference_model
from vdg_tf.results import Result
from vdg_tf.training.trainer import write_saved_model

log = logging.getLogger(__name__)


@dataclass
class ExportResult(Result):
    """What `export` wrote, as LiteRT reads it back.

    Attributes:
      path: the `.tflite` file.
      bytes, gzip_bytes: its size, raw and gzip-compressed (what a download costs).
      target: the export target (`edge-int8`, ...).
      int8_op_fraction: the share of compute ops LiteRT runs in int8 (`vdg inspect`).
      preprocess, incremental: which kind of graph it is (`--preprocess`, `--incremental`).
      saved_model: the SavedModel folder also written, or None.
      sidecars: the metadata files written beside it (`model.labels.txt`, ...).
    """

    path: Path
    bytes: int
    target: str
    gzip_bytes: int
    int8_op_fraction: float
    preprocess: bool = False
    incremental: bool = False
    saved_model: Path | None = None
    sidecars: list[Path] = field(default_factory=list)
    # `--target auto`: every candidate measured (target, ms, bytes, agreement,
    # within_tolerance; batch, ms_per_window_batch for a dynamic batch); `target` is the one chosen
    candidates: list[dict] = field(default_factory=list)
    source: str = field(default="", metadata={"json": False})

    def format(self) -> str:
        rows = [
            ("file", str(self.path)),
            ("bytes", f"{_size(self.bytes)}, {_size(self.gzip_bytes)} gzipped"),
            ("target", self.target),
            ("LiteRT", f"loads and allocates; {self.int8_op_fraction:.0%} of compute ops in int8"),
            ("metadata", ", ".join(p.name for p in self.sidecars)),
        ]
        if self.saved_model:
            rows.append(("SavedModel", str(self.saved_model)))
        for c in self.candidates:
            if "error" in c:
                rows.append((f"  {c['target']}", f"left out: {c['error']}"))
                continue
            mark = "chosen" if c["target"] == self.target else (
                "" if c["within_tolerance"] else "below tolerance")  # fmt: skip
            at = (f" ({c['ms_per_window_batch']:.3f} ms a window at batch {c['batch']})"
                  if "batch" in c else "")  # fmt: skip
            rows.append((f"  {c['target']}", f"{c['ms']:.3f} ms{at}, {_size(c['bytes'])}, "
                                             f"agreement {c['agreement']:.3f}  {mark}"))  # fmt: skip
        width = max(len(k) for k, _ in rows) + 2
        return "\n".join([f"exported {self.source}", *(f"  {k:<{width}}{v}" for k, v in rows)])


def _size(n: int) -> str:
    """Bytes as a person reads them: `287,776 B (281 KiB)`."""
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n:,} B ({n / scale:.{1 if n < 10 * scale else 0}f} {unit})"
    return f"{n:,} B"


def export(
    model: str | Path | Bundle,
    target: str,
    out: str | Path,
    *,
    data: str | Path | None = None,
    trust_model: bool = False,
    force: bool = False,
    calibration_samples: int = 64,
    saved_model: str | Path | None = None,
    embed_metadata: bool = False,
    batch: int | None = 1,
    preprocess: bool = False,
    incremental: bool = False,
    tolerance: float = 0.99,
    frame_detector: bool = False,
) -> ExportResult:
    """Convert `model` for `target`, write it to `out` with its metadata, load it in LiteRT.

    Args:
      model: a run folder, its `model.keras`, or a `Bundle` (its `model` may be any Keras
        model: pruned, QAT-wrapped, int4-aware).
      target: a name from `vdg_tf.export.targets.TARGETS`, or `auto`: the fastest of
        float32, gpu-fp16, cpu-dynamic and edge-int8 measured on this machine whose
        agreement with float32 on `data` is >= `tolerance` (`export/auto.py`).
      out: the `.tflite` to write. It and its sidecars (`out`'s stem + `.labels.txt`,
        `.config.yaml`, `.vocab.txt`, `.bundle.json`) replace only files an earlier vdg
        export wrote (`vdg_tf.export.ownership`); `force` replaces any file.
      data: calibration data for int8 targets: a manifest, a `vdg preprocess` folder or a
        folder of class folders; `calibration_samples` of it are used.
      trust_model: load a model format that can run code (`vdg_tf.bundle.load_model`).
      saved_model: also write a SavedModel here (a new folder, or one vdg wrote before).
      embed_metadata: also embed the labels, vocabulary and config in the `.tflite`.
      batch: the batch axis, 1 (the smallest, all-int8 graph) or None (dynamic).
      preprocess: resize + normalise frames and log-mel the waveform in the graph
        (`export/preprocess.py`): inputs `video` uint8 [B,T,H,W,3] at any H, W and the
        raw waveform; an int8 export keeps the preprocessing float.
      incremental: one `.tflite` with the `encode_frame`, `encode_audio`, `head` and
        `serving_default` signatures (`export/incremental.py`).
      frame_detector: a detection run only: input `image` [1, H, W, 3] (one RGB frame, what
        MediaPipe's ObjectDetector runs) in place of `video` [1, 1, H, W, 3]. A detection
        run always exports its frame detector ending in `TFLite_Detection_PostProcess`
        (`export/detection.py`).

    Every export but `incremental` also carries standard TFLite Model Metadata (labels,
    input normalisation, output roles; `export/model_metadata.py`).

    Returns:
      An ExportResult (its `to_dict()` is what `vdg export --json` prints).

    Example:
      import vdg_tf as vdg
      r = vdg.export("runs/a", "edge-int8", "exports/model.tflite", data="data/train.jsonl")
    """
    if target == "auto":
        return _export_auto(model, out, data, trust_model, force, tolerance, calibration_samples,
                            (saved_model, embed_metadata, batch, preprocess, incremental,
                             frame_detector))  # fmt: skip
    t = get_target(target, "--target")
    _check_options(t.calibrated, data, preprocess, incremental, saved_model)
    out = Path(out)
    bundle = _bundle(model, trust_model)
    detector = _detector(bundle, frame_detector, preprocess, incremental, batch)
    texts = bundle.texts()
    sidecars = {name: sidecar_path(out, name) for name in texts}
    check_export_paths(out, sidecars, force)  # before the conversion, not after it
    if saved_model:
        check_replaceable(saved_model)
    keras_model = None if detector else inference_model(bundle.model)
    if preprocess:
        keras_model = preprocessing_model(keras_model, bundle.config.data)
    meta = {**(texts if embed_metadata else {}), RECORD_KEY: export_record(target, texts)}
    tflite = _tflite(bundle, detector, keras_model, (target, meta, batch), data,
                     calibration_samples, preprocess, incremental)  # fmt: skip
    path = atomic_write_bytes(out, tflite)
    written = [atomic_write_text(p, texts[name]) for name, p in sidecars.items()]
    if saved_model:
        _write_saved_model(bundle, saved_model, keras_model, preprocess)
    return _result(model, target, path, written, saved_model, preprocess, incremental)


def _tflite(bundle, detector, keras_model, settings, data, samples: int, preprocess: bool,
            incremental: bool) -> bytes:  # fmt: skip
    """The exported flatbuffer of `settings` (target, vdg_tf metadata, batch): calibrated
    on `data` for an int8 target, with standard Model Metadata (a detector writes its own;
    an incremental export has none)."""
    target, meta, batch = settings
    with tempfile.TemporaryDirectory(prefix="vdg-export-") as work:
        rep = None
        if get_target(target).calibrated and detector:
            rep = detector.representative(resolve_data(data, work, "--data"), samples)
        elif get_target(target).calibrated:
            rep = _representative(bundle, keras_model, data, work, samples, preprocess)
        cfg = ExportConfig(target, rep, metadata=meta, batch=batch)
        log.info("converting to %s", target)
        if detector:
            return detector.convert(cfg, name=f"vdg_tf {bundle.task.name}")
        tflite = _convert(bundle, keras_model, cfg, preprocess, incremental)
    if incremental:
        return tflite
    width = int(keras_model.outputs[0].shape[-1])
    return standard_metadata(tflite, bundle, preprocess=preprocess, output_width=width)


def _write_saved_model(bundle, path, keras_model, preprocess: bool) -> None:
    """The SavedModel beside the export: with --preprocess and a text input, one that also
    tokenizes raw captions in the graph (`export/serving_text.py`)."""
    if preprocess and "text" in {t.name.split(":")[0] for t in keras_model.inputs}:
        write_raw_text_saved_model(bundle, path, keras_model)
    else:
        write_saved_model(bundle, path, keras_model)


def _result(model, target, path: Path, sidecars, saved_model, preprocess, incremental):
    """The ExportResult of a written file, read back through LiteRT (what a device runs)."""
    info = inspect_tflite(path)
    return ExportResult(
        path=path,
        bytes=path.stat().st_size,
        target=target,
        gzip_bytes=info["gzip_bytes"],
        int8_op_fraction=info["int8_op_fraction"],
        preprocess=preprocess,
        incremental=incremental,
        saved_model=Path(saved_model) if saved_model else None,
        sidecars=sidecars,
        source=str(model if not isinstance(model, Bundle) else model.path or "a Bundle"),
    )


export_model = export  # the name this function had before `vdg.export`


def _export_auto(model, out, data, trust_model, force, tolerance, samples, options) -> ExportResult:
    """`target="auto"`: measure the candidates, then export the chosen one to `out`."""
    from vdg_tf.export.auto import choose, measure_candidates

    saved_model, embed_metadata, batch, preprocess, incremental, frame_detector = options
    if preprocess or incremental or frame_detector:
        raise ValueError("--target auto: not with --preprocess, --incremental or --frame-detector")
    if not data:
        raise ValueError("--data: --target auto measures agreement on data (a manifest)")
    if not 0.0 < tolerance <= 1.0:
        raise ValueError(f"--tolerance: must be in (0, 1], got {tolerance}")
    bundle = _bundle(model, trust_model)
    check_export_paths(Path(out), {n: sidecar_path(Path(out), n) for n in bundle.texts()}, force)
    if saved_model:
        check_replaceable(saved_model)  # before the measuring, not after it
    if find_frame_detector(bundle.model) is not None:
        raise ValueError("--target auto: not for a detection model (verify its exports by "
                         "mAP: vdg benchmark detection)")  # fmt: skip
    candidates = measure_candidates(bundle, data, batch=batch, calibration_samples=samples)
    chosen = choose(candidates, tolerance)
    log.info("--target auto: %s is the fastest within tolerance %g", chosen, tolerance)
    result = export(bundle, chosen, out, data=data, force=force, calibration_samples=samples,
                    saved_model=saved_model, embed_metadata=embed_metadata, batch=batch)  # fmt: skip
    result.candidates = candidates
    result.source = str(model if not isinstance(model, Bundle) else model.path or "a Bundle")
    return result


def _check_options(
    calibrated: bool, data, preprocess: bool, incremental: bool, saved_model
) -> None:
    """Refuse option combinations that cannot work, before any model is loaded."""
    if incremental and preprocess:
        raise ValueError("--preprocess: not with --incremental (export one or the other)")
    if incremental and saved_model:
        raise ValueError("--saved-model: not with --incremental (export the SavedModel alone)")
    if calibrated and not data:
        raise ValueError("--data: an int8 target calibrates on data (a manifest); none given")
    if calibrated and preprocess and (Path(data) / INDEX).is_file():
        raise ValueError(
            f"--data {data}: a --preprocess export calibrates on decoded video; give the "
            "manifest, not a preprocessed folder"
        )


def _detector(
    bundle: Bundle, frame_detector: bool, preprocess: bool, incremental: bool, batch
) -> DetectorExport | None:
    """The detection export of a run whose model has a `frame_detector` (None for other
    runs), after refusing the options a detector cannot take."""
    detector = detector_export(bundle, image_input=frame_detector)
    if detector is None:
        if frame_detector:
            raise ValueError(
                f"--frame-detector: the model of {bundle.path or 'this bundle'} has no "
                "frame_detector (only a detection run exports one)"
            )
        return None
    for flag, on in (("--preprocess", preprocess), ("--incremental", incremental),
                     ("--batch dynamic", batch is None)):  # fmt: skip
        if on:
            raise ValueError(f"{flag}: not for a detection model (its NMS op takes batch 1, "
                             "one frame per call)")  # fmt: skip
    return detector


def _bundle(model: str | Path | Bundle, trust_model: bool) -> Bundle:
    """The bundle to export: `model` itself, or loaded from a run folder or `.keras`."""
    if isinstance(model, Bundle):
        if model.model is None:
            raise ValueError("export: the Bundle has no model (Bundle.load(..., model=True))")
        return model
    return Bundle.load(model, trust_model=trust_model)


def _convert(
    bundle: Bundle, keras_model: keras.Model, cfg: ExportConfig, preprocess: bool, incremental: bool
) -> bytes:
    """The flatbuffer of the export kind asked for."""
    if incremental:
        return convert_incremental(bundle.model, cfg)
    if preprocess:
        return convert_preprocessed(keras_model, cfg)
    return convert(keras_model, cfg)


def _representative(
    bundle: Bundle, model: keras.Model, data: str | Path, work: str, count: int, preprocess: bool
) -> Callable[[], Iterator[dict[str, np.ndarray]]]:
    """Calibration inputs keyed by `model`'s input names: pipeline features for a plain
    export, decoded frames and raw waveforms for a --preprocess one. A folder of class
    folders is imported into `work` first."""
    data = resolve_data(data, work, "--data")
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

"""`vdg evaluate`: the task's report of a run bundle or an exported `.tflite` on a manifest."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf

from vdg_tf.bundle import Bundle, read_sidecars
from vdg_tf.data.inputs import resolve_data
from vdg_tf.data.pipeline import SkipLog, batched_features
from vdg_tf.data.sources import open_source
from vdg_tf.export.tflite import read_metadata
from vdg_tf.export.verify import predict_tflite
from vdg_tf.models.builder import inference_model
from vdg_tf.results import Result, plain
from vdg_tf.training.evaluate import modality_ablation, predict_dataset

logger = logging.getLogger(__name__)

Predict = Callable[[tf.data.Dataset], tuple[np.ndarray, np.ndarray]]


def load_for_inference(
    model: str | Path | Bundle, trust_model: bool = False
) -> tuple[Bundle, Predict]:
    """The bundle of `model` (a run folder, a `Bundle`, `model.keras` or `.tflite`) and a
    function that maps a dataset to (targets, outputs) with it (Keras, or LiteRT for a
    `.tflite`).

    A `.tflite` reads its labels, vocabulary and config from the sidecar files `vdg export`
    wrote beside it (`model.labels.txt`, ...), else from the metadata `vdg export
    --embed-metadata` put inside it. `trust_model`: load a Keras format that can run code.
    """
    if isinstance(model, Bundle):
        if model.model is None:
            raise ValueError(f"{model.path or 'bundle'}: a Bundle without a model to evaluate")
        keras_model = inference_model(model.model)
        return model, lambda ds: predict_dataset(keras_model, ds)
    path = Path(model)
    if path.suffix != ".tflite":
        bundle = Bundle.load(path, trust_model=trust_model)
        keras_model = inference_model(bundle.model)
        return bundle, lambda ds: predict_dataset(keras_model, ds)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such .tflite file")
    beside = read_sidecars(path)
    texts = beside if "config.yaml" in beside else read_metadata(path)
    bundle = Bundle.from_texts(texts, str(path))
    return bundle, lambda ds: predict_tflite(path, ds)


@dataclass
class EvalReport(Result):
    """The task's report of a model on data; `to_dict()` is what `vdg evaluate --json`
    prints (the task's metrics, then `skipped` and `skipped_files`).

    Reads like the dict it prints too (`report["accuracy"]`), as it did before it was a
    class.
    """

    metrics: dict
    skipped: int = 0
    skipped_files: list[str] = field(default_factory=list)
    title: str = field(default="", metadata={"json": False})
    plot: Path | None = field(default=None, metadata={"json": False})
    plot_what: str = field(default="", metadata={"json": False})  # "confusion matrix"

    def to_dict(self) -> dict:
        return plain({**self.metrics, "skipped": self.skipped, "skipped_files": self.skipped_files})

    def format(self) -> str:
        text = format_evaluation(self.to_dict(), self.title)
        return text + (f"\n\n  {self.plot_what}: {self.plot}" if self.plot else "")

    def __getitem__(self, key: str):
        return self.to_dict()[key]

    def __contains__(self, key: str) -> bool:
        return key in self.to_dict()

    def get(self, key: str, default=None):
        return self.to_dict().get(key, default)


def evaluate(
    model: str | Path | Bundle,
    data: str | Path,
    *,
    trust_model: bool = False,
    ablation: bool = False,
    plot: str | Path | None = None,
) -> EvalReport:
    """The task's metrics of `model` on `data`, with the skipped clips.

    Args:
      model: a run folder, a `Bundle`, a `.keras` or a `.tflite`.
      data: a manifest, a `vdg preprocess` folder or a folder of class folders.
      trust_model: load a Keras format that can run code.
      ablation: add the metric with each modality masked out.
      plot: write the task's plot of the report here (the confusion matrix of
        classification-like tasks; nothing for the others).

    Example:
      report = evaluate("runs/a", "data/manifest_eval.jsonl")
      table = report.format()  # what `vdg evaluate` prints
    """
    if not isinstance(model, Bundle) and Path(model).suffix == ".tflite":
        report = _detector_report(model, data)
        if report is not None:
            return report
    bundle, predict = load_for_inference(model, trust_model)
    cfg, task = bundle.config, bundle.task
    skips = SkipLog()
    with tempfile.TemporaryDirectory(prefix="vdg-eval-") as work:
        data_path = resolve_data(data, work)
        source = open_source(data_path, cfg.data, bundle.labels, skips=skips)
        ds = batched_features(source.decoded, cfg.data, bundle.tokenizer)
        y, outputs = predict(ds)
        if len(y) == 0:
            raise ValueError(f"{data}: no clip could be evaluated ({skips.summary(source.count)})")
        report = task.report(y, outputs, bundle.labels)
        if skips.parts:  # parts of rows left out (detection's bad boxes), by reason
            report |= {"skipped_boxes": len(skips.parts), "skipped_box_reasons": skips.part_reasons}
        if ablation:
            report["ablation"] = modality_ablation(
                predict, ds, cfg.model.modalities, task, bundle.labels
            )
        if task.untrimmed and not task.per_frame:  # a per-frame task's rows have no segments
            report.update(segment_figures(model, bundle, data_path, trust_model))
    name = _name(model)
    title = f"{name} on {Path(data).name}"
    drawn = task.plot_report(report, bundle.labels, Path(plot), title) if plot else None
    logger.info(skips.summary(source.count))
    return EvalReport(
        report, skips.count, skips.reasons, f"{_where(model)} on {data}",
        Path(plot) if drawn else None, drawn or "",
    )  # fmt: skip


def _detector_report(model: str | Path, data: str | Path) -> EvalReport | None:
    """A detection `.tflite`'s report: COCO mAP of its boxes in LiteRT on the annotated
    frames of `data` (`runtime/box_map.py`); None for any other model. Its outputs are
    boxes after NMS, not the Keras model's per-anchor scores the task's report reads."""
    from vdg_tf.runtime.box_map import box_map
    from vdg_tf.runtime.detect import is_box_model

    if not is_box_model(model):
        return None
    r = box_map(model, data)
    skipped, files = r.pop("skipped"), r.pop("skipped_files")
    return EvalReport(r, skipped, files, f"{_where(model)} on {data}")


def segment_figures(
    model: str | Path | Bundle, bundle: Bundle, manifest: Path, trust_model: bool = False
) -> dict:
    """An untrimmed task's figures (`Task.segment_report`): the segments `vdg predict
    --segments` finds along each whole video of `manifest`, against the rows' own. Rows
    the task skips (`_scored_rows`) and videos predict could not decode are left out and
    counted in `segment_skipped`; no row with segments gives no figures ({})."""
    from vdg_tf.runtime.predict import predict

    if Path(manifest).is_dir():
        return {}  # a preprocessed folder holds windows, not whole videos
    rows, skipped = _scored_rows(manifest, bundle)
    if not rows:
        return {}
    run = predict(bundle if isinstance(model, Bundle) or _names_keras(model) else model,
                  list(dict.fromkeys(r.video for r in rows)), trust_model=trust_model,
                  incremental=False, segments=True)  # fmt: skip
    failed = {s["source"] for s in run.sources if s["ended"] == "failed"}
    skipped += [f"{s['source']}: {s['note']}" for s in run.sources if s["ended"] == "failed"]
    truth = [{"video": r.video, "start": s, "end": e, "label": label}
             for r in rows if r.video not in failed for s, e, label in r.segments]  # fmt: skip
    if not truth:
        return {"segment_skipped": skipped}
    return {**bundle.task.segment_report(truth, run.records), "segment_skipped": skipped}


def _names_keras(model: str | Path | Bundle) -> bool:
    """Whether `model` names a Keras model (its bundle is already loaded) rather than a `.tflite`."""
    return Path(str(model)).suffix != ".tflite"


def _scored_rows(manifest: Path, bundle: Bundle) -> tuple[list, list[str]]:
    """The manifest's rows with segments that the task would train and score on, and one
    line per row left out (a row problem, a segment past the video's end)."""
    from vdg_tf.manifest import read_manifest
    from vdg_tf.media.decode import DecodeError, video_duration

    task, window = bundle.task, bundle.config.data.audio.seconds
    kept, skipped = [], []
    for row in read_manifest(manifest)[0]:
        if row.segments is None:
            continue
        problem = task.problem(row, bundle.labels)
        try:
            if problem is None:
                task.clips(row, video_duration(row.video), window)
        except (ValueError, DecodeError) as e:  # DecodeError is a ValueError
            problem = str(e)
        if problem:
            skipped.append(problem)
        else:
            kept.append(row)
    return kept, skipped


def _name(model: str | Path | Bundle) -> str:
    return Path(_where(model)).name


def _where(model: str | Path | Bundle) -> str:
    """How a model is named in titles: its path (a Bundle's folder)."""
    if isinstance(model, Bundle):
        return str(model.path) if model.path is not None else "bundle"
    return str(model)


def format_evaluation(report: dict, title: str = "") -> str:
    """The report for people: the overall metrics, then a per-class table where the task
    has one, the ablation and the skipped clips. The confusion matrix is left to the plot
    (`--plot`): as numbers it is a screen of digits."""
    scalars = {
        k: v
        for k, v in report.items()
        if isinstance(v, float | int) and not isinstance(v, bool) and k not in ("skipped", "n")
    }
    head = f"{report['n']} clips" if "n" in report else ""
    lines = [f"{title}: {head}" if title else head] if title or head else []
    width = max([len(k) for k in scalars] + [8]) + 2
    lines += [f"  {k:<{width}}{_cell(v)}" for k, v in scalars.items()]
    per_class = report.get("per_class") or {}
    if per_class:
        columns = list(next(iter(per_class.values())))
        name_width = max(len("class"), *(len(n) for n in per_class)) + 2
        lines += ["", f"  {'class':<{name_width}}" + "".join(f"{c:>11}" for c in columns)]
        for name, row in per_class.items():
            cells = "".join(f"{_cell(row[c], c == 'support'):>11}" for c in columns)
            lines.append(f"  {name:<{name_width}}{cells}")
    if "ablation" in report:
        abl = report["ablation"]
        lines += ["", f"  {abl['metric']} with a modality masked out"]
        lines += [
            f"  {k.replace('_', ' '):<{width + 4}}{_cell(v)}"
            for k, v in abl.items()
            if k != "metric"
        ]
    if report.get("skipped"):
        lines += [
            "",
            f"  skipped {report['skipped']} clips: " + "; ".join(report["skipped_files"][:5]),
        ]
    return "\n".join(lines)


def _cell(v, count: bool = False) -> str:
    """A figure as a table shows it: counts whole, fractions to 3 places."""
    if count or isinstance(v, int):
        return f"{int(v)}"
    return f"{v:.3f}" if isinstance(v, float) else str(v)

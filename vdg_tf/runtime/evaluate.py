"""`vdg evaluate`: the task's report of a run bundle or an exported `.tflite` on a manifest."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf

from vdg_tf.bundle import Bundle, read_sidecars
from vdg_tf.data.pipeline import SkipLog, batched_features
from vdg_tf.data.sources import open_source
from vdg_tf.export.tflite import read_metadata
from vdg_tf.export.verify import predict_tflite
from vdg_tf.models.builder import inference_model
from vdg_tf.training.evaluate import modality_ablation, predict_dataset
from vdg_tf.training.plots import plot_confusion

Predict = Callable[[tf.data.Dataset], tuple[np.ndarray, np.ndarray]]


def load_for_inference(model: str | Path, trust_model: bool = False) -> tuple[Bundle, Predict]:
    """The bundle of `model` (a run folder, `model.keras` or `.tflite`) and a function that
    maps a dataset to (targets, outputs) with it (Keras, or LiteRT for a `.tflite`).

    A `.tflite` reads its labels, vocabulary and config from the sidecar files `vdg export`
    wrote beside it (`model.labels.txt`, ...), else from the metadata `vdg export
    --embed-metadata` put inside it. `trust_model`: load a Keras format that can run code.
    """
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


def evaluate(
    model: str | Path,
    data: str | Path,
    ablation: bool = False,
    plot: str | Path | None = None,
    trust_model: bool = False,
) -> dict:
    """The task's metrics of `model` on `data` (manifest or preprocessed folder), with the
    skipped clips; `ablation` adds the metric with each modality masked out, `plot`
    writes the confusion matrix (classification-like tasks).

    Example:
      report = evaluate("runs/a", "data/manifest_eval.jsonl")
    """
    bundle, predict = load_for_inference(model, trust_model)
    cfg, task = bundle.config, bundle.task
    skips = SkipLog()
    source = open_source(data, cfg.data, bundle.labels, skips=skips)
    ds = batched_features(source.decoded, cfg.data, bundle.tokenizer)
    y, outputs = predict(ds)
    if len(y) == 0:
        raise ValueError(f"{data}: no clip could be evaluated ({skips.summary(source.count)})")
    report = task.report(y, outputs, bundle.labels)
    if ablation:
        report["ablation"] = modality_ablation(
            predict, ds, cfg.model.modalities, task, bundle.labels
        )
    if plot and "confusion" in report:
        title = f"{Path(model).name} on {Path(data).name}"
        plot_confusion(report["confusion"], bundle.labels, plot, title)
    print(skips.summary(source.count), file=sys.stderr)
    return {**report, "skipped": skips.count, "skipped_files": skips.reasons}


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

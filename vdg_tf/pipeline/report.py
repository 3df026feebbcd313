"""A pipeline run's report: the plots beside `report.json` and the table people read.

Sizes are shown only for files a device would download: a training checkpoint (the QAT
model, float weights plus quantizer state) is listed with its score, labelled as a
checkpoint, without a size that would read as bigger than the float model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vdg_tf.results import Result
from vdg_tf.training.plots import plot_size_accuracy

SPLIT_NAMES = {"eval": "the evaluation split", "val": "the validation split"}
# the share of clips an export must decide as the trained model does to count as "fastest"
# (the default tolerance of `vdg export --target auto`)
FASTEST_TOLERANCE = 0.99


@dataclass
class PipelineReport(Result):
    """What `vdg.run` returns and `report.json` holds: one entry per stage (`stages`, keyed
    by what it is: `keras_float`, `pruned`, `qat`, `tflite_int8`, ...), each with the task's
    metric, `bytes`, `gzip_bytes`, `path` and for `.tflite` files `latency_ms`.

    `to_dict()` is what `vdg run --json` prints (`report.json` is the same without
    `report`); `format()` is the table a person reads.
    """

    pipeline: str
    task: str
    model: str  # what was built, for plot titles
    eval_data: str  # what every stage is scored on
    stages: dict
    metric: str
    higher_is_better: bool
    pareto_front: list[str] | None = None  # after a sweep: the points nothing beats
    fastest: dict | None = None  # the quickest `.tflite` stage here that agrees (`fastest_stage`)
    labels: list[str] = field(default_factory=list)
    training: dict | None = None  # the train stage's checkpoint rule and validation figures
    stages_scored_on: str = "eval"  # "eval", or "val" when no evaluation data was given
    layers_left_float_in_qat: list[str] = field(default_factory=list)
    skipped: int = 0
    skipped_files: list[str] = field(default_factory=list)
    report: str | None = None  # the path of report.json

    def to_dict(self) -> dict:
        """The report's fields; a sweep's front and the training section only when there."""
        d = super().to_dict()
        return {
            k: v
            for k, v in d.items()
            if v is not None or k not in ("pareto_front", "training", "fastest")
        }

    def format(self) -> str:
        return format_report(self.to_dict())


def fastest_stage(stages: dict, tolerance: float = FASTEST_TOLERANCE) -> dict | None:
    """The `.tflite` stage (`tflite_*`) with the lowest `latency_ms` among those whose
    top-1 agreement with the trained model is >= `tolerance` (a task without decisions has
    no agreement figure: every export qualifies), as `vdg export --target auto` would pick
    on this machine; None when no stage was timed.

    Returns `{stage, target, latency_ms, agreement, tolerance, candidates}`, `candidates`
    being every timed stage's `{stage, latency_ms, agreement, within_tolerance}`.
    """
    candidates = []
    for name, e in stages.items():
        if not name.startswith("tflite_") or e.get("latency_ms") is None:
            continue
        agree = e.get("top1_agreement")
        ok = agree is None or agree >= tolerance
        candidates.append(
            {"stage": name, "latency_ms": e["latency_ms"], "agreement": agree,
             "within_tolerance": ok}
        )  # fmt: skip
    kept = [c for c in candidates if c["within_tolerance"]]
    if not kept:
        return None
    best = min(kept, key=lambda c: (c["latency_ms"], stages[c["stage"]].get("bytes", 0)))
    return {
        "stage": best["stage"],
        "target": _target_of(stages[best["stage"]]),
        "latency_ms": best["latency_ms"],
        "agreement": best["agreement"],
        "tolerance": tolerance,
        "candidates": candidates,
    }


def _target_of(entry: dict) -> str | None:
    """The export target a stage's file was made for (`model_<target>.tflite`), if named so."""
    stem = Path(entry.get("path", "")).stem
    return stem.removeprefix("model_") if stem.startswith("model_") else None


def _points(entries: dict) -> dict[str, tuple[float, float]]:
    """(gzip bytes, score) per deployable entry."""
    return {
        name: (e["gzip_bytes"], e["score"])
        for name, e in entries.items()
        if e.get("deployable", True)
    }


def _title(report: dict, what: str) -> str:
    """`<pipeline> (<model>) on <eval data>: <what>`, from what the report knows."""
    model = f" ({report['model']})" if report.get("model") else ""
    data = f" on {Path(report['eval_data']).name}" if report.get("eval_data") else ""
    return f"{report['pipeline']}{model}{data}\n{what}"


def plot_report(report: dict, out: Path) -> dict:
    """`report.png` (the exports) and, after a sweep, `pareto.png` with its front.

    Returns what the report gains: `pareto_front`, the sweep points no other beats on
    both size and score.
    """
    stages, higher, metric = report["stages"], report["higher_is_better"], report["metric"]
    added: dict = {}
    tflite = {n: e for n, e in stages.items() if n.startswith("tflite_")}
    if tflite:
        plot_size_accuracy(
            _points(tflite),
            out / "report.png",
            _title(report, f"{metric} of each export (run in LiteRT) against its gzip size"),
            metric,
            higher,
        )
    sweep = {n: e for n, e in stages.items() if n.startswith("sweep_")}
    if sweep:
        added["pareto_front"] = plot_size_accuracy(
            _points(sweep),
            out / "pareto.png",
            _title(report, f"{metric} against gzip size: sparsity x target"),
            metric,
            higher,
        )
    return added


def headline(report: dict) -> str | None:
    """What compression did, in words: the smallest deployable export against the float32
    one (size ratio and score), or None without both."""
    s, metric = report["stages"], report.get("metric", "accuracy")
    base = s.get("tflite_float32")
    # the pipeline's own exports first; a sweep's points only when it has none
    small = [(e["bytes"], n) for n, e in s.items() if n.startswith("tflite_") and e is not base]
    small = small or [(e["bytes"], n) for n, e in s.items() if n.startswith("sweep_")]
    if not base or not small:
        return None
    name = min(small)[1]
    e = s[name]
    text = (
        f"{name} is {e['bytes'] / base['bytes']:.2f}x the float32 export's size "
        f"({e['gzip_bytes'] / base['gzip_bytes']:.2f}x gzipped), {metric} {e['score']:.3f} "
        f"against {base['score']:.3f}"
    )
    if "top1_agreement" in e:
        text += f"; it agrees with the float model on {e['top1_agreement']:.1%} of clips"
    return text


def format_report(report: dict) -> str:
    """A headline, then one line per stage: the task's metric, size, gzip size, latency,
    and notes."""
    metric = report.get("metric", "accuracy")
    lines = [f"pipeline {report['pipeline']} (task {report.get('task', 'classification')})"]
    if headline(report):
        lines.append(f"  {headline(report)}")
    lines.append(f"  {'stage':<22}{metric[:9]:>9}{'bytes':>11}{'gzip':>10}{'ms':>8}  notes")
    for name, s in report["stages"].items():
        notes = []
        deployable = s.get("deployable", True)
        if not deployable:
            notes.append("training checkpoint: no deployable size")
        if "sparsity" in s:
            notes.append(f"sparsity {s['sparsity']:.2f}")
        if "top1_agreement" in s:
            notes.append(f"agree {s['top1_agreement']:.3f}")
        if s.get("int8_op_fraction"):
            notes.append(f"int8 ops {s['int8_op_fraction']:.2f}")
        ms = f"{s['latency_ms']:.2f}" if "latency_ms" in s else "-"
        size = f"{s['bytes']:>11,}{s['gzip_bytes']:>10,}" if deployable else f"{'-':>11}{'-':>10}"
        lines.append(f"  {name:<22}{s['score']:>9.3f}{size}{ms:>8}  " + ", ".join(notes))
    fastest = report.get("fastest")
    if fastest:
        agree = fastest["agreement"]
        agreed = f", agreement {agree:.3f}" if agree is not None else ""
        lines.append(
            f"  fastest here: {fastest['stage']} ({fastest['latency_ms']:.2f} ms{agreed}; "
            f"the quickest export agreeing on >= {fastest['tolerance']:.0%} of clips)"
        )
    training = report.get("training", {})
    if "checkpoint" in training:
        lines.append(f"  checkpoint: {training['checkpoint']['why']}")
    val = training.get("val")
    if val and metric in val:
        lines.append(
            f"  validation {metric} {val[metric]:.3f} ({val.get('rows')} clips of {val.get('data')})"
        )
    split = SPLIT_NAMES[report.get("stages_scored_on", "eval")]
    lines.append(f"  every stage scored on {split} ({report.get('eval_data')})")
    if report.get("skipped"):
        lines.append(
            f"  skipped {report['skipped']} clips: {'; '.join(report['skipped_files'][:3])}"
        )
    if report.get("report"):
        out = Path(report["report"]).parent
        plots = [p for p in ("report.png", "pareto.png") if (out / p).is_file()]
        lines.append(f"  report: {report['report']}" + (f" ({', '.join(plots)})" if plots else ""))
    return "\n".join(lines)

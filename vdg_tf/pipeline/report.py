"""A pipeline run's report: the plots beside `report.json` and the table people read."""

from __future__ import annotations

from pathlib import Path

from vdg_tf.training.plots import plot_size_accuracy


def _points(entries: dict, higher_is_better: bool) -> dict[str, tuple[float, float]]:
    """(gzip bytes, score) per deployable entry, the score signed so higher is better."""
    sign = 1.0 if higher_is_better else -1.0
    return {
        name: (e["gzip_bytes"], sign * e["score"])
        for name, e in entries.items()
        if e.get("deployable", True)
    }


def plot_report(report: dict, out: Path) -> dict:
    """`report.png` (the exports) and, after a sweep, `pareto.png` with its front.

    Returns what the report gains: `pareto_front`, the sweep points no other beats on
    both size and score.
    """
    stages, higher = report["stages"], report["higher_is_better"]
    metric = report["metric"] if higher else f"-{report['metric']}"
    added: dict = {}
    tflite = {n: e for n, e in stages.items() if n.startswith("tflite_")}
    if tflite:
        plot_size_accuracy(
            _points(tflite, higher),
            out / "report.png",
            f"{report['pipeline']}: exports verified in LiteRT",
            metric,
        )
    sweep = {n: e for n, e in stages.items() if n.startswith("sweep_")}
    if sweep:
        added["pareto_front"] = plot_size_accuracy(
            _points(sweep, higher),
            out / "pareto.png",
            f"{report['pipeline']}: sparsity x target",
            metric,
        )
    return added


def format_report(report: dict) -> str:
    """One line per stage: the task's metric, size, gzip size, latency, and notes."""
    metric = report.get("metric", "accuracy")
    lines = [
        f"pipeline {report['pipeline']} (task {report.get('task', 'classification')})",
        f"  {'stage':<22}{metric[:9]:>9}{'bytes':>11}{'gzip':>10}{'ms':>8}  notes",
    ]
    for name, s in report["stages"].items():
        notes = []
        if not s.get("deployable", True):
            notes.append("training checkpoint, not a deployable size")
        if "sparsity" in s:
            notes.append(f"sparsity {s['sparsity']:.2f}")
        if "top1_agreement" in s:
            notes.append(f"agree {s['top1_agreement']:.3f}")
        if s.get("int8_op_fraction"):
            notes.append(f"int8 ops {s['int8_op_fraction']:.2f}")
        ms = f"{s['latency_ms']:.2f}" if "latency_ms" in s else "-"
        lines.append(
            f"  {name:<22}{s['score']:>9.3f}{s['bytes']:>11,}{s['gzip_bytes']:>10,}{ms:>8}  "
            + ", ".join(notes)
        )
    if report.get("skipped"):
        lines.append(
            f"  skipped {report['skipped']} clips: {'; '.join(report['skipped_files'][:3])}"
        )
    lines.append(f"  report: {report.get('report', '')}")
    return "\n".join(lines)

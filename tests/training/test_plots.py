"""Plots a person trusts: fraction axes within [0, 1], the Pareto front drawn as a line and
named in the legend, plain tick labels, labels apart, checkpoints without a size."""

import json

import matplotlib.pyplot as plt
import pytest
from matplotlib.text import Text

from vdg_tf.pipeline.report import format_report, plot_report
from vdg_tf.training.plots import pareto_front, size_accuracy_figure

SWEEP = {  # name: (gzip bytes, accuracy); two points on top of each other at 1.0
    "sweep_s00_int8": (60_000, 1.0),
    "sweep_s50_int8": (40_000, 1.0),
    "sweep_s50_fp16": (41_000, 0.99),
    "sweep_s75_int8": (30_000, 0.975),
    "sweep_s90_int8": (22_000, 0.8),
    "sweep_s90_fp16": (48_000, 0.79),
}


def test_pareto_front_is_smaller_and_better_for_either_direction():
    assert pareto_front(SWEEP) == ["sweep_s90_int8", "sweep_s75_int8", "sweep_s50_int8"]
    errors = {"a": (10, 0.5), "b": (20, 0.3), "c": (30, 0.4)}  # an error: lower is better
    assert pareto_front(errors, higher_is_better=False) == ["a", "b"]


def test_size_accuracy_figure_axes_front_line_legend_and_labels():
    fig, front = size_accuracy_figure(SWEEP, "demo on eval.jsonl", "accuracy")
    ax = fig.axes[0]
    low, high = ax.get_ylim()
    assert 0.0 <= low < 0.79 and high == 1.0  # an accuracy axis never runs past 1
    (line,) = [ln for ln in ax.get_lines() if ln.get_label() == "pareto_front"]
    assert list(line.get_ydata()) == [SWEEP[n][1] for n in front]
    assert list(line.get_xdata()) == pytest.approx([SWEEP[n][0] / 1024 for n in front])
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(t.startswith("Pareto front") for t in legend)
    assert ax.get_legend().get_lines()[0].get_linestyle() == "-"  # drawn as a line
    fig.canvas.draw()
    ticks = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert ticks and not any("^" in t or "times" in t for t in ticks)
    texts = [t for t in ax.texts if t.get_text() in SWEEP]
    assert sorted(t.get_text() for t in texts) == sorted(SWEEP)
    r = fig.canvas.get_renderer()
    boxes = [Text.get_window_extent(t, r) for t in texts]  # the words, not a leader line
    frame = ax.get_window_extent(r)
    for i, a in enumerate(boxes):
        assert frame.x0 <= a.x0 and a.x1 <= frame.x1 and frame.y0 <= a.y0 and a.y1 <= frame.y1
        assert not any(a.overlaps(b) for b in boxes[i + 1 :]), texts[i].get_text()
    plt.close(fig)


def test_wide_size_range_uses_a_log_axis_with_plain_ticks():
    fig, _ = size_accuracy_figure({"a": (2_000, 0.5), "b": (200_000, 0.9)})
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    fig.canvas.draw()
    ticks = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert ticks and all(t.replace(",", "").replace(".", "").isdigit() for t in ticks), ticks
    plt.close(fig)


def test_report_plots_and_table_give_checkpoints_no_size(tmp_path):
    entry = {"score": 0.9, "bytes": 300_000, "gzip_bytes": 250_000, "deployable": True}
    stages = {
        "keras_float": dict(entry, bytes=1_100_000, gzip_bytes=800_000),
        "qat": dict(entry, bytes=5_400_000, gzip_bytes=1_300_000, deployable=False),
        "tflite_float32": entry,
        "tflite_int8": dict(entry, score=0.88, bytes=95_000, gzip_bytes=58_000),
    }
    stages |= {n: dict(entry, gzip_bytes=g, bytes=g, score=s) for n, (g, s) in SWEEP.items()}
    report = {
        "pipeline": "sweep",
        "model": "serial fusion of video + audio + text",
        "eval_data": "data/manifest_eval.jsonl",
        "task": "classification",
        "metric": "accuracy",
        "higher_is_better": True,
        "stages": stages,
    }
    added = plot_report(report, tmp_path)
    assert added["pareto_front"] == pareto_front(SWEEP)
    assert (tmp_path / "report.png").is_file() and (tmp_path / "pareto.png").is_file()
    report["report"] = str(tmp_path / "report.json")
    (tmp_path / "report.json").write_text(json.dumps(report))
    text = format_report(report)
    qat = next(line for line in text.splitlines() if line.strip().startswith("qat"))
    assert "5,400,000" not in qat and "training checkpoint" in qat
    assert "tflite_int8 is 0.32x the float32 export's size" in text
    assert "report.png, pareto.png" in text

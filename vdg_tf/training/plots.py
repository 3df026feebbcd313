"""PNG plots for people: training curves, the confusion matrix and size against score
(matplotlib, headless).

Rules every plot keeps: a metric that is a fraction (accuracy, F1, mAP, AUROC) gets an axis
within [0, 1]; ticks are plain numbers (`200`, `500` KiB, never `2x10^2`); point labels
are moved apart until they do not overlap; titles say which model, data and metric.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter  # noqa: E402

from vdg_tf.tasks.plots import plot_confusion  # noqa: E402, F401  (the task's plot)
from vdg_tf.tasks.plots import save_figure as _save  # noqa: E402


def _is_fraction(values, higher_is_better: bool = True) -> bool:
    """A score that lives in [0, 1] (accuracy, F1, mAP, AUROC), not an error like MAE."""
    values = [v for v in values if np.isfinite(v)]
    return higher_is_better and bool(values) and all(0.0 <= v <= 1.0 for v in values)


def _fraction_axis(ax, values) -> None:
    """y within [0, 1]: from a little under the lowest value (or 0) up to exactly 1."""
    low = min(values)
    ax.set_ylim(max(0.0, low - max(0.05, 0.15 * (1.0 - low))), 1.0)


def plot_curves(history: dict[str, list[float]], path: str | Path, title: str = "") -> None:
    """Loss and the task's metric (the fused head's) per epoch, train against validation."""
    metric = next((k for k in history if k.startswith("fused_") and not k.endswith("loss")), None)
    keys = ["loss"] + ([metric] if metric else [])
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.8), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        shown = []
        for prefix, style, name in (("", "-", "train"), ("val_", "--", "validation")):
            if prefix + key in history:
                values = history[prefix + key]
                epochs = range(1, len(values) + 1)
                ax.plot(epochs, values, style, marker="o", ms=3, label=name)
                shown += values
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        label = key.removeprefix("fused_")
        ax.set_ylabel(label)
        ax.set_title(f"{label} (fused head)" if key == metric else "loss (all heads)")
        if key == metric and _is_fraction(shown):
            _fraction_axis(ax, shown)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    _save(fig, Path(path))


def pareto_front(
    points: dict[str, tuple[float, float]], higher_is_better: bool = True
) -> list[str]:
    """Names of the (size, score) points no other point beats on both: smaller and better,
    ordered by size."""
    sign = 1.0 if higher_is_better else -1.0
    front, best = [], -np.inf
    for name, (_, score) in sorted(points.items(), key=lambda kv: (kv[1][0], -sign * kv[1][1])):
        if sign * score > best:
            front.append(name)
            best = sign * score
    return front


def _kib(v: float, _pos=None) -> str:
    return f"{v:,.0f}" if v >= 10 else f"{v:g}"


def _place_labels(ax, xy: dict[str, tuple[float, float]]) -> dict:
    """Annotate each point with its name where the label overlaps no other label and
    stays inside the axes.

    Tries places right of the point, then below, above and left of it, in steps of
    one label height; returns {name: annotation}.
    """
    ax.autoscale_view()  # label boxes are measured in the final data-to-pixel transform
    renderer = ax.figure.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    steps = [4, -11, 15, -22, 26, -33, 37, -44, 48, -55, 59, -66]
    places = [(5, d, "left") for d in steps] + [(-5, d, "right") for d in steps]
    placed, texts = [], {}
    for name, (x, y) in sorted(xy.items(), key=lambda kv: (kv[1][0], -kv[1][1])):
        fallback = None  # the first place inside the axes, if every place overlaps
        for dx, dy, ha in places:
            box = _label_box(ax, renderer, name, (x, y), dx, dy, ha)
            inside = (
                box.x0 >= frame.x0 and box.x1 <= frame.x1
                and box.y0 >= frame.y0 and box.y1 <= frame.y1
            )  # fmt: skip
            if inside and fallback is None:
                fallback = (dx, dy, ha)
            if inside and not any(box.padded(6).overlaps(b) for b in placed):
                break
        else:
            dx, dy, ha = fallback or places[0]
        texts[name] = ax.annotate(
            name, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=7, ha=ha,
            arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "0.5"} if abs(dy) > 15 else None,
        )  # fmt: skip
        placed.append(_label_box(ax, renderer, name, (x, y), dx, dy, ha))  # text, not arrow
    return texts


def _label_box(ax, renderer, name, xy, dx, dy, ha):
    """The pixel box a label would take at offset (dx, dy) points from `xy`."""
    t = ax.annotate(name, xy, xytext=(dx, dy), textcoords="offset points", fontsize=7, ha=ha)
    box = t.get_window_extent(renderer)
    t.remove()
    return box


def plot_size_accuracy(
    points: dict[str, tuple[float, float]],
    path: str | Path,
    title: str = "",
    metric: str = "accuracy",
    higher_is_better: bool = True,
) -> list[str]:
    """The task's score against gzip size (KiB), each point labelled, the Pareto front drawn
    as a line through its points (in the legend too).

    Args:
      points: {name: (gzip bytes, score)} of deployable files only.
      metric: the score's name (the y label); `higher_is_better` says which way is better.

    Returns the names on the front, smallest first.
    """
    fig, front = size_accuracy_figure(points, title, metric, higher_is_better)
    _save(fig, Path(path))
    return front


def size_accuracy_figure(
    points: dict[str, tuple[float, float]],
    title: str = "",
    metric: str = "accuracy",
    higher_is_better: bool = True,
):
    """The figure of `plot_size_accuracy` (unsaved, for tests and notebooks) and its front."""
    front = pareto_front(points, higher_is_better)
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    xy = {n: (b / 1024, v) for n, (b, v) in points.items()}
    others = [n for n in xy if n not in front]
    ax.scatter(
        [xy[n][0] for n in others], [xy[n][1] for n in others],
        s=24, c="C0", zorder=3, clip_on=False,
    )  # fmt: skip
    fx, fy = [xy[n][0] for n in front], [xy[n][1] for n in front]
    ax.plot(
        fx, fy, "-o", c="C3", label="pareto_front", ms=6, lw=1.5, drawstyle="steps-post" if len(fx) > 1 else "default",
        zorder=4, clip_on=False,
    )  # fmt: skip
    sizes = [x for x, _ in xy.values()]
    if max(sizes) / max(min(sizes), 1e-9) > 8:
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("gzip size (KiB, log scale)")
    else:
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6))
        ax.set_xlabel("gzip size (KiB)")
        pad = 0.08 * (max(sizes) - min(sizes) or max(sizes))
        ax.set_xlim(max(0.0, min(sizes) - pad), max(sizes) + 3 * pad)  # room for labels
    ax.xaxis.set_major_formatter(FuncFormatter(_kib))
    scores = [v for _, v in xy.values()]
    if _is_fraction(scores, higher_is_better):
        _fraction_axis(ax, scores)
    ax.set_ylabel(metric + ("" if higher_is_better else " (lower is better)"))
    ax.set_title(title or f"{metric} against size")
    ax.grid(alpha=0.3, which="major")
    _place_labels(ax, xy)
    handles = [
        Line2D(
            [], [], c="C3", marker="o", lw=1.5, label="Pareto front (nothing smaller and better)"
        ),
    ]
    if others:
        handles.append(Line2D([], [], c="C0", marker="o", lw=0, label="dominated"))
    ax.legend(handles=handles, loc="best", fontsize=8)
    return fig, front

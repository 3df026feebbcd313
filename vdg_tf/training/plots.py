"""PNG plots for people: training curves and the confusion matrix (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from vdg_tf.files import atomic_path  # noqa: E402


def _save(fig, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_curves(history: dict[str, list[float]], path: str | Path) -> None:
    """Loss and accuracy per epoch, train against validation."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, key in zip(axes, ("loss", "fused_accuracy"), strict=True):
        for prefix, style in (("", "-"), ("val_", "--")):
            if prefix + key in history:
                ax.plot(history[prefix + key], style, label=(prefix or "train_") + key)
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend()
    _save(fig, Path(path))


def plot_confusion(cm: np.ndarray, labels: list[str], path: str | Path, title: str = "") -> None:
    """Confusion matrix heat map with counts in the cells."""
    cm = np.asarray(cm)
    n = len(labels)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * n, 0.8 + 0.6 * n))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(n), labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(n), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or "confusion matrix")
    for i in range(n):
        for j in range(n):
            if cm[i, j]:
                ax.text(
                    j,
                    i,
                    int(cm[i, j]),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if cm[i, j] > cm.max() / 2 else "black",
                )
    _save(fig, Path(path))


def pareto_front(points: dict[str, tuple[float, float]]) -> list[str]:
    """Names of the (size, accuracy) points no other point beats on both: smaller and better."""
    front, best = [], -np.inf
    for name, (_, acc) in sorted(points.items(), key=lambda kv: (kv[1][0], -kv[1][1])):
        if acc > best:
            front.append(name)
            best = acc
    return front


def plot_size_accuracy(
    points: dict[str, tuple[float, float]],
    path: str | Path,
    title: str = "",
    ylabel: str = "accuracy",
) -> list[str]:
    """Accuracy against gzip size (log scale), each point labelled, the Pareto front drawn.

    Returns the names on the front.
    """
    front = pareto_front(points)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, (size, acc) in points.items():
        on = name in front
        ax.scatter(size / 1024, acc, s=40 if on else 20, c="C3" if on else "C0", zorder=3)
        ax.annotate(name, (size / 1024, acc), fontsize=7, xytext=(4, 3), textcoords="offset points")
    xs = [points[n][0] / 1024 for n in front]
    ax.step(
        xs, [points[n][1] for n in front], where="post", c="C3", alpha=0.6, label="Pareto front"
    )
    ax.set_xscale("log")
    ax.set_xlabel("gzip size (KiB, log)")
    ax.set_ylabel(ylabel)
    ax.set_title(title or "size vs accuracy")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="lower right")
    _save(fig, Path(path))
    return front

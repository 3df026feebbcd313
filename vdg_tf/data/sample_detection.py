"""Sample data for detection: short mp4 clips whose moving shapes carry their boxes.

Each clip (320 x 240, UCF101's size) shows up to `max_objects` shapes of three classes
(`circle`, `square`, `triangle`, each in a random colour, so the class is the shape, not
the colour) moving in straight lines and bouncing off the frame's edges, each visible
for part of the clip. The background looks like a scene rather than a flat colour: a
colour gradient under multi-scale noise texture that pans slowly (a moving camera), with
clutter a detector must learn to ignore (thin lines, specks, soft blobs, rectangle
outlines) and fresh sensor noise on every frame.

Rows are the detection contract, `{"video", "boxes": [{"t", "box": [x1, y1, x2, y2],
"label"}], "times": [...]}`: every `annotate_every`-th frame is annotated, at its frame
time, with the exact extent of every shape on it (relative, pixel edges / frame size);
annotated frames where no shape is visible are listed in `times` with no box, and train
as background.

Example:
  info = make_detection_sample("data/det", clips=80, seed=0)
  info["manifest_train"]  # data/det/manifest_train.jsonl
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vdg_tf._progress import bar
from vdg_tf.data.sample import write_clip
from vdg_tf.files import atomic_dir, write_json
from vdg_tf.manifest import write_manifest

SHAPES = ("circle", "square", "triangle")


@dataclass(frozen=True)
class DetectionSpec:
    """How the clips look: frame size, rate, length, which frames are annotated, how many
    shapes and how big (a fraction of the frame's short side)."""

    width: int = 320
    height: int = 240
    fps: int = 8
    seconds: float = 2.0
    annotate_every: int = 2  # annotate every n-th frame
    max_objects: int = 3
    min_size: float = 0.15
    max_size: float = 0.4


def make_detection_sample(
    out: str | Path,
    clips: int = 80,
    seed: int = 0,
    *,
    eval_fraction: float = 0.25,
    spec: DetectionSpec | None = None,
    progress: bool = False,
) -> dict:
    """Write `clips` mp4 files plus `manifest_train.jsonl` / `manifest_eval.jsonl`.

    Deterministic for a seed (clip i draws from its own generator seeded by (seed, i));
    the folder is built beside `out` and swapped in whole (`files.atomic_dir`).

    Returns:
      {"manifest_train", "manifest_eval", "clips", "train_clips", "eval_clips", "labels",
       "boxes", "frames", "empty_frames"}
    """
    spec = spec or DetectionSpec()
    if clips < 2:
        raise ValueError(f"clips: need at least 2 (one to train, one to evaluate), got {clips}")
    rows = []
    with atomic_dir(out) as tmp:
        tmp.chmod(0o755)  # mkdtemp's folder is private; the data is not
        (tmp / "clips").mkdir()
        ids = range(clips)
        for i in bar(ids, "writing clips", total=clips, unit="clip") if progress else ids:
            rng = np.random.default_rng([seed, i])
            name = f"clips/{i:05d}.mp4"
            frames, row = render_clip(rng, spec)
            write_clip(tmp / name, frames, spec.fps)
            rows.append({"video": name, **row})
        n_eval = max(1, int(round(clips * eval_fraction)))
        write_manifest(tmp / "manifest_train.jsonl", rows[n_eval:])
        write_manifest(tmp / "manifest_eval.jsonl", rows[:n_eval])
        write_json(tmp / "info.json", {"clips": clips, "seed": seed, "task": "detection"})
    out = Path(out)
    boxed = {(r["video"], b["t"]) for r in rows for b in r["boxes"]}
    frames = sum(len(r["times"]) for r in rows)
    return {
        "manifest_train": str(out / "manifest_train.jsonl"),
        "manifest_eval": str(out / "manifest_eval.jsonl"),
        "clips": clips,
        "train_clips": clips - n_eval,
        "eval_clips": n_eval,
        "labels": sorted({b["label"] for r in rows for b in r["boxes"]}),
        "boxes": sum(len(r["boxes"]) for r in rows),
        "frames": frames,
        "empty_frames": frames - len(boxed),
    }


def render_clip(rng: np.random.Generator, spec: DetectionSpec) -> tuple[np.ndarray, dict]:
    """One clip's frames `[T, H, W, 3]` uint8 and its row's `boxes` and `times`."""
    n = max(2, int(round(spec.seconds * spec.fps)))
    w, h = spec.width, spec.height
    texture = _background(rng, w + 64, h + 64)
    pan = rng.uniform(-2.0, 2.0, size=2)
    objects = [
        _plan_object(rng, n, spec) for _ in range(int(rng.integers(0, spec.max_objects + 1)))
    ]
    frames = np.empty((n, h, w, 3), np.uint8)
    boxes, times = [], []
    for k in range(n):
        oy, ox = (np.array([32, 32]) + pan * k).round().astype(int) % 64
        img = texture[oy : oy + h, ox : ox + w].copy()
        img += rng.normal(0, 6, size=img.shape).astype(np.float32)
        annotated = k % spec.annotate_every == 0
        t = round(k / spec.fps, 6)
        for obj in objects:
            if not obj["first"] <= k < obj["last"]:
                continue
            x1, y1, x2, y2 = _draw(img, obj, k)
            if annotated:
                box = [round(x1 / w, 6), round(y1 / h, 6), round(x2 / w, 6), round(y2 / h, 6)]
                boxes.append({"t": t, "box": box, "label": obj["shape"]})
        if annotated:
            times.append(t)
        frames[k] = np.clip(img, 0, 255).astype(np.uint8)
    return frames, {"boxes": boxes, "times": times}


def _plan_object(rng: np.random.Generator, n: int, spec: DetectionSpec) -> dict:
    """A shape, colour, size, start point, velocity and the frames it is on screen."""
    short = min(spec.width, spec.height)
    size = int(rng.uniform(spec.min_size, spec.max_size) * short)
    first = int(rng.integers(0, n // 2)) if rng.random() < 0.4 else 0
    last = int(rng.integers(n // 2 + 1, n + 1)) if rng.random() < 0.4 else n
    return {
        "shape": SHAPES[int(rng.integers(len(SHAPES)))],
        "color": rng.uniform(20, 255, size=3).astype(np.float32),
        "size": size,
        "pos": rng.uniform(0, 1, size=2) * (spec.width - size, spec.height - size),
        "vel": rng.uniform(-1, 1, size=2) * short / 30,
        "first": first,
        "last": last,
        "frame": (spec.width, spec.height),
    }


def _draw(img: np.ndarray, obj: dict, k: int) -> tuple[int, int, int, int]:
    """Paint `obj` at frame `k` into `img`; its box in pixels (x1, y1, x2, y2), exclusive."""
    w, h = obj["frame"]
    size = obj["size"]
    x, y = (
        _bounce(p, v * k, span - size)
        for p, v, span in zip(obj["pos"], obj["vel"], (w, h), strict=True)
    )
    x, y = int(round(x)), int(round(y))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    if obj["shape"] == "circle":
        mask = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 <= (size / 2) ** 2
    elif obj["shape"] == "square":
        mask = np.ones((size, size), bool)
    else:  # triangle pointing up: apex at the top centre, base along the bottom
        mask = (yy >= 2 * np.abs(xx - size / 2)) & (yy <= size)
    shade = obj["color"] * (0.85 + 0.3 * yy[..., None] / size)  # lit from above
    region = img[y : y + size, x : x + size]
    region[mask] = shade[mask]
    ys, xs = np.nonzero(mask)
    return x + int(xs.min()), y + int(ys.min()), x + int(xs.max()) + 1, y + int(ys.max()) + 1


def _bounce(p: float, moved: float, span: float) -> float:
    """Position `p + moved` reflected into [0, span] (a shape bouncing off the edges)."""
    if span <= 0:
        return 0.0
    q = (p + moved) % (2 * span)
    return q if q <= span else 2 * span - q


def _background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A scene-like float32 background: a gradient, noise texture at three scales, and
    clutter (lines, specks, soft blobs, rectangle outlines)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * xx / w + np.sin(angle) * yy / h + 1) / 2
    a, b = rng.uniform(30, 200, size=3), rng.uniform(30, 200, size=3)
    img = a + (b - a) * ramp[..., None]
    for cells, amp in ((4, 40), (12, 25), (40, 12)):
        img += amp * _smooth_noise(rng, w, h, cells)
    for _ in range(int(rng.integers(3, 7))):  # soft blobs
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(15, 60)
        weight = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))[..., None]
        img = img * (1 - 0.5 * weight) + rng.uniform(0, 255, size=3) * 0.5 * weight
    for _ in range(int(rng.integers(8, 20))):  # thin lines
        x0, y0, x1, y1 = rng.uniform(0, 1, size=4) * (w, h, w, h)
        t = np.linspace(0, 1, int(max(abs(x1 - x0), abs(y1 - y0))) + 2)
        xs, ys = (x0 + (x1 - x0) * t).astype(int), (y0 + (y1 - y0) * t).astype(int)
        img[np.clip(ys, 0, h - 1), np.clip(xs, 0, w - 1)] = rng.uniform(0, 255, size=3)
    for _ in range(int(rng.integers(20, 60))):  # specks
        cy, cx, r = rng.integers(0, h), rng.integers(0, w), rng.integers(1, 4)
        img[max(cy - r, 0) : cy + r, max(cx - r, 0) : cx + r] = rng.uniform(0, 255, size=3)
    for _ in range(int(rng.integers(1, 4))):  # rectangle outlines
        x0, y0 = rng.integers(0, w - 20), rng.integers(0, h - 20)
        x1, y1 = x0 + rng.integers(10, 60), y0 + rng.integers(10, 60)
        color = rng.uniform(0, 255, size=3)
        img[y0:y1, [x0, min(x1, w - 1)]] = color[None, None]
        img[[y0, min(y1, h - 1)], x0:x1] = color[None, None]
    return img.astype(np.float32)


def _smooth_noise(rng: np.random.Generator, w: int, h: int, cells: int) -> np.ndarray:
    """Value noise in [-1, 1]: a `cells`-wide random grid, bilinearly upsampled to h x w."""
    gh, gw = max(2, cells * h // w), cells
    grid = rng.uniform(-1, 1, size=(gh + 1, gw + 1, 3)).astype(np.float32)
    y, x = np.linspace(0, gh, h), np.linspace(0, gw, w)
    y0, x0 = np.minimum(y.astype(int), gh - 1), np.minimum(x.astype(int), gw - 1)
    fy, fx = (y - y0)[:, None, None], (x - x0)[None, :, None]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bottom = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float32)

"""How far MediaPipe's ObjectDetector and LiteRT agree on a detection run's frame-detector
export, on real frames: the figure BENCHMARKS.md records ("Detection export").

    python tools/mediapipe_agreement.py RUN_FOLDER EVAL.jsonl --mediapipe /tmp/mp-venv/bin/python

Exports RUN_FOLDER with `--frame-detector` (float32, or --target), takes --frames annotated
frames of the manifest, runs each through LiteRT (the frame resized as training resizes it)
and through MediaPipe (the original frame: MediaPipe resizes by itself, from the Model
Metadata), and prints, for every LiteRT box scoring >= --score, the best IoU of a MediaPipe
box of the same label, with the mean and the share >= 0.9. MediaPipe runs in its own venv
(tools/tflite_metadata/mediapipe_check.py): it cannot be installed beside vdg_tf.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vdg_tf.export.api import export  # noqa: E402
from vdg_tf.export.litert_detector import LiteRTDetector  # noqa: E402
from vdg_tf.manifest import read_manifest  # noqa: E402
from vdg_tf.media.frames import iter_frames  # noqa: E402
from vdg_tf.tasks.anchors import iou  # noqa: E402


def frames_of(manifest: str, size: int, resize: str, count: int) -> list:
    """Up to `count` (view, original) frames: each row's frames at its annotated times."""
    rows, _ = read_manifest(manifest)
    out = []
    for row in rows:
        times = sorted(set(row.times or ()) | {float(t) for t, _, _ in row.boxes or ()})
        frames = list(iter_frames(row.video, size, resize, original=True))
        for t in times:
            shown = [f for f in frames if f.t <= t + 1e-3] or frames[:1]
            out.append(shown[-1])
            if len(out) >= count:
                return out
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run")
    p.add_argument("manifest")
    p.add_argument("--mediapipe", required=True, help="python of a venv with mediapipe")
    p.add_argument("--target", default="float32")
    p.add_argument("--data", help="calibration manifest for an int8 target")
    p.add_argument("--frames", type=int, default=40)
    p.add_argument("--score", type=float, default=0.5)
    p.add_argument("--same-pixels", action="store_true",
                   help="give MediaPipe the model's own view (square, upscaled 2x) instead of "
                   "the original frame: separates the model's agreement from resizing")  # fmt: skip
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = export(a.run, a.target, Path(tmp) / "det.tflite", frame_detector=True,
                       data=a.data).path  # fmt: skip
        labels = (Path(tmp) / "det.labels.txt").read_text().splitlines()
        lite = LiteRTDetector(model, labels)
        from vdg_tf.bundle import Bundle

        resize = Bundle.load(a.run, model=False).config.data.video.resize
        frames = frames_of(a.manifest, lite.size, resize, a.frames)
        if a.same_pixels:
            shown = [np.repeat(np.repeat(f.view, 2, axis=0), 2, axis=1) for f in frames]
        else:
            shown = [f.image for f in frames]
        np.save(Path(tmp) / "frames.npy", np.stack(shown))
        script = ROOT / "tools/tflite_metadata/mediapipe_check.py"
        run = subprocess.run([a.mediapipe, str(script), str(model), str(Path(tmp) / "frames.npy")],
                             capture_output=True, text=True, check=True)  # fmt: skip
        mediapipe = json.loads(run.stdout)
    ious = []
    for frame, found in zip(frames, mediapipe, strict=True):
        for d in lite.detect(frame.view, a.score):
            same = [m["box"] for m in found if m["label"] == d["label"]]
            ious.append(max((float(iou([d["box"]], [b])[0, 0]) for b in same), default=0.0))
    result = {"target": a.target, "same_pixels": a.same_pixels, "frames": len(frames), "boxes": len(ious),
              "mean_iou": float(np.mean(ious)) if ious else None,
              "min_iou": float(np.min(ious)) if ious else None,
              "share_iou_0_9": float(np.mean(np.asarray(ious) >= 0.9)) if ious else None}  # fmt: skip
    print(json.dumps(result))


if __name__ == "__main__":
    main()

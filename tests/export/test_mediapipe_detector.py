"""MediaPipe's ObjectDetector runs our frame-detector export as it is, and its boxes agree
with LiteRT's (IoU >= 0.9 for every LiteRT box above 0.5, same label and score).

Slow (a first run installs mediapipe into a venv, 2-4 minutes; later runs ~20 s): mediapipe
pins absl-py against tfmot, so it lives in its own venv, made once and kept in pytest's
cache (`.pytest_cache/d/mediapipe-venv`), or the one `VDG_MEDIAPIPE_PYTHON` names:
    VDG_MEDIAPIPE_PYTHON=/tmp/mp-venv/bin/python pytest -m slow tests/export/test_mediapipe_detector.py
The script it runs there (tools/tflite_metadata/mediapipe_check.py) imports nothing of ours.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.export.toy_detector import ANCHORS, LABELS, SIZE, frame_detector, square_frame
from vdg_tf.export.detection import convert_detector
from vdg_tf.export.litert_detector import LiteRTDetector
from vdg_tf.export.tflite import ExportConfig
from vdg_tf.tasks.anchors import iou

ROOT = Path(__file__).resolve().parents[2]
MEDIAPIPE = "mediapipe==1.2.3"  # the version the issue checked the metadata against
SCALE = 10  # MediaPipe sees 320x320 frames (it rounds boxes to pixels), LiteRT the 32x32 view


def mediapipe_python(cache_dir: Path) -> str:
    """The python of a venv with mediapipe: $VDG_MEDIAPIPE_PYTHON, or one made in
    `cache_dir` (once; pip from the package index)."""
    given = os.environ.get("VDG_MEDIAPIPE_PYTHON")
    if given:
        return given
    python = cache_dir / "bin" / "python"
    if not python.is_file():
        subprocess.run([sys.executable, "-m", "venv", str(cache_dir)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", MEDIAPIPE], check=True)
    return str(python)


def mediapipe_boxes(python: str, model: Path, frame: np.ndarray, folder: Path) -> list[dict]:
    """Every detection MediaPipe's ObjectDetector makes on `frame` (uint8 RGB)."""
    np.save(folder / "frame.npy", frame)
    script = ROOT / "tools/tflite_metadata/mediapipe_check.py"
    run = subprocess.run([python, str(script), str(model), str(folder / "frame.npy")],
                         capture_output=True, text=True, check=True)  # fmt: skip
    return json.loads(run.stdout)


def agreement(litert: list[dict], mediapipe: list[dict], threshold: float = 0.5) -> list[float]:
    """For each LiteRT box scoring >= `threshold`: the best IoU of a MediaPipe box of the
    same label and score (within 0.02); 0 where there is none."""
    out = []
    for d in (d for d in litert if d["score"] >= threshold):
        same = [m for m in mediapipe
                if m["label"] == d["label"] and abs(m["score"] - d["score"]) < 0.02]  # fmt: skip
        best = max((float(iou([d["box"]], [m["box"]])[0, 0]) for m in same), default=0.0)
        out.append(best)
    return out


@pytest.mark.slow
def test_mediapipe_object_detector_agrees_with_litert(tmp_path, request):
    python = mediapipe_python(request.config.cache.mkdir("mediapipe-venv"))
    data = convert_detector(frame_detector(), ANCHORS, ExportConfig("float32"), labels=LABELS,
                            image_input=True)  # fmt: skip
    model = tmp_path / "frame_detector.tflite"
    model.write_bytes(data)
    lite = LiteRTDetector(model, LABELS)
    ious = []
    # objects away from the frame's edges: at an edge MediaPipe clamps a box's origin and
    # keeps its width, where LiteRT's reader clips both corners
    for x, y in ((8, 16), (4, 4), (20, 12)):
        view = np.maximum(square_frame(0, x, y), square_frame(2, 24 - x, 24 - y))
        big = np.repeat(np.repeat(view, SCALE, axis=0), SCALE, axis=1)  # the same picture
        found = mediapipe_boxes(python, model, big, tmp_path)
        ious += agreement(lite.detect(view), found)
    assert ious and min(ious) >= 0.9, ious
    print(
        f"MediaPipe vs LiteRT: {len(ious)} boxes, IoU min {min(ious):.3f} mean {np.mean(ious):.3f}"
    )
    assert SIZE * SCALE == 320

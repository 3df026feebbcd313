"""Run a .tflite through MediaPipe's ObjectDetector and print its detections as JSON.

MediaPipe cannot be installed beside vdg_tf (it pins absl-py against tfmot and TensorFlow),
so this script runs in a separate venv and imports nothing from vdg_tf:

    python3 -m venv /tmp/mp && /tmp/mp/bin/pip install mediapipe
    /tmp/mp/bin/python tools/tflite_metadata/mediapipe_check.py det.tflite frame.npy

`frame.npy` holds one uint8 RGB image [H, W, 3] (or a stack [N, H, W, 3]: then one list
per frame). Output: one JSON list of
{"box": [x1, y1, x2, y2] (0-1 of the frame), "label", "score"}, every detection MediaPipe
returns (score threshold 0, no result cap), so a caller compares them with LiteRT's.
MediaPipe refuses a detector without standard Model Metadata: a model that runs here has
metadata MediaPipe reads (input normalisation, labels, output roles).
"""

from __future__ import annotations

import json
import sys

import mediapipe as mp
import numpy as np
from mediapipe.tasks import python as mp_tasks
from mediapipe.tasks.python import vision


def detect(model: str, frame: np.ndarray) -> list[dict]:
    """Every detection of MediaPipe's ObjectDetector on `frame`, boxes relative."""
    options = vision.ObjectDetectorOptions(
        base_options=mp_tasks.BaseOptions(model_asset_path=model),
        score_threshold=0.0,
        max_results=-1,
    )
    height, width = frame.shape[:2]
    image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(frame))
    with vision.ObjectDetector.create_from_options(options) as detector:
        result = detector.detect(image)
    found = []
    for d in result.detections:
        b, top = d.bounding_box, d.categories[0]
        box = [b.origin_x, b.origin_y, b.origin_x + b.width, b.origin_y + b.height]
        rel = [box[0] / width, box[1] / height, box[2] / width, box[3] / height]
        found.append({"box": rel, "label": top.category_name, "score": float(top.score)})
    return found


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: mediapipe_check.py MODEL.tflite FRAME.npy")
    frames = np.load(sys.argv[2])
    if frames.ndim == 4:  # a stack of frames: one list of detections per frame
        print(json.dumps([detect(sys.argv[1], f) for f in frames]))
    else:
        print(json.dumps(detect(sys.argv[1], frames)))

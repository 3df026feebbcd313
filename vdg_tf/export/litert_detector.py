"""Run a detection `.tflite` (one frame in, `TFLite_Detection_PostProcess` out) in LiteRT.

Outputs are read by the signature's output names (`boxes`, `classes`, `scores`, `count`,
what `export/detection.py` writes), never by position: LiteRT lists a converted graph's
outputs in another order than the op's ports.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from vdg_tf._quiet import silenced_stderr
from vdg_tf.export.detection import IMAGE_INPUT, OUTPUTS, VIDEO_INPUT
from vdg_tf.export.litert import open_signature


def is_detector(path: str | Path) -> bool:
    """Whether a `.tflite` is a detection export (its signature gives boxes, classes,
    scores and count)."""
    with warnings.catch_warnings(), silenced_stderr():
        warnings.simplefilter("ignore")
        interp = Interpreter(model_path=str(path))
        runners = interp.get_signature_list()
    outputs = set(runners.get("serving_default", {}).get("outputs", []))
    return set(OUTPUTS) <= outputs


class LiteRTDetector:
    """A detection `.tflite` loaded in LiteRT: frames in, boxes out.

    Args:
      path: the `.tflite` (`vdg export` of a detection run, with or without --frame-detector).
      labels: class names by index (the export's labels sidecar or metadata).
      num_threads: LiteRT threads (None: LiteRT's default).
    """

    def __init__(self, path: str | Path, labels: list[str], num_threads: int | None = None):
        self.path = Path(path)
        self.interpreter, self.runner = open_signature(self.path, num_threads)
        details = self.runner.get_input_details()
        if set(details) not in ({VIDEO_INPUT}, {IMAGE_INPUT}):
            raise ValueError(
                f"{self.path.name}: not a detection export (inputs {sorted(details)}; expected "
                f"'{VIDEO_INPUT}' [1,1,H,W,3] or '{IMAGE_INPUT}' [1,H,W,3])"
            )
        self.input_name = next(iter(details))
        self.shape = [int(d) for d in details[self.input_name]["shape"]]
        self.size = self.shape[-2]
        self.labels = list(labels)

    def raw(self, frame: np.ndarray) -> dict[str, np.ndarray]:
        """The op's outputs for one uint8 frame [S, S, 3] (the model's view)."""
        frame = np.asarray(frame)
        if frame.shape != tuple(self.shape[-3:]):
            raise ValueError(
                f"{self.path.name}: takes frames {self.shape[-3:]}, got {list(frame.shape)}"
            )
        x = (frame.astype(np.float32) / 255.0).reshape(self.shape)
        return {k: np.asarray(v) for k, v in self.runner(**{self.input_name: x}).items()}

    def detect(self, frame: np.ndarray, score_threshold: float = 0.0) -> list[dict]:
        """Boxes of one frame: `{"box": [x1, y1, x2, y2] (0-1 of the view), "label",
        "score"}`, best first, those scoring at least `score_threshold`."""
        out = self.raw(frame)
        found = []
        for i in range(int(out["count"].reshape(-1)[0])):
            score = float(out["scores"][0, i])
            cls = int(round(float(out["classes"][0, i])))
            if score < score_threshold or not 0 <= cls < len(self.labels):
                continue
            y1, x1, y2, x2 = (min(max(float(v), 0.0), 1.0) for v in out["boxes"][0, i])
            found.append({"box": [x1, y1, x2, y2], "label": self.labels[cls], "score": score})
        return sorted(found, key=lambda d: -d["score"])

"""`vdg benchmark detection`: a detection run's exports verified by mAP in LiteRT, and the
int8 detector's time per frame beside a classifier's, measured side by side in one run.

The run is exported to float32, gpu-fp16 and edge-int8 (`vdg.export`; int8 calibrates on
`calibration_data`, and a QAT run converts with the ranges it learned), and each file is
scored in LiteRT on the annotated frames of `data` (`runtime/box_map.py`) beside the Keras
model. The classifier is the same preset at the same frame size with the task's default
8-frame window, exported to edge-int8 (random weights and calibration: its time does not
depend on them), so the two latencies compare what a device would run.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vdg_tf.bundle import Bundle
from vdg_tf.results import Result

log = logging.getLogger(__name__)

TARGETS = ("float32", "gpu-fp16", "edge-int8")
CLASSIFIER_FRAMES = 8


@dataclass
class DetectionBenchmark(Result):
    """Per model (keras, float32, gpu-fp16, edge-int8): `map_50`, `map`, `bytes`,
    `ms_per_frame`; `int8_drop_map_50` (float32 - int8, points of mAP@0.5 x 100); the
    classifier's int8 `ms_per_window` and `ms_per_frame`; `frames` scored."""

    models: dict = field(default_factory=dict)
    int8_drop_map_50: float = 0.0
    classifier: dict = field(default_factory=dict)
    frames: int = 0
    run: str = field(default="", metadata={"json": False})

    def format(self) -> str:
        lines = [f"detection exports of {self.run} on {self.frames} annotated frames (LiteRT)",
                 f"  {'model':<10}{'mAP@0.5':>9}{'mAP':>8}{'bytes':>11}{'ms/frame':>10}"]  # fmt: skip
        for name, m in self.models.items():
            size = f"{m['bytes']:,}" if m.get("bytes") else "-"
            lines.append(f"  {name:<10}{m['map_50']:>9.3f}{m['map']:>8.3f}{size:>11}"
                         f"{m['ms_per_frame']:>10.2f}")  # fmt: skip
        lines.append(f"  int8 vs float32: {self.int8_drop_map_50:+.1f} points of mAP@0.5 lost")
        c = self.classifier
        if c:
            lines.append(f"  classifier int8 ({c['frames']} frames): {c['ms_per_window']:.2f} ms "
                         f"per window, {c['ms_per_frame']:.2f} ms per frame")  # fmt: skip
        return "\n".join(lines)


def run_detection_benchmark(
    run: str | Path,
    data: str | Path,
    *,
    calibration_data: str | Path,
    out: str | Path | None = None,
    calibration_samples: int = 64,
    max_frames: int | None = None,
    trust_model: bool = False,
) -> DetectionBenchmark:
    """Export `run` to each target into `out` (a temp folder when None), score every file
    and the Keras model on `data`, and time the int8 detector and a classifier."""
    from vdg_tf.export.api import export
    from vdg_tf.runtime.box_map import box_map

    bundle = Bundle.load(run, trust_model=trust_model)
    result = DetectionBenchmark(run=str(run))
    with tempfile.TemporaryDirectory(prefix="vdg-detbench-") as tmp:
        folder = Path(out or tmp)
        keras = box_map(bundle, data, max_frames=max_frames)
        result.models["keras"] = _row(keras, None)
        result.frames = keras["frames"]
        for target in TARGETS:
            log.info("exporting %s", target)
            r = export(bundle, target, folder / f"detector_{target}.tflite", force=True,
                       data=calibration_data, calibration_samples=calibration_samples)  # fmt: skip
            result.models[target] = _row(box_map(r.path, data, max_frames=max_frames), r.bytes)
        result.classifier = classifier_latency(bundle, folder)
    drop = result.models["float32"]["map_50"] - result.models["edge-int8"]["map_50"]
    result.int8_drop_map_50 = round(100 * drop, 2)
    return result


def _row(m: dict, size: int | None) -> dict:
    return {"map_50": m["map_50"] or 0.0, "map": m["map"] or 0.0, "bytes": size,
            "ms_per_frame": round(m["ms_per_frame"], 3)}  # fmt: skip


def classifier_latency(bundle: Bundle, folder: Path) -> dict:
    """LiteRT time of an int8 classifier of the run's preset and frame size (video only,
    `CLASSIFIER_FRAMES` frames a window): per window and per frame."""
    from vdg_tf.export.inspect import latency_ms
    from vdg_tf.export.tflite import ExportConfig, convert
    from vdg_tf.models.builder import build_classifier, inference_model

    cfg = bundle.config.with_overrides(
        {"data": {"task": "classification", "augment": None,
                  "video": {"frames": CLASSIFIER_FRAMES, "resize": "crop"}}},
        where="classifier benchmark",
    )  # fmt: skip
    labels = max(2, len(bundle.labels))
    model = inference_model(build_classifier(cfg, labels, cfg.data.text.vocab_size, 64))
    rng = np.random.default_rng(0)

    def representative():
        for _ in range(8):
            yield {i.name.split(":")[0]: rng.random((1, *i.shape[1:])).astype(np.float32)
                   for i in model.inputs}  # fmt: skip

    path = folder / "classifier_edge-int8.tflite"
    path.write_bytes(convert(model, ExportConfig("edge-int8", representative)))
    ms = latency_ms(path, runs=20)
    return {"frames": CLASSIFIER_FRAMES, "ms_per_window": round(ms, 3),
            "ms_per_frame": round(ms / CLASSIFIER_FRAMES, 3), "bytes": path.stat().st_size}  # fmt: skip

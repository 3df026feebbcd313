"""Model Metadata on a real model that ends in `TFLite_Detection_PostProcess` (the layout
MediaPipe's ObjectDetector reads): output roles found from the op, the file still runs in
LiteRT, and (slow, opt-in) MediaPipe's ObjectDetector returns the same labelled boxes.

The MediaPipe check needs a separate venv (mediapipe pins absl-py against tfmot):
    python3 -m venv /tmp/mp && /tmp/mp/bin/pip install mediapipe
    VDG_MEDIAPIPE_PYTHON=/tmp/mp/bin/python pytest -m slow tests/export/test_tflite_metadata_detector.py
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from vdg_tf.export.tflite_metadata import detection_output_kinds, read_metadata, write_metadata

ROOT = Path(__file__).resolve().parents[2]
LABELS = ["cat", "dog"]
# per anchor (ycenter, xcenter, h, w); zero box encodings decode to the anchor itself
ANCHORS = np.array(
    [[0.3, 0.3, 0.4, 0.4], [0.7, 0.7, 0.4, 0.4], [0.5, 0.5, 0.2, 0.2], [0.2, 0.8, 0.2, 0.2]],
    np.float32,
)
# per anchor: background, cat, dog -> anchor 0 is a dog (0.9), anchor 1 a cat (0.8)
PROBS = [[[0.05, 0.05, 0.9], [0.1, 0.8, 0.1], [0.9, 0.05, 0.05], [0.9, 0.05, 0.05]]]
EXPECTED = [  # (label, score, [x1, y1, x2, y2]) above 0.5
    ("dog", 0.9, [0.1, 0.1, 0.5, 0.5]),
    ("cat", 0.8, [0.5, 0.5, 0.9, 0.9]),
]


def _signature(num_classes: int, max_detections: int) -> str:
    """The `experimental_implements` text the converter turns into the fused op."""
    attrs = {"max_detections": f"i: {max_detections}", "max_classes_per_detection": "i: 1"}
    attrs |= {"use_regular_nms": "b: false", "nms_score_threshold": "f: 0.0"}
    attrs |= {"nms_iou_threshold": "f: 0.5", "num_classes": f"i: {num_classes}"}
    attrs |= {f"{k}_scale": "f: 1.0" for k in "yxhw"}
    body = " ".join(f'attr {{ key: "{k}" value {{ {v} }} }}' for k, v in attrs.items())
    return f'name: "TFLite_Detection_PostProcess" {body}'


@pytest.fixture(scope="module")
def detector(tmp_path_factory) -> bytes:
    """A [1, 16, 16, 3] image model whose fixed class scores end in the fused op."""

    @tf.function(experimental_implements=_signature(len(LABELS), len(ANCHORS)))
    def postprocess(boxes, scores, anchors):
        return tuple(tf.constant(0.0, name=n) for n in ("boxes", "classes", "scores", "num"))

    @tf.function(input_signature=[tf.TensorSpec([1, 16, 16, 3], tf.float32)])
    def model(image):
        zero = 0.0 * tf.reduce_mean(image)  # keeps the graph fed by its input
        encodings = tf.zeros([1, len(ANCHORS), 4]) + zero
        return postprocess(encodings, tf.constant(PROBS) + zero, tf.constant(ANCHORS))

    folder = tmp_path_factory.mktemp("detector") / "saved"
    module = tf.Module()
    module.model = model
    tf.saved_model.save(module, str(folder), signatures=model.get_concrete_function())
    converter = tf.lite.TFLiteConverter.from_saved_model(str(folder))
    converter.allow_custom_ops = True
    return converter.convert()


def _litert(data: bytes, frame: np.ndarray) -> list[tuple[str, float, list[float]]]:
    """Detections above 0.5 as (label, score, [x1, y1, x2, y2]), read by output role."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=data)
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], frame)
    interp.invoke()
    outs = [interp.get_tensor(d["index"]) for d in interp.get_output_details()]
    by = dict(zip(detection_output_kinds(data), outs, strict=True))
    found = []
    for i in range(int(by["count"][0])):
        if by["scores"][0, i] > 0.5:
            y1, x1, y2, x2 = by["boxes"][0, i].tolist()
            found.append(
                (LABELS[int(by["classes"][0, i])], float(by["scores"][0, i]), [x1, y1, x2, y2])
            )
    return found


def _iou(a: list[float], b: list[float]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / area


def test_output_roles_come_from_the_postprocess_op(detector):
    kinds = detection_output_kinds(detector)
    assert sorted(kinds) == ["boxes", "classes", "count", "scores"]
    data = write_metadata(
        detector, name="tiny detector", input_norm=(127.5, 127.5), labels=LABELS, output_kinds=kinds
    )
    frame = np.zeros((1, 16, 16, 3), np.float32)
    found = _litert(data, frame)
    assert found == _litert(detector, frame)
    assert [(lab, s) for lab, s, _ in found] == [(lab, pytest.approx(s)) for lab, s, _ in EXPECTED]
    for (_, _, box), (_, _, want) in zip(found, EXPECTED, strict=True):
        assert box == pytest.approx(want, abs=1e-6)
    meta = read_metadata(data)
    roles = {
        "boxes": "location",
        "classes": "category",
        "scores": "score",
        "count": "number of detections",
    }
    assert [o["name"] for o in meta["outputs"]] == [roles[k] for k in kinds]
    assert meta["labels"] == LABELS


def test_a_model_without_the_op_is_refused(tmp_path):
    @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32)])
    def plain(x):
        return x * 2.0

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [plain.get_concrete_function()], plain
    )
    with pytest.raises(ValueError, match="model has no TFLite_Detection_PostProcess op"):
        detection_output_kinds(converter.convert())


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("VDG_MEDIAPIPE_PYTHON"),
    reason="set VDG_MEDIAPIPE_PYTHON to the python of a venv with mediapipe",
)
def test_mediapipe_object_detector_agrees_with_litert(detector, tmp_path):
    data = write_metadata(
        detector,
        name="tiny detector",
        input_norm=(127.5, 127.5),
        labels=LABELS,
        output_kinds=detection_output_kinds(detector),
    )
    model = tmp_path / "det.tflite"
    model.write_bytes(data)
    frame = np.full((320, 320, 3), 127, np.uint8)  # large: MediaPipe rounds boxes to pixels
    np.save(tmp_path / "frame.npy", frame)
    script = ROOT / "tools/tflite_metadata/mediapipe_check.py"
    run = subprocess.run(
        [os.environ["VDG_MEDIAPIPE_PYTHON"], str(script), str(model), str(tmp_path / "frame.npy")],
        capture_output=True,
        text=True,
        check=True,
    )
    found = [d for d in json.loads(run.stdout) if d["score"] > 0.5]
    litert = _litert(data, np.zeros((1, 16, 16, 3), np.float32))
    assert [(d["label"], pytest.approx(d["score"])) for d in found] == [
        (lab, s) for lab, s, _ in litert
    ]
    for d, (_, _, box) in zip(found, litert, strict=True):
        assert _iou(d["box"], box) >= 0.9

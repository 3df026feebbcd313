"""Detection export on a real tiny detector that follows the contract (tests/export/
toy_detector.py): the graph ends in TFLite_Detection_PostProcess, runs in LiteRT with the
boxes the Keras frame detector predicts, float32 / gpu-fp16 / edge-int8, and carries
standard Model Metadata (labels, normalisation, output roles)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.export.toy_detector import (
    ANCHORS,
    LABELS,
    SIZE,
    frame_detector,
    square_frame,
    video_model,
)
from vdg_tf.export.detection import (
    PostProcess,
    convert_detector,
    find_frame_detector,
    frame_representative,
)
from vdg_tf.export.inspect import inspect_tflite
from vdg_tf.export.litert_detector import LiteRTDetector, is_detector
from vdg_tf.export.tflite import ExportConfig
from vdg_tf.export.tflite_metadata import read_metadata
from vdg_tf.tasks.anchors import corners

# a red square at x 8-16, y 16-24 and a blue one at x 20-28, y 4-12 (pixels of 32)
FRAME = np.maximum(square_frame(0, 8, 16), square_frame(2, 20, 4))


def _calibration():
    return (square_frame(c, x, y) for c in (0, 2) for x in range(0, 25, 6) for y in (0, 12, 24))


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict:
    """The toy detector exported to three targets (image input) and float32 (video input)."""
    folder = tmp_path_factory.mktemp("det")
    det, out = frame_detector(), {}
    for target in ("float32", "gpu-fp16", "edge-int8"):
        rep = (
            frame_representative(_calibration, image_input=True) if target == "edge-int8" else None
        )
        data = convert_detector(det, ANCHORS, ExportConfig(target, rep), labels=LABELS,
                                image_input=True)  # fmt: skip
        (folder / f"{target}.tflite").write_bytes(data)
        out[target] = folder / f"{target}.tflite"
    data = convert_detector(det, ANCHORS, ExportConfig("float32"), labels=LABELS)
    (folder / "video.tflite").write_bytes(data)
    out["video"] = folder / "video.tflite"
    return out


def _keras_best(color: int) -> tuple[list[float], float]:
    """The box and score of the best anchor of class `color // 2` by the Keras model."""
    _, scores = frame_detector()(FRAME[None].astype(np.float32) / 255.0)
    cls = scores.numpy()[0, :, color // 2]
    y1, x1, y2, x2 = corners(ANCHORS[int(np.argmax(cls))])
    return [float(x1), float(y1), float(x2), float(y2)], float(cls.max())


@pytest.mark.parametrize("target", ["float32", "gpu-fp16", "edge-int8", "video"])
def test_litert_boxes_match_the_keras_frame_detector(exports, target):
    det = LiteRTDetector(exports[target], LABELS)
    found = det.detect(FRAME, score_threshold=0.5)
    assert {d["label"] for d in found} == {"red", "blue"}
    for label, color in (("red", 0), ("blue", 2)):
        box, score = _keras_best(color)
        best = next(d for d in found if d["label"] == label)
        assert best["score"] == pytest.approx(score, abs=0.02 if target == "edge-int8" else 1e-3)
        # a tie between equally scored anchors may pick a neighbour: within one 4 px cell
        assert best["box"] == pytest.approx(box, abs=4.5 / SIZE)
    assert is_detector(exports[target])


def test_the_graph_ends_in_the_postprocess_op_and_int8_is_int8(exports):
    for target in ("float32", "edge-int8"):
        info = inspect_tflite(exports[target])
        assert "TFLite_Detection_PostProcess" in info["ops"]
    # all but the NMS op, which the converter feeds dequantized boxes and scores
    assert inspect_tflite(exports["edge-int8"])["float_ops"] == {"TFLite_Detection_PostProcess": 1}


def test_model_metadata_says_labels_normalisation_and_roles(exports):
    meta = read_metadata(exports["float32"].read_bytes())
    assert meta["labels"] == LABELS
    (image,) = meta["inputs"]
    assert image["kind"] == "image" and image["mean"] == [0.0] and image["std"] == [255.0]
    assert sorted(o["name"] for o in meta["outputs"]) == [
        "category", "location", "number of detections", "score"]  # fmt: skip
    assert meta["output_groups"] == {"detection_result": ["location", "category", "score"]}
    (video,) = read_metadata(exports["video"].read_bytes())["inputs"]
    assert video["kind"] == "tensor" or video["mean"] == [0.0]


def test_find_frame_detector_and_bad_settings():
    assert find_frame_detector(video_model()).name == "frame_detector"
    assert find_frame_detector(_outer()).name == "frame_detector"
    with pytest.raises(ValueError, match="anchors: 3 anchors but the frame detector predicts 64"):
        convert_detector(frame_detector(), ANCHORS[:3], ExportConfig("float32"), labels=LABELS)
    with pytest.raises(ValueError, match="labels: 1 labels but the frame detector scores 2"):
        convert_detector(frame_detector(), ANCHORS, ExportConfig("float32"), labels=["red"])
    with pytest.raises(ValueError, match="iou_threshold: must be between 0 and 1"):
        PostProcess(iou_threshold=1.5)


def _outer():
    """A model holding the frame detector as a direct layer (as a detection run does)."""
    import tf_keras as keras

    det = frame_detector()
    frame = keras.Input((SIZE, SIZE, 3))
    return keras.Model(frame, det(frame))

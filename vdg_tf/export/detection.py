"""Detection export: the frame detector, then `TFLite_Detection_PostProcess`, in one `.tflite`.

A detection run's Keras model holds a nested sub-model named `frame_detector`: one float32
frame `[B, H, W, 3]` in [0, 1] -> `(box_encodings [B, A, 4], class_scores [B, A, C])`
(SSD encodings against the run's anchors, sigmoid probabilities, no background column).
The export appends the fused NMS op every TFLite runtime ships (`TFLite_Detection_PostProcess`,
registered in LiteRT's stock op resolver), emitted the way Model Garden's
`MultilevelDetectionGenerator(nms_version="tflite")` and the TF OD API's SSD export emit it:
a `tf.function` whose `experimental_implements` names the op and its attributes, which the
converter replaces by the custom op. Its outputs are the layout MediaPipe's ObjectDetector
and the TFLite Task library read: `boxes [1, N, 4]` (ymin, xmin, ymax, xmax, relative),
`classes [1, N]` (label index), `scores [1, N]`, `count [1]`.

Inputs. The op works on batch 1 and one set of anchors, so a detection export sees one frame
per call and detects in every frame a caller feeds it (`vdg predict` feeds each decoded frame):
- the default export keeps the contract name and rank: `video` float32 `[1, 1, H, W, 3]` in
  [0, 1] (a window of one frame), read by `vdg predict`/`evaluate` like every export;
- `frame_detector=True` (`vdg export --frame-detector`) takes `image` float32 `[1, H, W, 3]`
  in [0, 1]: one RGB image, no audio or text, which MediaPipe's ObjectDetector runs as it is.
Both carry standard Model Metadata (labels, input normalisation mean 0 / std 255 from 0-255
pixels, output roles) written with the bindings of the official schema
(`export/tflite_metadata`). Audio and text are not inputs: the contract's frame detector
scores boxes from the frame alone.

Int8: the converter calibrates the frame detector on frames of `data`; a QAT run (its
`frame_detector` wrapped as `quant_frame_detector`) converts with the ranges it learned.
Every op but the fused NMS op runs int8; the converter dequantizes the op's two inputs
(the NMS, on a few thousand anchors, is not where a detector spends its time).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras as keras

from vdg_tf.export.tflite import ExportConfig, configure_converter, finish, run_converter
from vdg_tf.export.tflite_metadata import detection_output_kinds, write_metadata

log = logging.getLogger(__name__)

FRAME_DETECTOR = "frame_detector"
POSTPROCESS_OP = "TFLite_Detection_PostProcess"
OUTPUTS = ("boxes", "classes", "scores", "count")  # the op's outputs, in port order
VIDEO_INPUT, IMAGE_INPUT = "video", "image"
PIXEL_NORM = (0.0, 255.0)  # input = (pixel - 0) / 255: frames in [0, 1]


@dataclass(frozen=True)
class PostProcess:
    """The settings the fused NMS op is built with (fixed in the `.tflite`).

    `score_threshold` is low on purpose: mAP needs the low-scoring boxes, and runtimes
    filter further (`vdg predict --score-threshold`, MediaPipe's `score_threshold`).
    """

    max_detections: int = 25
    score_threshold: float = 0.05  # tasks.detection.REPORT_SCORE: what mAP is computed on
    iou_threshold: float = 0.5

    def __post_init__(self) -> None:
        if self.max_detections < 1:
            raise ValueError(f"max_detections: must be at least 1, got {self.max_detections}")
        for name in ("score_threshold", "iou_threshold"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}: must be between 0 and 1, got {value}")

    def implements(self, num_classes: int) -> str:
        """The `experimental_implements` text: the op name and its attributes (SSD box
        scales 10, 10, 5, 5 as `tasks/anchors.py` encodes; per-class NMS, one class per
        box, as `tasks.detection.boxes_from_outputs` does in Keras)."""
        attrs = {
            "max_detections": f"i: {self.max_detections}",
            "max_classes_per_detection": "i: 1",
            "detections_per_class": f"i: {self.max_detections}",
            "use_regular_nms": "b: true",
            "nms_score_threshold": f"f: {self.score_threshold}",
            "nms_iou_threshold": f"f: {self.iou_threshold}",
            "num_classes": f"i: {num_classes}",
            "y_scale": "f: 10.0",
            "x_scale": "f: 10.0",
            "h_scale": "f: 5.0",
            "w_scale": "f: 5.0",
        }
        body = " ".join(f'attr {{ key: "{k}" value {{ {v} }} }}' for k, v in attrs.items())
        return f'name: "{POSTPROCESS_OP}" {body}'


def find_frame_detector(model: keras.Model) -> keras.Model | None:
    """The nested `frame_detector` sub-model of a detection model (a layer, or the model a
    TimeDistributed wraps; `quant_frame_detector` in a QAT clone), or None: how an export
    knows a model detects boxes."""
    for layer in model.layers:
        inner = getattr(layer, "layer", None)  # a wrapper (TimeDistributed, a QAT wrapper)
        for candidate in (layer, inner):
            name = getattr(candidate, "name", "").removeprefix("quant_")
            if name == FRAME_DETECTOR and isinstance(candidate, keras.Model):
                return candidate
    return None


def detector_function(
    frame_detector: keras.Model,
    anchors: np.ndarray,
    post: PostProcess,
    *,
    image_input: bool = False,
) -> tf.types.experimental.ConcreteFunction:
    """The serving function: one frame in (`video [1,1,H,W,3]`, or `image [1,H,W,3]` with
    `image_input`), the frame detector, then the fused op; outputs keyed by OUTPUTS."""
    height, width = (int(d) for d in frame_detector.input_shape[1:3])
    num_classes = int(frame_detector.outputs[1].shape[-1])
    if len(anchors) != int(frame_detector.outputs[0].shape[1]):
        raise ValueError(
            f"anchors: {len(anchors)} anchors but the frame detector predicts "
            f"{frame_detector.outputs[0].shape[1]} boxes (anchor settings of another run?)"
        )
    name = IMAGE_INPUT if image_input else VIDEO_INPUT
    shape = [1, height, width, 3] if image_input else [1, 1, height, width, 3]
    anchor_tensor = tf.constant(np.asarray(anchors, np.float32))
    n = post.max_detections

    @tf.function(experimental_implements=post.implements(num_classes))
    def postprocess(box_encodings, class_predictions, anchors):
        # placeholders of the op's output shapes: the converter replaces this function
        zero = 0.0 * (tf.reduce_sum(box_encodings) + tf.reduce_sum(class_predictions))
        zero += 0.0 * tf.reduce_sum(anchors)
        boxes = tf.zeros([1, n, 4]) + zero
        classes = tf.zeros([1, n]) + zero
        scores = tf.zeros([1, n]) + zero
        count = tf.zeros([1]) + zero
        return boxes, classes, scores, count

    @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32, name=name)])
    def serve(frame):
        encodings, scores = frame_detector(tf.reshape(frame, [1, height, width, 3]), training=False)
        return dict(zip(OUTPUTS, postprocess(encodings, scores, anchor_tensor), strict=True))

    return serve.get_concrete_function()


def convert_detector(
    frame_detector: keras.Model,
    anchors: np.ndarray,
    cfg: ExportConfig,
    *,
    labels: list[str],
    post: PostProcess | None = None,
    image_input: bool = False,
    name: str = "vdg_tf detector",
) -> bytes:
    """The `.tflite` of the frame detector plus the fused NMS op for `cfg.target`, with
    `cfg.metadata` (vdg_tf.*) and standard Model Metadata (labels, normalisation, roles)."""
    post = post or PostProcess()
    if len(labels) != int(frame_detector.outputs[1].shape[-1]):
        raise ValueError(
            f"labels: {len(labels)} labels but the frame detector scores "
            f"{frame_detector.outputs[1].shape[-1]} classes"
        )
    fn = detector_function(frame_detector, anchors, post, image_input=image_input)
    with tempfile.TemporaryDirectory(prefix="vdg-detector-") as tmp:
        module = tf.Module()
        module.frame_detector = frame_detector
        tf.saved_model.save(module, f"{tmp}/saved", signatures={"serving_default": fn})
        converter = tf.lite.TFLiteConverter.from_saved_model(
            f"{tmp}/saved", signature_keys=["serving_default"]
        )
        configure_converter(converter, cfg)
        converter.allow_custom_ops = True  # the fused op is a custom op every runtime registers
        data = finish(run_converter(converter), cfg)
    kind = "image" if image_input else "video"
    return write_metadata(
        data,
        name=name,
        description=f"Boxes of {len(labels)} classes in one RGB frame, {POSTPROCESS_OP} layout.",
        input_norm=PIXEL_NORM,
        labels=list(labels),
        output_kinds=detection_output_kinds(data),
        input_kinds=[kind],
    )


def frame_representative(
    frames: Callable[[], Iterator[np.ndarray]], image_input: bool
) -> Callable[[], Iterator[dict[str, np.ndarray]]]:
    """Calibration inputs of a detector from uint8 frames `[H, W, 3]` (the model's view)."""
    name = IMAGE_INPUT if image_input else VIDEO_INPUT

    def inputs() -> Iterator[dict[str, np.ndarray]]:
        for frame in frames():
            x = (np.asarray(frame, np.float32) / 255.0)[None]
            yield {name: x if image_input else x[None]}

    return inputs


def manifest_frames(
    data: str | Path, size: int, mode: str, count: int
) -> Callable[[], Iterator[np.ndarray]]:
    """Up to `count` frames of the manifest's videos as the model sees them (resized as
    training resizes), spread over the videos: a detector calibrates on real frames."""
    from vdg_tf.manifest import read_manifest
    from vdg_tf.media.frames import iter_frames

    rows, _ = read_manifest(data)
    if not rows:
        raise ValueError(f"--data {data}: no rows to calibrate on")
    per_video = max(1, -(-count // len(rows)))

    def frames() -> Iterator[np.ndarray]:
        seen = 0
        for row in rows:
            frames_of = list(iter_frames(row.video, size, mode))
            step = max(1, len(frames_of) // per_video)
            for f in frames_of[::step][:per_video]:
                if seen >= count:
                    return
                seen += 1
                yield f.view

    return frames


@dataclass
class DetectorExport:
    """How one detection run exports: its frame detector, anchors, labels, NMS settings,
    input form, and the resize mode frames are calibrated with."""

    frame_detector: keras.Model
    anchors: np.ndarray
    labels: list[str]
    post: PostProcess
    image_input: bool = False
    resize: str = "crop"

    @property
    def size(self) -> int:
        return int(self.frame_detector.input_shape[1])

    def representative(
        self, data: str | Path, count: int
    ) -> Callable[[], Iterator[dict[str, np.ndarray]]]:
        """Calibration inputs: `count` frames of the manifest `data`, as the model sees them."""
        return frame_representative(
            manifest_frames(data, self.size, self.resize, count), self.image_input
        )

    def convert(self, cfg: ExportConfig, name: str = "vdg_tf detector") -> bytes:
        return convert_detector(self.frame_detector, self.anchors, cfg, labels=self.labels,
                                post=self.post, image_input=self.image_input, name=name)  # fmt: skip


def detector_export(bundle, image_input: bool = False) -> DetectorExport | None:
    """The DetectorExport of a bundle whose model has a `frame_detector`, else None.

    Anchors come from the run (`tasks.detection.anchor_spec_of`), so the export decodes
    boxes with exactly the anchors the head was trained against.
    """
    found = find_frame_detector(bundle.model)
    if found is None:
        return None
    from vdg_tf.tasks.anchors import anchor_boxes
    from vdg_tf.tasks.detection import anchor_spec_of

    return DetectorExport(
        found,
        anchor_boxes(anchor_spec_of(bundle)),
        list(bundle.labels),
        PostProcess(),
        image_input,
        bundle.config.data.video.resize,
    )

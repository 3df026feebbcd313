"""`vdg predict` on a detection model: boxes in every frame, tracks, a drawn video.

A detection model (a `.tflite` that `vdg export` made of a detection run, or the run
itself) sees one frame at a time, so detection reads each source frame by frame
(`media.frames.iter_frames`, resized as training resizes) instead of in windows, and makes
one record per frame: `{"source", "t", "boxes": [{"box": [x1, y1, x2, y2], "label",
"score"}]}` with boxes relative to the original frame. With `track`, boxes are linked
across the frames of each source (`runtime/tracks.py`) and carry a `track` id; with
`draw`, the frames are written with their boxes drawn (`runtime/boxes_draw.py`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from vdg_tf.bundle import Bundle
from vdg_tf.media.decode import DecodeError
from vdg_tf.media.frames import Frame, iter_frames, view_to_frame
from vdg_tf.runtime.tracks import IoUTracker

log = logging.getLogger(__name__)


def is_box_model(model: str | Path | Bundle) -> bool:
    """Whether `model` detects boxes per frame: a detection `.tflite`, or a run whose
    task answers per frame."""
    if isinstance(model, Bundle):
        return model.task.per_frame
    path = Path(model)
    if path.suffix == ".tflite":
        from vdg_tf.export.litert_detector import is_detector

        return path.is_file() and is_detector(path)
    if path.is_dir() or path.suffix == ".keras":
        try:
            return Bundle.load(path, model=False).task.per_frame
        except (ValueError, FileNotFoundError, KeyError):
            return False
    return False


class BoxDetector:
    """Boxes in frames, by a detection `.tflite` in LiteRT or a detection run in Keras.

    `detect(view)` takes one uint8 frame as the model sees it ([S, S, 3], `size` and the
    run's `resize` mode) and returns `[{"box", "label", "score"}]` relative to that view,
    best first, scoring at least `score_threshold`.
    """

    def __init__(
        self,
        model: str | Path | Bundle,
        *,
        trust_model: bool = False,
        score_threshold: float = 0.3,
        num_threads: int | None = None,
    ):
        if not 0.0 <= score_threshold <= 1.0:
            raise ValueError(f"score threshold: must be between 0 and 1, got {score_threshold}")
        self.score_threshold = score_threshold
        if not isinstance(model, Bundle) and Path(model).suffix == ".tflite":
            from vdg_tf.export.litert_detector import LiteRTDetector
            from vdg_tf.runtime.evaluate import load_for_inference

            self.bundle, _ = load_for_inference(model)
            lite = LiteRTDetector(model, self.bundle.labels, num_threads=num_threads)
            self.size = lite.size
            self._detect = lambda view: lite.detect(view, score_threshold)
        else:
            self.bundle = model if isinstance(model, Bundle) else Bundle.load(
                model, trust_model=trust_model)  # fmt: skip
            self._detect, self.size = self._keras(score_threshold)
        self.labels = self.bundle.labels
        self.resize = self.bundle.config.data.video.resize

    def _keras(self, score_threshold: float) -> tuple[Callable, int]:
        """(detect, size) of the run's Keras `frame_detector` plus the task's box reading."""
        from vdg_tf.export.detection import find_frame_detector
        from vdg_tf.tasks.anchors import anchor_boxes
        from vdg_tf.tasks.detection import anchor_spec_of, boxes_from_outputs

        det = find_frame_detector(self.bundle.model)
        if det is None:
            raise ValueError(f"{self.bundle.path}: the model has no frame_detector (not a "
                             "detection run)")  # fmt: skip
        import tensorflow as tf

        anchors = anchor_boxes(anchor_spec_of(self.bundle))
        labels = self.bundle.labels
        run = tf.function(lambda x: det(x, training=False))  # one graph, not eager per frame

        def detect(view: np.ndarray) -> list[dict]:
            enc, scores = run(tf.constant(view[None].astype(np.float32) / 255.0))
            return boxes_from_outputs(enc.numpy()[0], scores.numpy()[0], anchors, labels,
                                      score_threshold=score_threshold)  # fmt: skip

        return detect, int(det.input_shape[1])

    def detect(self, view: np.ndarray) -> list[dict]:
        return self._detect(view)

    def frame_boxes(self, frame: Frame) -> list[dict]:
        """The boxes of a decoded frame, relative to the original frame, coordinates
        rounded to 4 digits and scores to 4."""
        out = []
        for d in self.detect(frame.view):
            box = view_to_frame(d["box"], frame.width, frame.height, self.size, self.resize)
            out.append({"box": [round(v, 4) for v in box], "label": d["label"],
                        "score": round(float(d["score"]), 4)})  # fmt: skip
        return out


def detect_frames(
    detector: BoxDetector,
    source: str,
    *,
    tracker: IoUTracker | None = None,
    stride: float | None = None,
    original: bool = False,
) -> Iterator[tuple[dict | None, Frame, list[dict]]]:
    """(record, frame, boxes) for every frame of `source`. The detector runs on every frame,
    or with `stride` on frames at least that many seconds apart: a frame in between has no
    record (None) and keeps the last boxes (for drawing). A record is `{"source", "t",
    "boxes"}`, boxes with `track` ids when a tracker is given. Raises DecodeError naming
    the source."""
    boxes: list[dict] = []
    due = float("-inf")
    for frame in iter_frames(source, detector.size, detector.resize, original=original):
        if stride is not None and frame.t < due - 1e-6:
            yield None, frame, boxes
            continue
        due = frame.t + (stride or 0.0)
        boxes = detector.frame_boxes(frame)
        if tracker is not None:
            boxes = tracker.update(boxes)
        yield {"source": source, "t": round(frame.t, 3), "boxes": boxes}, frame, boxes


def source_fps(source: str) -> float:
    """The frame rate of a video file (25 when the file does not say)."""
    import av

    try:
        with av.open(source) as container:
            rate = container.streams.video[0].average_rate
            return float(rate) if rate else 25.0
    except (av.FFmpegError, OSError, IndexError) as e:
        raise DecodeError(source, f"cannot open: {e}") from None

"""Object detection in video: boxes per annotated frame, a single-stage anchor head, COCO mAP.

A row is a video with `boxes: [{"t", "box": [x1, y1, x2, y2], "label"}]` (relative to the
frame) and optionally `times` (every annotated frame time, also those with no box). Each
annotated time becomes one training clip whose frames sit at that time (`parts`): a time
with no box trains as background, never dropped. A bad box (outside [0, 1], x2 <= x1 or
y2 <= y1, past the clip's end, an unknown label) is skipped and counted by reason
(`tasks/boxes.py`), never clipped.

The model (`models/detector.py`) runs a `frame_detector` sub-model on every frame: a
per-frame backbone's feature maps at strides 8, 16 and 32 and an SSD-lite head on each
(`frame_head`: depthwise 3x3 + pointwise 1x1 towers, Conv2D / DepthwiseConv2D /
BatchNorm / ReLU6 / Reshape / Concatenate / sigmoid only, so tfmot's 8-bit QAT wraps all
of it). Its outputs are `box_encodings [B, A, 4]` (the SSD coder of `tasks/anchors.py`)
and `class_scores [B, A, C]` (sigmoid, no background column); the video model maps
`video [B, T, H, W, 3]` to the same per frame, `[B, T, A, 4]` and `[B, T, A, C]`.

Training (RetinaNet's recipe): an anchor is positive for the box it overlaps most when
their IoU is >= 0.5, negative below 0.4, ignored between; every box's best anchor is
positive whatever its IoU. Sigmoid focal loss (alpha 0.25, gamma 2) over positives and
negatives, smooth-L1 on the positives' encodings, each summed over the batch and divided
by its number of positives. Matching runs inside the loss from the padded boxes of each
frame (`row_targets`), so the data stream carries a few boxes a frame, not an anchor map.

Frames are resized with `data.video.resize: stretch` (the whole frame, aspect not kept):
a relative box is then the same box in the model's frame, in training, in `vdg predict`
and in an export. Geometric augmentation (random crops, flips) would move the objects
away from their boxes, so the task refuses it.

Checkpoints are chosen on the validation split by COCO mAP (`map`, pycocotools through
`tasks/coco_map.py`), computed at the end of every epoch (`ValidationMap`).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf
import tf_keras as keras

from vdg_tf.manifest import ClipRow
from vdg_tf.tasks.anchors import BOX_SCALES, AnchorSpec, anchor_boxes, decode, iou
from vdg_tf.tasks.base import Task
from vdg_tf.tasks.boxes import UNKNOWN_LABEL, box_problem
from vdg_tf.tasks.coco_map import coco_map
from vdg_tf.tasks.registry import register_task

if TYPE_CHECKING:
    from vdg_tf.config import DataConfig

STRIDES = (8, 16, 32)  # feature levels of the per-frame backbone
ANCHOR_SCALE = 3.0  # anchor side = ANCHOR_SCALE * stride (24, 48, 96 px)
ASPECT_RATIOS = (1.0, 2.0, 0.5)
POSITIVE_IOU, NEGATIVE_IOU = 0.5, 0.4
FOCAL_ALPHA, FOCAL_GAMMA = 0.25, 2.0
BN_MOMENTUM = 0.9  # short runs: moving statistics that keep up (see models/detector.py)
PRIOR = 0.01  # initial class probability (RetinaNet): background dominates the first steps
FRAME_HALF_S = 1e-3  # a frame's clip is [t - this, t + this]: its frames sit at t
REPORT_SCORE = 0.05  # scores kept for mAP (COCO practice: low, so recall is not cut)
OUTPUTS = ("box_encodings", "class_scores")


def anchor_spec_of(x) -> AnchorSpec:
    """The anchor layout of a run: its Bundle (the spec stored with the model in
    `bundle.json`'s `anchors`), a Config or a DataConfig (the layout its frame size gives).

    Example:
      anchors = anchor_boxes(anchor_spec_of(vdg.Bundle.load("runs/det")))
    """
    info = getattr(x, "info", None)
    if isinstance(info, dict) and isinstance(info.get("anchors"), dict):
        return AnchorSpec.from_dict(info["anchors"])
    cfg = getattr(x, "config", None) or x
    data = getattr(cfg, "data", cfg)
    size = int(data.video.size)
    return AnchorSpec(
        image_size=(size, size),
        strides=STRIDES,
        sizes=tuple(ANCHOR_SCALE * s for s in STRIDES),
        aspect_ratios=ASPECT_RATIOS,
    )


def boxes_from_outputs(
    box_encodings: np.ndarray,
    class_scores: np.ndarray,
    anchors: np.ndarray,
    labels: list[str],
    *,
    score_threshold: float = 0.3,
    iou_threshold: float = 0.5,
    max_detections: int = 100,
) -> list[dict]:
    """One frame's detections from its outputs `[A, 4]` and `[A, C]`: decoded, per-class
    non-maximum suppression, best first.

    Returns:
      `[{"box": [x1, y1, x2, y2], "label": str, "score": float}]`, boxes relative and
      clipped to the frame, at most `max_detections`.
    """
    scores = np.asarray(class_scores, np.float32)
    boxes = decode(np.asarray(box_encodings, np.float32), anchors)  # yxyx
    found: list[tuple[float, int, np.ndarray]] = []
    for c in range(scores.shape[-1]):
        idx = np.flatnonzero(scores[:, c] >= score_threshold)
        if idx.size == 0:
            continue
        idx = idx[np.argsort(-scores[idx, c], kind="stable")][: max(4 * max_detections, 200)]
        for k in _nms(boxes[idx], iou_threshold):
            found.append((float(scores[idx[k], c]), c, boxes[idx[k]]))
    found.sort(key=lambda f: -f[0])
    out = []
    for score, c, (y1, x1, y2, x2) in found[:max_detections]:
        box = [float(np.clip(v, 0.0, 1.0)) for v in (x1, y1, x2, y2)]
        out.append({"box": [round(v, 6) for v in box], "label": labels[c], "score": score})
    return out


def _nms(boxes: np.ndarray, threshold: float) -> list[int]:
    """Indices kept by greedy NMS of score-sorted yxyx `boxes`."""
    overlaps = iou(boxes, boxes)
    keep: list[int] = []
    dropped = np.zeros(len(boxes), bool)
    for i in range(len(boxes)):
        if dropped[i]:
            continue
        keep.append(i)
        dropped |= overlaps[i] > threshold
    return keep


def frame_head(
    levels: list[tf.Tensor],
    num_labels: int,
    spec: AnchorSpec,
    width: int,
    regularizer: keras.regularizers.Regularizer | None = None,
) -> tuple[tf.Tensor, tf.Tensor]:
    """The SSD-lite head on feature maps at `spec.strides`: `(box_encodings [B, A, 4],
    class_scores [B, A, C])`, anchors in `anchor_boxes(spec)` order (level, row, column,
    aspect ratio)."""
    k = spec.per_cell
    boxes, classes = [], []
    bias = keras.initializers.Constant(-math.log((1 - PRIOR) / PRIOR))
    for level, x in enumerate(levels):
        rows, cols = spec.grid(level)
        if tuple(x.shape[1:3]) != (rows, cols):
            raise ValueError(
                f"detection head: level {level} is {tuple(x.shape[1:3])}, anchors expect "
                f"{(rows, cols)} (stride {spec.strides[level]} of {spec.image_size})"
            )
        x = _conv_bn(x, width, 1, f"det_l{level}_lateral", regularizer)
        box = _tower(x, width, f"det_l{level}_box", regularizer)
        box = keras.layers.Conv2D(k * 4, 1, name=f"det_l{level}_box_out")(box)
        cls = _tower(x, width, f"det_l{level}_cls", regularizer)
        cls = keras.layers.Conv2D(
            k * num_labels, 1, bias_initializer=bias, name=f"det_l{level}_cls_out"
        )(cls)
        boxes.append(keras.layers.Reshape((rows * cols * k, 4), name=f"det_l{level}_boxes")(box))
        classes.append(
            keras.layers.Reshape((rows * cols * k, num_labels), name=f"det_l{level}_logits")(cls)
        )
    box = keras.layers.Concatenate(axis=1, name=OUTPUTS[0])(boxes)
    logits = keras.layers.Concatenate(axis=1, name="det_logits")(classes)
    return box, keras.layers.Activation("sigmoid", name=OUTPUTS[1])(logits)


def _conv_bn(x, filters: int, kernel: int, name: str, regularizer) -> tf.Tensor:
    """Conv2D (no bias) -> BatchNorm -> ReLU6."""
    x = keras.layers.Conv2D(
        filters, kernel, padding="same", use_bias=False, kernel_regularizer=regularizer,
        name=f"{name}_conv",
    )(x)  # fmt: skip
    x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return keras.layers.ReLU(6.0, name=f"{name}_relu")(x)


def _tower(x, width: int, name: str, regularizer) -> tf.Tensor:
    """Depthwise 3x3 -> BN -> ReLU6 -> pointwise 1x1 -> BN -> ReLU6 (SSD-lite's block)."""
    x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False, name=f"{name}_dw")(x)
    x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_dw_bn")(x)
    x = keras.layers.ReLU(6.0, name=f"{name}_dw_relu")(x)
    return _conv_bn(x, width, 1, f"{name}_pw", regularizer)


@register_task
class Detection(Task):
    """Boxes per annotated frame -> per-frame anchor outputs; reports COCO mAP."""

    name = "detection"
    key = "boxes"
    primary = "map"
    untrimmed = True  # a row is a whole video that `parts` cuts into annotated frames
    per_frame = True

    def __init__(self, spec: AnchorSpec | None = None):
        self.spec = spec

    @classmethod
    def from_config(cls, data: DataConfig) -> Detection:
        """The task for `data`, refusing settings that would move objects off their boxes."""
        if data.video.resize != "stretch":
            raise ValueError(
                f"data.video.resize: task detection needs 'stretch' (the whole frame, so a "
                f"relative box stays the same box), got {data.video.resize!r}"
            )
        aug = data.augment
        if aug is not None and (aug.crop_scale < 1.0 or aug.flip):
            raise ValueError(
                "data.augment: task detection needs crop_scale: 1.0 and flip: false (a crop "
                "or flip moves objects away from their boxes)"
            )
        return cls(anchor_spec_of(data))

    @property
    def anchors(self) -> np.ndarray:
        if self.spec is None:
            raise ValueError("task detection: no anchor layout (make it with from_config)")
        return anchor_boxes(self.spec)

    # -- manifest rows ---------------------------------------------------------------
    def labels(self, rows: list[ClipRow]) -> list[str]:
        return sorted(
            {lab for r in rows for _, _, lab in (r.boxes or ()) if isinstance(lab, str) and lab}
        )

    def names(self, row: ClipRow) -> list[str]:
        return []  # a row is a whole video: validation holds out videos, unstratified

    def problem(self, row: ClipRow, labels: list[str]) -> str | None:
        if row.boxes is None and row.times is None:
            return f"{row.where}: missing key 'boxes' for task detection"
        if row.start is not None or row.end is not None:
            return f"{row.where}: a row with 'boxes' is a whole video: drop 'start'/'end'"
        return None

    def clips(self, row: ClipRow, duration: float, window: float) -> list[ClipRow]:
        return self.parts(row, duration, window, None)[0]

    def parts(
        self, row: ClipRow, duration: float, window: float, labels: list[str] | None
    ) -> tuple[list[ClipRow], list[tuple[str, str]]]:
        """One clip per annotated frame time (frames at that time, its good boxes), and
        each bad box as (reason, message). `labels` None takes every label as known.

        Times are `row.times` plus the times of good boxes; a time whose only boxes are
        bad is left out (its object has no target, so it is no background frame)."""
        good: dict[float, list] = {}
        bad_times: set[float] = set()
        skipped = []
        for i, (t, box, label) in enumerate(row.boxes or ()):
            known = (
                label if isinstance(label, str) and (labels is None or label in labels) else None
            )
            problem = box_problem(box, t, duration, known)
            if problem:
                shown = f"label {label!r}" if problem[0] == UNKNOWN_LABEL else problem[1]
                skipped.append((problem[0], f"{row.place}: box {i}: {problem[0]} ({shown})"))
                if isinstance(t, int | float):
                    bad_times.add(round(float(t), 6))
                continue
            good.setdefault(round(float(t), 6), []).append((float(t), tuple(box), label))
        listed = {round(t, 6) for t in row.times or ()}
        for t in sorted(listed - set(good)):
            if t >= duration:
                skipped.append(("time outside the clip", f"{row.place}: time {t:g} s past the "
                                f"end ({duration:.2f} s)"))  # fmt: skip
        times = sorted(set(good) | {t for t in listed if t < duration and t not in bad_times})
        clips = [
            replace(
                row,
                start=max(0.0, t - FRAME_HALF_S),
                end=t + FRAME_HALF_S,
                boxes=tuple(good.get(t, ())),
                times=(t,),
            )  # fmt: skip
            for t in times
        ]
        return clips, skipped

    def row_targets(self, rows: list[ClipRow], labels: list[str]) -> tf.Tensor:
        """Each frame's boxes padded to the most a frame has: `[N, M, 5]` float32 rows of
        `(ymin, xmin, ymax, xmax, class)`, class -1 for padding."""
        index = {name: i for i, name in enumerate(labels)}
        most = max([len(r.boxes or ()) for r in rows] + [1])
        out = np.zeros((len(rows), most, 5), np.float32)
        out[..., 4] = -1
        for n, row in enumerate(rows):
            for m, (_, (x1, y1, x2, y2), label) in enumerate(row.boxes or ()):
                out[n, m] = (y1, x1, y2, x2, index.get(label, -1))
        return tf.constant(out)

    def target_encoder(self, labels: list[str], training: bool = False):
        raise ValueError("task detection: targets come from `row_targets`")

    # -- the model -------------------------------------------------------------------
    def loss(self, label_smoothing: float = 0.0) -> dict:
        """A loss per output: box regression and focal classification, both from the
        same anchor matching."""
        return {
            OUTPUTS[0]: BoxLoss(self.anchors.tolist(), name="box_loss"),
            OUTPUTS[1]: FocalLoss(self.anchors.tolist(), name="focal_loss"),
        }

    def monitor(self, validation: bool) -> tuple[str, str]:
        return ("val_map", "max") if validation else ("loss", "min")

    def epoch_callbacks(self, val_ds: tf.data.Dataset | None, labels: list[str]) -> list:
        """`ValidationMap` on the validation split (what the checkpoint is chosen by)."""
        return [] if val_ds is None else [ValidationMap(self, val_ds, labels)]

    def model_info(self) -> dict:
        """What the run's bundle stores: the anchor layout (`anchor_spec_of` reads it)."""
        return {"anchors": self.spec.to_dict()} if self.spec else {}

    def fit_pairs(self, ds, output_names, vocab_size=None, seed=0):
        return ds.map(lambda x, y: ({"video": x["video"]}, {n: y for n in output_names}))

    # -- evaluation and predictions --------------------------------------------------
    def frames(self, outputs: np.ndarray, labels: list[str], threshold: float) -> list:
        """Per clip, per frame, the detections of outputs `[N, T, A, 4 + C]`."""
        return [
            [boxes_from_outputs(f[:, :4], f[:, 4:], self.anchors, labels,
                                score_threshold=threshold) for f in clip]
            for clip in np.asarray(outputs)
        ]  # fmt: skip

    def report(self, y: np.ndarray, outputs: np.ndarray, labels: list[str]) -> dict:
        """COCO mAP of the middle frame of each clip (a clip's frames all sit at its one
        annotated time) against its boxes: `map`, `map_50`, `map_75`, per-class AP."""
        outputs = np.asarray(outputs)
        mid = outputs.shape[1] // 2
        found = [clip[0] for clip in self.frames(outputs[:, mid : mid + 1], labels, REPORT_SCORE)]
        truth = [
            [{"box": [float(b[1]), float(b[0]), float(b[3]), float(b[2])],
              "label": labels[int(b[4])]} for b in frame if b[4] >= 0]
            for frame in np.asarray(y)
        ]  # fmt: skip
        size = (self.spec.image_size[1], self.spec.image_size[0]) if self.spec else (640, 480)
        r = coco_map(truth, found, frame_size=size, labels=labels)
        per_class = {
            name: {"ap": ap, "boxes": sum(b["label"] == name for f in truth for b in f)}
            for name, ap in r["per_class_ap"].items()
        }
        return {
            "map": r["map"], "map_50": r["map_50"], "map_75": r["map_75"],
            "per_class_ap": r["per_class_ap"], "per_class": per_class, "n": len(truth),
            "frames_without_boxes": sum(not f for f in truth),
        }  # fmt: skip

    def figures(self, report: dict) -> dict[str, float]:
        return {k: report[k] for k in ("map", "map_50", "map_75") if report.get(k) is not None}

    def score(self, report: dict) -> float:
        return float(report.get(self.primary) or 0.0)

    def predictions(self, outputs: np.ndarray, labels: list[str], top: int = 3) -> list[dict]:
        """Each clip's frames as `{"frames": [[{"box", "label", "score"}], ...]}`."""
        return [{"frames": f} for f in self.frames(outputs, labels, 0.3)]

    def series(self, outputs: np.ndarray, labels: list[str]) -> dict[str, np.ndarray]:
        """Per label, the best score of any anchor in each clip."""
        scores = np.asarray(outputs)[..., 4:].max(axis=(1, 2))
        return {name: scores[:, c] for c, name in enumerate(labels)}


def match_anchors(y_true: tf.Tensor, anchors: tf.Tensor) -> tuple[tf.Tensor, ...]:
    """Anchor targets of padded boxes `y_true [N, M, 5]` (yxyx + class, -1 padding):
    (box encodings [N, A, 4], class index [N, A], positive [N, A], negative [N, A]).

    IoU >= 0.5 positive, < 0.4 negative, between ignored; every box's best anchor is
    positive (matched to that box) whatever its IoU."""
    boxes, cls = y_true[..., :4], y_true[..., 4]
    valid = cls >= 0  # [N, M]
    ious = _iou_tf(_corners_tf(anchors), boxes)  # [N, A, M]
    ious = tf.where(valid[:, None, :], ious, -1.0)
    best_iou = tf.reduce_max(ious, axis=-1)
    matched = tf.argmax(ious, axis=-1, output_type=tf.int32)
    num_anchors = tf.shape(anchors)[0]
    best_anchor = tf.argmax(ious, axis=1, output_type=tf.int32)  # [N, M]
    forced = tf.one_hot(best_anchor, num_anchors, axis=1) * tf.cast(valid, tf.float32)[:, None]
    is_forced = tf.reduce_max(forced, axis=-1) > 0  # [N, A]
    matched = tf.where(is_forced, tf.argmax(forced, axis=-1, output_type=tf.int32), matched)
    positive = (best_iou >= POSITIVE_IOU) | is_forced
    negative = (best_iou < NEGATIVE_IOU) & ~positive
    gt = tf.gather(boxes, matched, batch_dims=1)  # [N, A, 4]
    labels = tf.cast(tf.gather(cls, matched, batch_dims=1), tf.int32)
    return _encode_tf(gt, anchors), labels, positive, negative


def _corners_tf(anchors: tf.Tensor) -> tf.Tensor:
    yc, xc, h, w = tf.unstack(anchors, axis=-1)
    return tf.stack([yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2], axis=-1)


def _iou_tf(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """IoU of anchors `a [A, 4]` with boxes `b [N, M, 4]` (yxyx): `[N, A, M]`."""
    a = a[None, :, None, :]
    b = b[:, None, :, :]
    ih = tf.nn.relu(tf.minimum(a[..., 2], b[..., 2]) - tf.maximum(a[..., 0], b[..., 0]))
    iw = tf.nn.relu(tf.minimum(a[..., 3], b[..., 3]) - tf.maximum(a[..., 1], b[..., 1]))
    inter = ih * iw
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / tf.maximum(area_a + area_b - inter, 1e-8)


def _encode_tf(boxes: tf.Tensor, anchors: tf.Tensor) -> tf.Tensor:
    """`tasks.anchors.encode` in TensorFlow (the same coder, the same scales)."""
    h = tf.maximum(boxes[..., 2] - boxes[..., 0], 1e-8)
    w = tf.maximum(boxes[..., 3] - boxes[..., 1], 1e-8)
    yc, xc = boxes[..., 0] + h / 2, boxes[..., 1] + w / 2
    ay, ax, ah, aw = tf.unstack(anchors, axis=-1)
    sy, sx, sh, sw = BOX_SCALES
    return tf.stack(
        [sy * (yc - ay) / ah, sx * (xc - ax) / aw, sh * tf.math.log(h / ah),
         sw * tf.math.log(w / aw)], axis=-1,
    )  # fmt: skip


class _AnchorLoss(keras.losses.Loss):
    """A loss on per-frame outputs `[B, T, A, k]` against padded boxes `[B, M, 5]`, summed
    over the batch and divided by its positive anchors (per-sample values scaled so that
    Keras' mean over the batch gives that)."""

    def __init__(self, anchors: list, name: str | None = None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.anchor_list = anchors
        self._anchors = tf.constant(anchors, tf.float32)

    def call(self, y_true, y_pred):
        frames = tf.shape(y_pred)[1]
        y_true = tf.repeat(tf.cast(y_true, tf.float32), frames, axis=0)  # [B*T, M, 5]
        y_pred = tf.reshape(y_pred, [-1, tf.shape(y_pred)[2], y_pred.shape[-1]])
        targets = match_anchors(y_true, self._anchors)
        per_frame = self.frame_loss(y_pred, *targets)  # [B*T]
        positives = tf.reduce_sum(tf.cast(targets[2], tf.float32))
        per_clip = tf.reduce_sum(tf.reshape(per_frame, [-1, frames]), axis=1)
        batch = tf.cast(tf.shape(per_clip)[0], tf.float32)
        return per_clip * batch / tf.maximum(positives, 1.0)

    def get_config(self) -> dict:
        return {**super().get_config(), "anchors": self.anchor_list}


@keras.saving.register_keras_serializable(package="vdg_tf")
class BoxLoss(_AnchorLoss):
    """Smooth-L1 (Huber, delta 1) of the positives' box encodings."""

    def frame_loss(self, pred, enc, labels, positive, negative):
        diff = tf.abs(pred - enc)
        huber = tf.where(diff < 1.0, 0.5 * diff * diff, diff - 0.5)
        return tf.reduce_sum(tf.reduce_sum(huber, -1) * tf.cast(positive, tf.float32), -1)


@keras.saving.register_keras_serializable(package="vdg_tf")
class FocalLoss(_AnchorLoss):
    """Sigmoid focal loss (alpha 0.25, gamma 2) of positive and negative anchors."""

    def frame_loss(self, probs, enc, labels, positive, negative):
        num = probs.shape[-1]
        y = tf.one_hot(labels, num) * tf.cast(positive, tf.float32)[..., None]
        p = tf.clip_by_value(probs, 1e-7, 1 - 1e-7)
        p_t = y * p + (1 - y) * (1 - p)
        alpha = y * FOCAL_ALPHA + (1 - y) * (1 - FOCAL_ALPHA)
        focal = -alpha * tf.pow(1 - p_t, FOCAL_GAMMA) * tf.math.log(p_t)
        weight = tf.cast(positive | negative, tf.float32)[..., None]
        return tf.reduce_sum(focal * weight, axis=[-2, -1])


class ValidationMap(keras.callbacks.Callback):
    """COCO mAP on the validation split after every epoch, into the logs as `val_map`
    and `val_map_50` (what the best checkpoint and the history read)."""

    def __init__(self, task: Detection, val_ds: tf.data.Dataset, labels: list[str]):
        super().__init__()
        self.task, self.val_ds, self.labels = task, val_ds, labels

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        ys, outs = [], []
        for x, y in self.val_ds:
            out = self.model({"video": x["video"]}, training=False)
            outs.append(np.concatenate([np.asarray(out[k]) for k in OUTPUTS], axis=-1))
            ys.append(np.asarray(y))
        if not ys:
            return
        m = max(y.shape[1] for y in ys)
        ys = [np.pad(y, ((0, 0), (0, m - y.shape[1]), (0, 0)), constant_values=-1) for y in ys]
        report = self.task.report(np.concatenate(ys), np.concatenate(outs), self.labels)
        if logs is not None:
            logs["val_map"] = float(report["map"] or 0.0)
            logs["val_map_50"] = float(report["map_50"] or 0.0)

"""The detection model: a `frame_detector` sub-model applied to every frame of the clip.

`frame_detector` maps one RGB frame `[B, H, W, 3]` in [0, 1] to `(box_encodings [B, A, 4],
class_scores [B, A, C])`: the per-frame backbone's feature maps at the strides of the
run's anchors (`tasks.detection.anchor_spec_of`) and the task's SSD-lite head
(`tasks.detection.frame_head`). The video model folds the frames of `video [B, T, H, W, 3]`
into the batch, runs `frame_detector` once on all of them and unfolds its outputs to
`box_encodings [B, T, A, 4]` and `class_scores [B, T, A, C]`. The sub-model is what a
frame-detector export (one image in) takes as it is.

Backbones: `model.video_backbone` (MobileNetV2 in the `small` and `base` presets; its
feature maps are the last layer at each stride's grid) or, for `none`, a small
depthwise-separable stack of `model.width` channels (the tiny preset, for tests).
tfmot refuses a nested model, so QAT quantizes `frame_detector` itself and rewraps it
(`compression/quantize.py`).

Example:
  model = build_detector(cfg, num_labels=3)
  model.get_layer("frame_detector").output_shape  # [(None, A, 4), (None, A, 3)]
"""

from __future__ import annotations

import tf_keras as keras

from vdg_tf.config import Config
from vdg_tf.models.backbones import VIDEO_PREFIX, load_video_backbone_weights, video_backbone_spec
from vdg_tf.models.encoders.blocks import conv_bn_relu, regularizer, separable_block
from vdg_tf.models.layers import FoldFrames, UnfoldFrames
from vdg_tf.tasks.detection import OUTPUTS, anchor_spec_of, frame_head

FRAME_DETECTOR = "frame_detector"
# BatchNorm's moving statistics follow the batches this fast: Keras' MobileNetV2 keeps
# 0.999, whose statistics after 300 steps are still three quarters their initial values,
# so a short run from scratch validated on garbage (mAP 0 while the training loss fell)
BN_MOMENTUM = 0.9


def build_detector(cfg: Config, num_labels: int) -> keras.Model:
    """The training and inference model of a detection run (outputs keyed by `OUTPUTS`)."""
    frames, size = cfg.data.video.frames, cfg.data.video.size
    detector = build_frame_detector(cfg, num_labels)
    video = keras.Input((frames, size, size, 3), name="video")
    x = FoldFrames(name="video_fold_frames")(video)
    box, scores = detector(x)
    outputs = {
        OUTPUTS[0]: UnfoldFrames(frames, name=OUTPUTS[0])(box),
        OUTPUTS[1]: UnfoldFrames(frames, name=OUTPUTS[1])(scores),
    }
    return keras.Model({"video": video}, outputs, name="vdg_detector")


def build_frame_detector(cfg: Config, num_labels: int) -> keras.Model:
    """`frame_detector`: one frame `[B, S, S, 3]` in [0, 1] -> (box encodings, class scores),
    with `model.weights` loaded into its backbone."""
    spec = anchor_spec_of(cfg)
    size = cfg.data.video.size
    image = keras.Input((size, size, 3), name="image")
    levels = feature_maps(image, cfg, spec.strides)
    box, scores = frame_head(
        levels, num_labels, spec, cfg.model.embed_dim, regularizer(cfg.model.weight_decay)
    )
    model = keras.Model(image, [box, scores], name=FRAME_DETECTOR)
    name = cfg.model.video_backbone
    if cfg.model.weights is not None:
        if name == "none":
            raise ValueError("model.weights: needs a model.video_backbone (it is 'none')")
        load_video_backbone_weights(model, name, size, cfg.model.weights)
    return model


def feature_maps(image, cfg: Config, strides: tuple[int, ...]) -> list:
    """The backbone's feature maps at `strides` (the last layer at each stride's grid)."""
    name = cfg.model.video_backbone
    spec = video_backbone_spec(name)
    if spec is None:
        return _small_stack(image, cfg.model.width, strides, cfg.model.weight_decay)
    size = cfg.data.video.size
    if size < 32:
        raise ValueError(f"data.video.size: {size} is below 32, the least {name} takes")
    x = keras.layers.Rescaling(spec.scale, spec.offset, name="video_rescale")(image)
    own = {id(layer) for layer in keras.Model(image, x).layers}
    app = spec.build(input_tensor=x)
    last: dict[int, keras.layers.Layer] = {}
    for layer in (lay for lay in app.layers if id(lay) not in own):
        layer._name = VIDEO_PREFIX + layer.name  # noqa: SLF001 (before the model is made)
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = BN_MOMENTUM
        shape = layer.output_shape
        if isinstance(shape, tuple) and len(shape) == 4:
            for stride in strides:
                if shape[1:3] == (-(-size // stride), -(-size // stride)):
                    last[stride] = layer
    missing = [s for s in strides if s not in last]
    if missing:
        raise ValueError(f"model.video_backbone {name}: no feature map at stride {missing[0]}")
    return [last[s].output for s in strides]


def _small_stack(image, width: int, strides: tuple[int, ...], l2: float) -> list:
    """A depthwise-separable stack halving the frame at each block; maps at `strides`."""
    x = conv_bn_relu(image, max(8, width // 2), 3, strides=2, l2=l2, name="det_stem")
    out, stride, block = {}, 2, 0
    while stride < max(strides):
        block += 1
        stride *= 2
        filters = width * min(stride // 4, 4)
        x = separable_block(x, filters, strides=2, l2=l2, name=f"det_b{block}")
        x = separable_block(x, filters, strides=1, l2=l2, name=f"det_b{block}s")
        out[stride] = x
    return [out[s] for s in strides]

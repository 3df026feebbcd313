"""Pretrained per-frame image backbones and a YAMNet-style audio backbone, by name.

`model.video_backbone` picks an image network from `tf_keras.applications` that runs on
every frame: frames are folded into the batch (`FoldFrames`), normalised inside the model
as the network expects (model inputs stay [0, 1], the data contract), pooled per frame,
unfolded (`UnfoldFrames`) and handed to the same temporal modelling as the default
encoder (`model.temporal`: a (3, 1) conv over frames, then the mean). The application's
layers are built straight into the classifier's graph (prefixed `video_bb_`), not nested
as a sub-model: tfmot's QAT refuses nested models.

`model.weights` fills the video backbone: `imagenet` (Keras downloads the file into
`~/.keras/models/`; offline, one error line names the file to put there) or a path to a
weights file of that backbone (`.h5` / `.weights.h5`, e.g. Keras' own `*_no_top.h5`, or
`save_weights` of `standalone_backbone(...)`). A file of another backbone or width is one
error line naming the file and the first layer that does not fit.

How tfmot 0.8.1's default 8-bit QAT takes each backbone (measured with
`quantize_aware`; "float" layers stay float in the QAT graph, are listed in the report, and
the TFLite converter quantizes them post-training from the representative data):

| name | network | input scaling | QAT | left float under QAT |
| --- | --- | --- | --- | --- |
| `none` | the default encoder (`encoders/video.py`) | [0, 1] | yes | nothing in the video branch |
| `mobilenet_v2_0.35` / `_0.5` / `_1.0` | MobileNetV2, width 0.35/0.5/1.0 | [-1, 1] | yes | the input Rescaling only |
| `efficientnet_b0` | EfficientNetB0 | [0, 255] (its own normalisation inside) | yes | Rescaling, Normalization and the 16 squeeze-excite Multiply layers |
| `mobilenet_v3_small` | MobileNetV3Small (minimalistic off) | [-1, 1] | partly | hard-swish and hard-sigmoid (tf-op lambdas: 60+ add/multiply layers) and the squeeze-excite Multiply layers: much of the network runs float in QAT |

`model.audio_backbone: yamnet | yamnet_0.5 | yamnet_0.25` is YAMNet's layout (a 3x3
stride-2 conv and 13 depthwise-separable blocks, 32 to 1024 channels at width 1.0) on the
log-mel; every layer is in tfmot's 8-bit set. It trains from scratch: YAMNet's AudioSet
weights are a TF-Hub checkpoint, not a Keras weights file.

Example:

    cfg.model.video_backbone, cfg.model.weights = "mobilenet_v2_0.35", "mnv2_035.h5"
    model = build_classifier(cfg, num_classes=8, vocab_size=400, spec_frames=201)
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import tf_keras as keras

from vdg_tf.models.encoders.blocks import conv_bn_relu, separable_block
from vdg_tf.models.layers import FoldFrames, UnfoldFrames

VIDEO_PREFIX = "video_bb_"
AUDIO_PREFIX = "audio_bb_"


@dataclass(frozen=True)
class VideoBackbone:
    """One image network of `tf_keras.applications` and what it expects.

    Args:
        application: the `tf_keras.applications` function name.
        kwargs: its keyword arguments besides input, top and weights (e.g. `alpha`).
        scale, offset: model input [0, 1] -> the network's input range (`x * scale + offset`).
        qat: how tfmot's default 8-bit QAT takes it (see the module docstring).
    """

    application: str
    kwargs: tuple[tuple[str, object], ...] = ()
    scale: float = 2.0
    offset: float = -1.0
    qat: str = "yes"

    def build(self, weights: str | None = None, input_tensor=None, input_shape=None):
        """The application model (no top) on `input_tensor` or a fresh input of `input_shape`."""
        fn: Callable = getattr(keras.applications, self.application)
        return fn(
            include_top=False,
            weights=weights,
            input_tensor=input_tensor,
            input_shape=input_shape,
            **dict(self.kwargs),
        )


VIDEO_BACKBONES: dict[str, VideoBackbone | None] = {
    "none": None,
    "mobilenet_v2_0.35": VideoBackbone("MobileNetV2", (("alpha", 0.35),)),
    "mobilenet_v2_0.5": VideoBackbone("MobileNetV2", (("alpha", 0.5),)),
    "mobilenet_v2_1.0": VideoBackbone("MobileNetV2", (("alpha", 1.0),)),
    "efficientnet_b0": VideoBackbone("EfficientNetB0", scale=255.0, offset=0.0),
    "mobilenet_v3_small": VideoBackbone(
        "MobileNetV3Small",
        (("include_preprocessing", False),),
        qat="partly: hard-swish, hard-sigmoid and squeeze-excite stay float",
    ),
}

# YAMNet's depthwise-separable stack: (stride, filters at width 1.0) per block
_YAMNET_BLOCKS = (
    (1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512),
    (1, 512), (1, 512), (1, 512), (1, 512), (1, 512), (2, 1024), (1, 1024),
)  # fmt: skip

AUDIO_BACKBONES: dict[str, float | None] = {
    "none": None,
    "yamnet": 1.0,
    "yamnet_0.5": 0.5,
    "yamnet_0.25": 0.25,
}


def _known(table: dict) -> str:
    return ", ".join(table)


def video_backbone_spec(name: str) -> VideoBackbone | None:
    """The registered backbone `name` (None for `none`); an unknown name lists the known."""
    if name not in VIDEO_BACKBONES:
        raise ValueError(
            f"model.video_backbone: unknown '{name}' (known: {_known(VIDEO_BACKBONES)})"
        )
    return VIDEO_BACKBONES[name]


def backbone_video_features(inp, frames: int, size: int, name: str):
    """[B, T, S, S, 3] in [0, 1] -> per-frame features [B, T, 1, C] from backbone `name`.

    The backbone is built with random weights; `load_video_backbone_weights` fills them
    once the whole model exists.
    """
    spec = video_backbone_spec(name)
    if size < 32:
        raise ValueError(f"data.video.size: {size} is below 32, the least {name} takes")
    x = FoldFrames(name="video_fold_frames")(inp)  # [B*T, S, S, 3]
    x = keras.layers.Rescaling(spec.scale, spec.offset, name="video_rescale")(x)
    own = {id(layer) for layer in keras.Model(inp, x).layers}
    app = spec.build(input_tensor=x)
    for layer in app.layers:
        if id(layer) not in own:
            layer._name = VIDEO_PREFIX + layer.name  # noqa: SLF001 (before the model is made)
    x = keras.layers.GlobalAveragePooling2D(name="video_frame_pool")(app.output)  # [B*T, C]
    channels = int(x.shape[-1])
    x = UnfoldFrames(frames, name="video_unfold_frames")(x)  # [B, T, C]
    return keras.layers.Reshape((frames, 1, channels), name="video_frames")(x)


def yamnet_features(inp, alpha: float, out_dim: int, l2: float | tuple[float, float] = 0.0):
    """[B, F, M, 1] log-mel -> [B, out_dim]: YAMNet's MobileNet-v1 stack at width `alpha`."""

    def ch(n: int) -> int:
        return max(8, int(n * alpha))

    x = conv_bn_relu(inp, ch(32), 3, strides=2, l2=l2, name=f"{AUDIO_PREFIX}stem")
    for i, (stride, filters) in enumerate(_YAMNET_BLOCKS, 1):
        x = separable_block(x, ch(filters), strides=stride, l2=l2, name=f"{AUDIO_PREFIX}l{i}")
    x = conv_bn_relu(x, out_dim, 1, l2=l2, name=f"{AUDIO_PREFIX}proj")
    return keras.layers.GlobalAveragePooling2D(name="audio_pool")(x)


def audio_backbone_width(name: str) -> float | None:
    """The width of audio backbone `name` (None for `none`); unknown names list the known."""
    if name not in AUDIO_BACKBONES:
        raise ValueError(
            f"model.audio_backbone: unknown '{name}' (known: {_known(AUDIO_BACKBONES)})"
        )
    return AUDIO_BACKBONES[name]


def backbone_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The pretrained video backbone's layers in `model` (what `freeze_backbone_epochs` freezes)."""
    return [layer for layer in model.layers if layer.name.startswith(VIDEO_PREFIX)]


def set_backbone_trainable(model: keras.Model, trainable: bool) -> int:
    """Freeze or unfreeze the video backbone (frozen BatchNorm runs in inference mode).

    Returns the number of layers changed; recompile the model afterwards.
    """
    layers = backbone_layers(model)
    for layer in layers:
        layer.trainable = trainable
    return len(layers)


def standalone_backbone(name: str, size: int, weights: str | None = None) -> keras.Model:
    """Backbone `name` alone on [size, size, 3] images: what weights files are made from.

    Example (a weights file `model.weights` accepts):

        standalone_backbone("mobilenet_v2_0.35", 64).save_weights("mnv2_035.h5")
    """
    spec = video_backbone_spec(name)
    if spec is None:
        raise ValueError("model.video_backbone: 'none' has no standalone backbone")
    return spec.build(weights=weights, input_shape=(size, size, 3))


def load_video_backbone_weights(model: keras.Model, name: str, size: int, weights: str) -> int:
    """Fill `model`'s video backbone from `weights` (`imagenet` or a file path).

    Returns the number of layers filled.

    Raises:
        ValueError: one line: the imagenet file could not be had (and where to put it), or
            the file is missing, unreadable, or of another backbone (naming the first
            layer that does not fit).
    """
    if weights == "imagenet":
        source = _imagenet_backbone(name, size)
    else:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise ValueError(f"model.weights: {weights}: no such file")
        source = standalone_backbone(name, size)
        check_weights_file(source, path, name)
        try:
            source.load_weights(str(path))
        except (ValueError, OSError) as e:
            raise ValueError(f"{path}: cannot load into {name}: {_one_line(e)}") from None
    filled = 0
    for layer in source.layers:
        if layer.weights:
            model.get_layer(VIDEO_PREFIX + layer.name).set_weights(layer.get_weights())
            filled += 1
    return filled


def check_weights_file(model: keras.Model, path: Path, name: str) -> None:
    """Raise one line if the weights file at `path` does not fit `model` layer by layer.

    Two layouts: legacy HDF5 (`save_weights("x.h5")`, Keras' ImageNet files), loaded by
    the order of the layers that hold weights; and the `.weights.h5` layout, keyed by
    class name and position. Each weight's shape is compared, and the first layer that
    differs is named.
    """
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ValueError(f"{path}: not an HDF5 weights file ({_one_line(e)})") from None
    with f:
        group = f.get("model_weights", f)
        if "layer_names" in group.attrs:
            saved = []
            for n in (_text(n) for n in group.attrs["layer_names"]):
                weights = group[n].attrs["weight_names"]
                shapes = [tuple(group[n][_text(w)].shape) for w in weights]
                if shapes:
                    saved.append((n, shapes))
            expected = [
                (layer.name, [tuple(w.shape) for w in layer.weights]) for layer in model.layers
            ]
            expected = [(n, s) for n, s in expected if s]
        elif "layers" in group:
            saved, expected = _keyed_shapes(model, group["layers"])
        else:
            raise ValueError(f"{path}: no layer weights in this file (a Keras weights file?)")
    for i, (want, got) in enumerate(zip(expected, saved, strict=False)):
        if want[1] != got[1]:
            raise ValueError(
                f"{path}: not weights of {name}: layer '{want[0]}' wants shapes {want[1]}, "
                f"the file's layer {i} '{got[0]}' has {got[1]}"
            )
    if len(saved) != len(expected):
        first = expected[len(saved)][0] if len(saved) < len(expected) else saved[len(expected)][0]
        raise ValueError(
            f"{path}: not weights of {name}: {len(saved)} layers with weights, {name} has "
            f"{len(expected)} (first unmatched layer '{first}')"
        )


def _keyed_shapes(model: keras.Model, layers) -> tuple[list, list]:
    """(saved, expected) [(layer, shapes)] for the `.weights.h5` layout, where a layer is
    stored under its class name in snake case, numbered in `model.layers` order."""
    from tf_keras.src.utils.generic_utils import to_snake_case

    used: dict[str, int] = {}
    saved, expected = [], []
    for layer in model.layers:
        key = to_snake_case(type(layer).__name__)
        used[key] = used.get(key, -1) + 1
        key = f"{key}_{used[key]}" if used[key] else key
        want = [tuple(w.shape) for w in layer._trainable_weights + layer._non_trainable_weights]  # noqa: SLF001
        vars_ = layers[key]["vars"] if key in layers and "vars" in layers[key] else {}
        got = [tuple(vars_[str(i)].shape) for i in range(len(vars_))]
        if want or got:
            expected.append((layer.name, want))
            saved.append((key, got))
    return saved, expected


def _imagenet_backbone(name: str, size: int) -> keras.Model:
    """Backbone `name` with Keras' ImageNet weights; offline, one line on where to put them."""
    try:
        return standalone_backbone(name, size, weights="imagenet")
    except Exception as e:  # noqa: BLE001 (get_file raises a bare Exception offline)
        text = _one_line(e)
        url = re.search(r"https?://\S+?\.h5", text)
        if not url:
            raise ValueError(f"model.weights: imagenet weights for {name}: {text}") from None
        file_name = url.group(0).rsplit("/", 1)[-1]
        home = os.environ.get("KERAS_HOME", "~/.keras")
        raise ValueError(
            f"model.weights: imagenet weights for {name} could not be downloaded; on a "
            f"machine without internet put {file_name} (from {url.group(0)}) at "
            f"{home}/models/{file_name}, or give model.weights a path to it"
        ) from None


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:300] or type(e).__name__

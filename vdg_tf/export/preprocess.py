"""In-graph preprocessing for exports: raw `uint8` frames and a raw waveform in, prediction out.

A plain export takes the pipeline's features (frames resized to `size` in [0, 1], log-mel),
so a device app must re-implement the resize and the mel filterbank exactly. With
`preprocessing_model` the exported graph does both, with the pipeline's own settings:

- `video`: `uint8 [B, T, H, W, 3]` RGB at any H, W. Each frame is resized as the decoder
  (`vdg_tf.media.decode._resize`) does it: short-side resize + centre crop (`crop`) or
  long-side resize + black pad (`pad`), with area averaging, rounded to uint8 and scaled to
  [0, 1]. The area filter is two matrix products (rows, then columns) whose weights are
  computed from H and W in the graph, so it converts to TFLite builtins (BATCH_MATMUL)
  where `tf.image.resize(method="area")` has no TFLite kernel.
- `audio`: float32 mono waveform `[B, audio.samples]` at `audio.sample_rate` (the window's
  audio, as `decode_clip` gives it), turned into log-mel by `vdg_tf.data.features.log_mel`
  itself (tf.signal.stft -> RFFT2D + COMPLEX_ABS, mel matrix, log), masked by `audio_mask`
  as `vdg_tf.data.pipeline.model_inputs` masks it.
- `text`, `*_mask`: as in the plain export. Tokenizing stays outside the graph.

T (frames per window) and the waveform length stay fixed: the encoders are built for them.
What a device app still does before calling such an export: sample T frames of the window
(uniform, or a run at `video.fps`), decode them to RGB, resample the audio to mono float
at `audio.sample_rate` and take `audio.samples` of it, and tokenize the text.
"""

from __future__ import annotations

import dataclasses
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras as keras

from vdg_tf._quiet import silenced_stderr
from vdg_tf.config import AudioSpec, DataConfig, VideoSpec
from vdg_tf.data.features import TextTokenizer, log_mel
from vdg_tf.export.targets import get_target
from vdg_tf.export.tflite import ExportConfig, configure_converter, convert, finish
from vdg_tf.models.serving import save_serving_model

# the layers of the preprocessing graph; an int8 export keeps every op under them float
PREPROCESS_LAYERS = ("frames_to_video", "waveform_to_log_mel")


def area_weights(n_in: tf.Tensor, n_out: tf.Tensor, size: int, offset: tf.Tensor) -> tf.Tensor:
    """Resize weights `[size, n_in]`: row j makes output pixel `j + offset` of an
    `n_in -> n_out` resize (a zero row where that pixel lies outside `[0, n_out)`: the
    black border of `pad`).

    As FFmpeg's AREA scaler (the decoder's): when shrinking, exact box filtering (each
    input pixel weighted by its overlap with the output pixel's span); when enlarging,
    bilinear (swscale's AREA is "downscale only, for upscale it is bilinear").
    """
    n_out_f = tf.cast(n_out, tf.float32)
    ratio = tf.cast(n_in, tf.float32) / n_out_f
    i = tf.cast(tf.range(size) + offset, tf.float32)[:, None]
    p = tf.cast(tf.range(n_in), tf.float32)[None, :]
    lo, hi = i * ratio, (i + 1.0) * ratio
    box = tf.nn.relu(tf.minimum(p + 1.0, hi) - tf.maximum(p, lo)) / ratio
    centre = tf.clip_by_value((i + 0.5) * ratio - 0.5, 0.0, tf.cast(n_in, tf.float32) - 1.0)
    tent = tf.nn.relu(1.0 - tf.abs(p - centre))
    weights = tf.where(ratio >= 1.0, box, tent)
    return weights * tf.cast((i >= 0.0) & (i < n_out_f), tf.float32)


def resize_geometry(
    h: tf.Tensor, w: tf.Tensor, spec: VideoSpec
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """(new_h, new_w, offset_h, offset_w) of `decode._resize` for an `h x w` frame: the
    resized frame's size and where the `size x size` output window starts in it."""
    hf, wf = tf.cast(h, tf.float32), tf.cast(w, tf.float32)
    side = tf.minimum(hf, wf) if spec.resize == "crop" else tf.maximum(hf, wf)
    scale = spec.size / side
    # tf.round rounds half to even, as Python's round() in decode._resize does
    nh = tf.maximum(1, tf.cast(tf.round(hf * scale), tf.int32))
    nw = tf.maximum(1, tf.cast(tf.round(wf * scale), tf.int32))
    if spec.resize == "crop":
        return nh, nw, (nh - spec.size) // 2, (nw - spec.size) // 2
    return nh, nw, -((spec.size - nh) // 2), -((spec.size - nw) // 2)


@keras.utils.register_keras_serializable("vdg_tf")
class FramesToVideo(keras.layers.Layer):
    """uint8 frames `[B, T, H, W, 3]` at any H, W -> the model's `video` `[B, T, S, S, 3]`
    in [0, 1], resized as the decoder resizes (crop or pad, area averaging, uint8 rounding).

    Args:
      size: the output side S (`data.video.size`).
      resize: `crop` or `pad` (`data.video.resize`).
    """

    def __init__(self, size: int, resize: str = "crop", **kwargs):
        super().__init__(**kwargs)
        if resize not in ("crop", "pad"):
            raise ValueError(f"data.video.resize: unknown '{resize}' (known: crop, pad)")
        self.size, self.resize = size, resize

    def call(self, frames: tf.Tensor) -> tf.Tensor:
        spec = VideoSpec(size=self.size, resize=self.resize)
        shape = tf.shape(frames)
        b, t, h, w = shape[0], shape[1], shape[2], shape[3]
        nh, nw, oh, ow = resize_geometry(h, w, spec)
        wy = area_weights(h, nh, self.size, oh)  # [S, H]
        wx = area_weights(w, nw, self.size, ow)  # [S, W]
        x = tf.transpose(tf.cast(frames, tf.float32), [0, 1, 4, 2, 3])  # [B, T, 3, H, W]
        x = tf.reshape(x, tf.stack([-1, h, w]))
        x = tf.matmul(tf.matmul(wy[None], x), wx[None], transpose_b=True)  # [B*T*3, S, S]
        x = tf.reshape(x, tf.stack([b, t, 3, self.size, self.size]))
        x = tf.transpose(x, [0, 1, 3, 4, 2])
        # the pipeline sees uint8 frames after the resize, then divides by 255
        return tf.round(tf.clip_by_value(x, 0.0, 255.0)) / 255.0

    def get_config(self) -> dict:
        return {**super().get_config(), "size": self.size, "resize": self.resize}


@keras.utils.register_keras_serializable("vdg_tf")
class WaveformToLogMel(keras.layers.Layer):
    """Mono waveform `[B, N]` and `audio_mask` `[B, 1]` -> the model's `audio` log-mel
    `[B, frames, mels, 1]`, through the pipeline's own `log_mel` and masking.

    Args:
      audio: the `data.audio` settings as a dict (`AudioSpec` fields).
    """

    def __init__(self, audio: dict, **kwargs):
        super().__init__(**kwargs)
        self.audio = dict(audio)
        self.spec = AudioSpec(**self.audio)

    def call(self, waveform: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
        mel = log_mel(waveform * mask, self.spec)
        # a reshape, not mask[:, :, None, None]: TFLite's STRIDED_SLICE takes no new axis
        # on a dynamic batch (Flex only)
        return mel * tf.reshape(mask, [-1, 1, 1, 1])

    def get_config(self) -> dict:
        return {**super().get_config(), "audio": self.audio}


def raw_video_input(data: DataConfig) -> keras.Input:
    """The `video` input of a --preprocess model: uint8 `[B, T, H, W, 3]`, H and W free."""
    return keras.Input((data.video.frames, None, None, 3), dtype="uint8", name="video")


def raw_audio_input(data: DataConfig) -> keras.Input:
    """The `audio` input of a --preprocess model: the mono waveform `[B, audio.samples]`."""
    return keras.Input((data.audio.samples,), dtype="float32", name="audio")


def video_features(data: DataConfig) -> FramesToVideo:
    return FramesToVideo(data.video.size, data.video.resize, name=PREPROCESS_LAYERS[0])


def audio_features(data: DataConfig) -> WaveformToLogMel:
    fields = {f.name: getattr(data.audio, f.name) for f in dataclasses.fields(data.audio)}
    return WaveformToLogMel(fields, name=PREPROCESS_LAYERS[1])


def features_model(data: DataConfig) -> keras.Model:
    """The preprocessing alone: {`video` uint8 frames, `audio` waveform, `audio_mask`} ->
    {`video`, `audio`} as the model sees them (for checks against the pipeline, or to run
    it apart from the model)."""
    frames, wave = raw_video_input(data), raw_audio_input(data)
    mask = keras.Input((1,), dtype="float32", name="audio_mask")
    return keras.Model(
        {"video": frames, "audio": wave, "audio_mask": mask},
        {"video": video_features(data)(frames), "audio": audio_features(data)(wave, mask)},
        name="vdg_features",
    )


def preprocessing_model(model: keras.Model, data: DataConfig) -> keras.Model:
    """`model` (an inference model taking the contract inputs) behind in-graph preprocessing:
    `video` becomes uint8 frames at any size, `audio` a raw waveform; every other input
    (`text`, the masks) passes through unchanged, under the same names.

    Example:
      wrapped = preprocessing_model(inference_model(bundle.model), bundle.config.data)
      convert(wrapped, ExportConfig("float32"))
    """
    names = {inp.name.split(":")[0]: inp for inp in model.inputs}
    if "audio" in names and "audio_mask" not in names:
        raise ValueError("model: an 'audio' input without 'audio_mask' cannot be wrapped")
    raw = {
        name: keras.Input(inp.shape[1:], dtype=inp.dtype, name=name)
        for name, inp in names.items()
        if name not in ("video", "audio")
    }
    feed = dict(raw)
    if "video" in names:
        raw["video"] = raw_video_input(data)
        feed["video"] = video_features(data)(raw["video"])
    if "audio" in names:
        raw["audio"] = raw_audio_input(data)
        feed["audio"] = audio_features(data)(raw["audio"], raw["audio_mask"])
    return keras.Model(raw, model(feed), name="vdg_preprocessing")


def convert_preprocessed(model: keras.Model, cfg: ExportConfig) -> bytes:
    """The `.tflite` of a `preprocessing_model` for `cfg.target`: as `export.tflite.convert`,
    except that an int8 target quantizes the model but not the preprocessing.

    Quantized the usual way, the power spectrum (a range of 10^8) goes through int8
    before LOG and the resize matmuls hold 0..255 pixels in int8: log-mel off by 0.13-0.42
    on a [-1, 1] scale, frames by 0.03 (measured on the sample clips). So the graph is
    calibrated, then quantized with every op under `PREPROCESS_LAYERS` denylisted
    (`mlir_quantize`'s `denylisted_nodes`, what tf.lite's QuantizationDebugger uses): the
    features are computed in float and quantized once where the model takes them.
    """
    if not get_target(cfg.target).int8:
        return convert(model, cfg)
    from tensorflow.lite.python import convert as lite_convert  # mlir_quantize: not in tf.lite

    with tempfile.TemporaryDirectory() as tmp:
        saved = save_serving_model(model, Path(tmp) / "saved", batch=cfg.batch)
        converter = tf.lite.TFLiteConverter.from_saved_model(
            str(saved), signature_keys=["serving_default"]
        )
        configure_converter(converter, cfg)
        converter._experimental_calibrate_only = True  # the debugger's way to stop there
        with silenced_stderr(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            calibrated = converter.convert()
            data = lite_convert.mlir_quantize(
                calibrated,
                converter._experimental_disable_per_channel,
                input_data_type=tf.float32,
                output_data_type=tf.float32,
                denylisted_nodes=_preprocessing_nodes(calibrated),
            )
    return finish(data, cfg)


def _preprocessing_nodes(model: bytes) -> list[str]:
    """Names of the tensors the preprocessing layers compute (the quantizer's node names)."""
    from ai_edge_litert.tools import flatbuffer_utils

    flat = flatbuffer_utils.read_model_from_bytearray(bytearray(model))
    names = []
    for sg in flat.subgraphs:
        for tensor in sg.tensors:
            name = tensor.name.decode() if isinstance(tensor.name, bytes) else tensor.name or ""
            if any(layer in name for layer in PREPROCESS_LAYERS):
                names.append(name)
    return names


def raw_inputs(
    frames: np.ndarray, waveform: np.ndarray, has_audio: bool, ids: np.ndarray, text: str
) -> dict[str, np.ndarray]:
    """One sample's inputs for a --preprocess export (no batch axis), from a decoded clip
    (`decode_clip`'s frames at any size and waveform) and its tokenized text: what a
    device app gives the model. Masks as the pipeline sets them (`fixed_features`)."""
    return {
        "video": np.asarray(frames, np.uint8),
        "audio": np.asarray(waveform, np.float32),
        "text": np.asarray(ids, np.int32),
        "video_mask": np.ones(1, np.float32),
        "audio_mask": np.full(1, float(has_audio), np.float32),
        "text_mask": np.full(1, float(bool(text.strip())), np.float32),
    }


def raw_representative(
    manifest: str | Path,
    data: DataConfig,
    tokenizer: TextTokenizer,
    names: list[str],
    count: int = 64,
) -> Iterator[dict[str, np.ndarray]]:
    """Up to `count` calibration inputs (batch 1, keyed by the model's input `names`) for a
    --preprocess export: clips of `manifest` decoded by the project's decoder (frames at the
    model's size, where the in-graph resize is the identity) with raw waveform and token ids."""
    from vdg_tf.manifest import read_manifest
    from vdg_tf.media.decode import DecodeError, decode_clip

    rows, _ = read_manifest(manifest)
    seen = 0
    for row in rows:
        if seen >= count:
            return
        try:
            clip = decode_clip(
                row.video, data.video, data.audio, row.start, row.end, row.audio, threads=1
            )
        except DecodeError:
            continue  # calibration needs some clips, not every one
        ids = tokenizer(tf.constant([row.text])).numpy()[0]
        sample = raw_inputs(clip.frames, clip.audio, clip.has_audio, ids, row.text)
        yield {k: sample[k][None] for k in names}
        seen += 1

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
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras as keras

from vdg_tf.config import AudioSpec, DataConfig, VideoSpec
from vdg_tf.data.features import TextTokenizer, log_mel

# What a device app still does before calling a --preprocess export: sample T frames of the
# window (uniform, or a run at `video.fps`), decode them to RGB, resample the audio to mono
# float at `audio.sample_rate` and take `audio.samples` of it, and tokenize the text.
RAW_INPUTS = {
    "video": "uint8 [B, T, H, W, 3] RGB frames at any size",
    "audio": "float32 [B, N] mono waveform at the model's sample rate",
}


def area_weights(n_in: tf.Tensor, n_out: tf.Tensor, size: int, offset: tf.Tensor) -> tf.Tensor:
    """Area-averaging weights `[size, n_in]`: row j averages the input span of output pixel
    `j + offset` of an `n_in -> n_out` resize (a zero row where that pixel lies outside
    `[0, n_out)`, the black border of `pad`).

    Exact box filtering (each input pixel weighted by its overlap), as FFmpeg's AREA
    scaler and `tf.image.resize(method="area")` do when shrinking.
    """
    ratio = tf.cast(n_in, tf.float32) / tf.cast(n_out, tf.float32)
    i = tf.cast(tf.range(size) + offset, tf.float32)[:, None]
    lo, hi = i * ratio, (i + 1.0) * ratio
    p = tf.cast(tf.range(n_in), tf.float32)[None, :]
    overlap = tf.nn.relu(tf.minimum(p + 1.0, hi) - tf.maximum(p, lo)) / ratio
    inside = tf.cast((i >= 0.0) & (i < tf.cast(n_out, tf.float32)), tf.float32)
    return overlap * inside


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
        return mel * mask[:, :, tf.newaxis, tf.newaxis]

    def get_config(self) -> dict:
        return {**super().get_config(), "audio": self.audio}


def preprocessing_model(model: keras.Model, data: DataConfig) -> keras.Model:
    """`model` (an inference model taking the contract inputs) behind in-graph preprocessing:
    `video` becomes uint8 frames at any size, `audio` a raw waveform; every other input
    (`text`, the masks) passes through unchanged, under the same names.

    Example:
      wrapped = preprocessing_model(inference_model(bundle.model), bundle.config.data)
      convert(wrapped, ExportConfig("float32"))
    """
    raw, feed = {}, {}
    for inp in model.inputs:
        name = inp.name.split(":")[0]
        raw[name] = keras.Input(inp.shape[1:], dtype=inp.dtype, name=name)
    if "video" in raw:
        frames = keras.Input((data.video.frames, None, None, 3), dtype="uint8", name="video")
        raw["video"] = frames
        feed["video"] = FramesToVideo(data.video.size, data.video.resize, name="frames_to_video")(
            frames
        )
    if "audio" in raw:
        wave = keras.Input((data.audio.samples,), dtype="float32", name="audio")
        raw["audio"] = wave
        mask = raw.get("audio_mask")
        if mask is None:
            raise ValueError("model: an 'audio' input without 'audio_mask' cannot be wrapped")
        spec = {f: getattr(data.audio, f) for f in data.audio.__dataclass_fields__}
        feed["audio"] = WaveformToLogMel(spec, name="waveform_to_log_mel")(wave, mask)
    for name, tensor in raw.items():
        feed.setdefault(name, tensor)
    out = model({name.split(":")[0]: feed[name.split(":")[0]] for name in raw})
    return keras.Model(raw, out, name="vdg_preprocessing")


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

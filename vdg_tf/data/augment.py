"""Training-time augmentation, seeded and stateless so a seed reproduces a batch.

Video: one random resized crop, flip and colour jitter per clip, applied to all its
frames alike (frames of a clip must stay consistent, or motion turns into noise).
Audio: gain and background noise on the waveform; SpecAugment masks on the log-mel.
Text: token dropout. Temporal jitter happens at decode time (`decode.sample_times`).

Every transform works on a whole batch with its own draw per clip: one op over the
batch instead of a dozen tiny ops per clip, which on a CPU cost more than the pixels
(BENCHMARKS.md, data pipeline). The single-clip functions run the batch ones on a batch of 1.
"""

from __future__ import annotations

import tensorflow as tf

from vdg_tf.config import AugmentConfig


def _seeds(seed: tf.Tensor, n: int) -> tf.Tensor:
    """n independent stateless seeds [n, 2] split from one seed."""
    return tf.random.experimental.stateless_split(seed, n)


def _per_clip(b, seed: tf.Tensor, lo: float = 0.0, hi: float = 1.0) -> tf.Tensor:
    """[b] uniform draws in [lo, hi), one per clip."""
    return tf.random.stateless_uniform([b], seed, lo, hi)


def augment_video(frames: tf.Tensor, seed: tf.Tensor, cfg: AugmentConfig) -> tf.Tensor:
    """frames float [T, S, S, 3] in [0, 1] -> same shape, one transform for every frame."""
    return augment_video_batch(frames[tf.newaxis], seed, cfg)[0]


def augment_video_batch(frames: tf.Tensor, seed: tf.Tensor, cfg: AugmentConfig) -> tf.Tensor:
    """frames float [B, T, S, S, 3] in [0, 1] -> same shape: a crop, flip and colour
    jitter drawn per clip, the same for every frame of that clip.

    Crop and flip are one `crop_and_resize` (a flip is a box with its x ends swapped);
    brightness and contrast one multiply-add; saturation blends with the grey image (as
    PIL's `ImageEnhance.Color` and torchvision do: an HSV round trip costs 20x more).
    """
    s = _seeds(seed, 5)
    b = tf.shape(frames)[0]
    if cfg.crop_scale < 1.0 or cfg.flip:
        flip = _per_clip(b, s[1]) < 0.5 if cfg.flip else tf.zeros([b], tf.bool)
        frames = _crop_and_flip(frames, s[0], cfg.crop_scale, flip)
    if cfg.brightness or cfg.contrast:  # x + delta, then tf.image.adjust_contrast's
        # (x - mean) * f + mean, the mean per frame and channel: x * f + (mean * (1 - f) + delta)
        delta = _per_clip(b, s[2], -cfg.brightness, cfg.brightness)[:, None, None, None, None]
        f = _per_clip(b, s[3], 1 - cfg.contrast, 1 + cfg.contrast)[:, None, None, None, None]
        mean = tf.reduce_mean(frames, axis=[2, 3], keepdims=True) if cfg.contrast else 0.0
        frames = frames * f + (mean * (1 - f) + delta)
    if cfg.saturation:
        f = _per_clip(b, s[4], 1 - cfg.saturation, 1 + cfg.saturation)[:, None, None, None, None]
        grey = tf.image.rgb_to_grayscale(frames)
        frames = frames * f + grey * (1 - f)
    return tf.clip_by_value(frames, 0.0, 1.0)


def _crop_and_flip(frames: tf.Tensor, seed: tf.Tensor, scale: float, flip: tf.Tensor) -> tf.Tensor:
    """A square crop of `scale`..1 of the area per clip, mirrored where `flip`, resized back
    to the frame size (bilinear): one `crop_and_resize` over every frame of the batch."""
    s = _seeds(seed, 3)
    shape = tf.shape(frames)
    b, t = shape[0], shape[1]
    size = frames.shape[2] if frames.shape[2] is not None else shape[2]
    fsize = tf.cast(size, tf.float32)
    side = fsize
    if scale < 1.0:
        side = tf.floor(fsize * tf.sqrt(_per_clip(b, s[0], scale, 1.0)))
    y = tf.floor(_per_clip(b, s[1]) * (fsize - side + 1))
    x = tf.floor(_per_clip(b, s[2]) * (fsize - side + 1))
    y2, x2 = y + side - 1, x + side - 1
    x, x2 = tf.where(flip, x2, x), tf.where(flip, x, x2)  # a box with x1 > x2 is mirrored
    last = tf.maximum(fsize - 1, 1.0)  # box corners are pixel centres over size - 1
    boxes = tf.stack([y, x, y2, x2], axis=1) / last
    flat = tf.reshape(frames, tf.concat([[-1], shape[2:]], 0))
    out = tf.image.crop_and_resize(
        flat, tf.repeat(boxes, t, axis=0), tf.range(b * t), tf.stack([size, size])
    )
    return tf.reshape(out, shape)


def augment_waveform(samples: tf.Tensor, seed: tf.Tensor, cfg: AugmentConfig) -> tf.Tensor:
    """Random gain, then Gaussian noise at `noise_snr_db` (log-mel is peak-relative, so gain
    alone would change nothing; with noise it changes how far the signal stands out)."""
    return augment_waveform_batch(samples[tf.newaxis], seed, cfg)[0]


def augment_waveform_batch(samples: tf.Tensor, seed: tf.Tensor, cfg: AugmentConfig) -> tf.Tensor:
    """`augment_waveform` on [B, N] with a gain and noise drawn per clip."""
    s = _seeds(seed, 2)
    if cfg.gain_db:
        db = _per_clip(tf.shape(samples)[0], s[0], -cfg.gain_db, cfg.gain_db)
        samples = samples * tf.pow(10.0, db / 20.0)[:, tf.newaxis]
    if cfg.noise_snr_db:
        rms = tf.sqrt(tf.reduce_mean(tf.square(samples), axis=1, keepdims=True) + 1e-12)
        noise_rms = rms / tf.pow(10.0, cfg.noise_snr_db / 20.0)
        samples = samples + noise_rms * tf.random.stateless_normal(tf.shape(samples), s[1])
    return samples


def spec_augment(mel: tf.Tensor, seed: tf.Tensor, cfg: AugmentConfig) -> tf.Tensor:
    """SpecAugment on log-mel [frames, mels, 1]: one frequency band and one time band zeroed.

    Same masks as `tfio.audio.freq_mask`/`time_mask`, but drawn from stateless seeds: tfio's
    draw from stateful `tf.random.uniform`, which in a parallel map depends on thread timing,
    so a seed could not reproduce a batch.
    """
    keep_t, keep_f = spec_keep(1, tf.shape(mel)[0], tf.shape(mel)[1], seed, cfg)
    return mel * keep_t[0, :, tf.newaxis, tf.newaxis] * keep_f[0, tf.newaxis, :, tf.newaxis]


def spec_keep(b, frames, mels, seed: tf.Tensor, cfg: AugmentConfig) -> tuple[tf.Tensor, tf.Tensor]:
    """SpecAugment's draw for `b` clips as keep masks (1 kept, 0 masked): time [b, frames]
    and frequency [b, mels], to multiply into a batch of log-mels."""
    s = _seeds(seed, 2)
    keep_t = _band_keep(b, frames, s[1], cfg.time_mask)
    keep_f = _band_keep(b, mels, s[0], cfg.freq_mask)
    return keep_t, keep_f


def _band_keep(b, n, seed: tf.Tensor, width: int) -> tf.Tensor:
    """[b, n] float: per row, 0 on a band of up to `width` entries at a random start (what
    tfio's masks zero), 1 elsewhere; all ones when `width` is 0."""
    if not width:
        return tf.ones([b, n], tf.float32)
    s = _seeds(seed, 2)
    w = tf.floor(_per_clip(b, s[0]) * (width + 1))[:, tf.newaxis]
    room = tf.maximum(tf.cast(n, tf.float32) - w, 1.0)
    start = tf.floor(_per_clip(b, s[1])[:, tf.newaxis] * room)
    idx = tf.cast(tf.range(n), tf.float32)[tf.newaxis]
    return tf.cast(tf.logical_or(idx < start, idx >= start + w), tf.float32)


def token_dropout(ids: tf.Tensor, seed: tf.Tensor, rate: float) -> tf.Tensor:
    """Set each non-pad token to [UNK] (id 1) with probability `rate`."""
    return drop_tokens(ids, token_drops(tf.shape(ids), seed, rate))


def token_drops(shape, seed: tf.Tensor, rate: float) -> tf.Tensor:
    """Which token positions `token_dropout` hits (bool)."""
    return tf.random.stateless_uniform(shape, seed) < rate


def drop_tokens(ids: tf.Tensor, drops: tf.Tensor) -> tf.Tensor:
    """Non-pad ids where `drops` is set become [UNK] (id 1)."""
    return tf.where(drops & (ids > 0), tf.ones_like(ids), ids)

"""Training-time augmentation, seeded and stateless so a seed reproduces a batch.

Video: one random resized crop, flip and colour jitter per clip, applied to all its
frames alike (frames of a clip must stay consistent, or motion turns into noise).
Audio: gain and background noise on the waveform; SpecAugment masks on the log-mel.
Text: token dropout. Temporal jitter happens at decode time (`decode.sample_times`).
"""

from __future__ import annotations

import tensorflow as tf

from vdg_tf.config import AugmentConfig


def _seeds(seed: tf.Tensor, n: int) -> tf.Tensor:
    """n independent stateless seeds [n, 2] split from one seed."""
    return tf.random.experimental.stateless_split(seed, n)


def augment_video(frames: tf.Tensor, seed: tf.Tensor, cfg: AugmentConfig) -> tf.Tensor:
    """frames float [T, S, S, 3] in [0, 1] -> same shape, one transform for every frame."""
    s = _seeds(seed, 8)
    size = tf.shape(frames)[1]
    if cfg.crop_scale < 1.0:
        area = tf.random.stateless_uniform([], s[0], cfg.crop_scale, 1.0)
        side = tf.cast(tf.cast(size, tf.float32) * tf.sqrt(area), tf.int32)
        y = tf.random.stateless_uniform([], s[1], 0, size - side + 1, dtype=tf.int32)
        x = tf.random.stateless_uniform([], s[2], 0, size - side + 1, dtype=tf.int32)
        frames = tf.image.resize(frames[:, y : y + side, x : x + side], tf.stack([size, size]))
    if cfg.flip and tf.random.stateless_uniform([], s[3]) < 0.5:
        frames = tf.reverse(frames, axis=[2])
    if cfg.brightness:
        frames = frames + tf.random.stateless_uniform([], s[4], -cfg.brightness, cfg.brightness)
    if cfg.contrast:
        factor = tf.random.stateless_uniform([], s[5], 1 - cfg.contrast, 1 + cfg.contrast)
        frames = tf.image.adjust_contrast(frames, factor)
    if cfg.saturation:
        factor = tf.random.stateless_uniform([], s[6], 1 - cfg.saturation, 1 + cfg.saturation)
        frames = tf.image.adjust_saturation(frames, factor)
    return tf.clip_by_value(frames, 0.0, 1.0)


def augment_waveform(samples: tf.Tensor, seed: tf.Tensor, cfg: AugmentConfig) -> tf.Tensor:
    """Random gain, then Gaussian noise at `noise_snr_db` (log-mel is peak-relative, so gain
    alone would change nothing; with noise it changes how far the signal stands out)."""
    s = _seeds(seed, 2)
    if cfg.gain_db:
        db = tf.random.stateless_uniform([], s[0], -cfg.gain_db, cfg.gain_db)
        samples = samples * tf.pow(10.0, db / 20.0)
    if cfg.noise_snr_db:
        rms = tf.sqrt(tf.reduce_mean(tf.square(samples)) + 1e-12)
        noise_rms = rms / tf.pow(10.0, cfg.noise_snr_db / 20.0)
        samples = samples + noise_rms * tf.random.stateless_normal(tf.shape(samples), s[1])
    return samples


def spec_augment(mel: tf.Tensor, seed: tf.Tensor, cfg: AugmentConfig) -> tf.Tensor:
    """SpecAugment on log-mel [frames, mels, 1]: one frequency band and one time band zeroed.

    Same masks as `tfio.audio.freq_mask`/`time_mask`, but drawn from stateless seeds: tfio's
    draw from stateful `tf.random.uniform`, which in a parallel map depends on thread timing,
    so a seed could not reproduce a batch.
    """
    keep_t, keep_f = spec_keep(tf.shape(mel)[0], tf.shape(mel)[1], seed, cfg)
    return mel * keep_t[:, tf.newaxis, tf.newaxis] * keep_f[tf.newaxis, :, tf.newaxis]


def spec_keep(frames, mels, seed: tf.Tensor, cfg: AugmentConfig) -> tuple[tf.Tensor, tf.Tensor]:
    """SpecAugment's draw for one clip as keep vectors (1 kept, 0 masked): time [frames],
    frequency [mels]. Drawn per clip before batching, applied to a batch of log-mels."""
    s = _seeds(seed, 2)
    keep_t = _band_keep(frames, s[1], cfg.time_mask)
    keep_f = _band_keep(mels, s[0], cfg.freq_mask)
    return keep_t, keep_f


def _band_keep(n, seed: tf.Tensor, width: int) -> tf.Tensor:
    """[n] float: 0 on a band of up to `width` entries at a random start (what tfio's masks
    zero), 1 elsewhere; all ones when `width` is 0."""
    if not width:
        return tf.ones([n], tf.float32)
    w = tf.random.stateless_uniform([], seed, 0, width + 1, dtype=tf.int32)
    start = tf.random.stateless_uniform([], seed + 1, 0, tf.maximum(n - w, 1), dtype=tf.int32)
    idx = tf.range(n)
    return tf.cast(tf.logical_or(idx < start, idx >= start + w), tf.float32)


def token_dropout(ids: tf.Tensor, seed: tf.Tensor, rate: float) -> tf.Tensor:
    """Set each non-pad token to [UNK] (id 1) with probability `rate`."""
    return drop_tokens(ids, token_drops(tf.shape(ids), seed, rate))


def token_drops(shape, seed: tf.Tensor, rate: float) -> tf.Tensor:
    """Which token positions `token_dropout` hits (bool), drawn per clip before batching."""
    return tf.random.stateless_uniform(shape, seed) < rate


def drop_tokens(ids: tf.Tensor, drops: tf.Tensor) -> tf.Tensor:
    """Non-pad ids where `drops` is set become [UNK] (id 1)."""
    return tf.where(drops & (ids > 0), tf.ones_like(ids), ids)

"""Augmentation: one transform per clip, seeded, in range."""

import dataclasses

import numpy as np
import tensorflow as tf

from vdg_tf.config import AugmentConfig
from vdg_tf.data.augment import (
    augment_video,
    augment_video_batch,
    augment_waveform,
    spec_augment,
    token_dropout,
)

SEED = tf.constant([1, 2], tf.int64)


def test_every_frame_of_a_clip_gets_the_same_transform():
    frame = np.random.default_rng(0).random((32, 32, 3), dtype=np.float32)
    clip = tf.constant(np.stack([frame] * 5))
    out = augment_video(clip, SEED, AugmentConfig(flip=True)).numpy()
    assert out.shape == (5, 32, 32, 3) and out.min() >= 0.0 and out.max() <= 1.0
    for t in range(1, 5):
        np.testing.assert_array_equal(out[t], out[0])
    assert not np.allclose(out[0], frame)


def test_same_seed_same_result_other_seed_other_result():
    clip = tf.random.stateless_uniform([3, 16, 16, 3], [0, 0])
    a = augment_video(clip, SEED, AugmentConfig())
    b = augment_video(clip, SEED, AugmentConfig())
    c = augment_video(clip, SEED + 1, AugmentConfig())
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_spec_augment_zeroes_bands_and_keeps_shape():
    mel = tf.ones([100, 40, 1])
    out = spec_augment(mel, SEED, AugmentConfig(freq_mask=8, time_mask=20)).numpy()[..., 0]
    assert out.shape == (100, 40)
    zero_cols = np.all(out == 0, axis=0).sum()
    zero_rows = np.all(out == 0, axis=1).sum()
    assert zero_cols <= 8 and zero_rows <= 20 and (out == 0).any()


def test_waveform_noise_at_the_asked_snr():
    x = tf.sin(tf.linspace(0.0, 500.0, 16000))
    out = augment_waveform(x, SEED, AugmentConfig(gain_db=0, noise_snr_db=10)).numpy()
    noise = out - x.numpy()
    snr = 10 * np.log10(np.mean(x.numpy() ** 2) / np.mean(noise**2))
    assert abs(snr - 10) < 0.5


def test_token_dropout_keeps_padding():
    ids = tf.constant([[5, 6, 7, 8, 0, 0]] * 50)
    out = token_dropout(ids, SEED, 0.5).numpy()
    assert np.all(out[:, 4:] == 0)
    assert 0.3 < np.mean(out[:, :4] == 1) < 0.7


OFF = AugmentConfig(crop_scale=1.0, flip=False, brightness=0, contrast=0, saturation=0)


def test_a_batch_draws_per_clip_and_keeps_each_clip_consistent():
    frame = np.random.default_rng(1).random((16, 16, 3), dtype=np.float32)
    batch = tf.constant(np.stack([np.stack([frame] * 3)] * 6))  # 6 clips x 3 frames
    out = augment_video_batch(batch, SEED, AugmentConfig(flip=True)).numpy()
    assert out.shape == batch.shape
    for clip in out:
        for t in range(1, 3):
            np.testing.assert_array_equal(clip[t], clip[0])
    assert len({clip[0].tobytes() for clip in out}) == 6  # a draw of its own per clip


def test_flip_alone_mirrors_exactly():
    batch = tf.random.stateless_uniform([8, 2, 12, 12, 3], [3, 4])
    out = augment_video_batch(batch, SEED, dataclasses.replace(OFF, flip=True)).numpy()
    x = batch.numpy()
    flipped = [np.allclose(o, i[:, :, ::-1], atol=1e-5) for o, i in zip(out, x, strict=True)]
    kept = [np.allclose(o, i, atol=1e-5) for o, i in zip(out, x, strict=True)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert any(flipped) and any(kept)


def test_colour_jitter_does_what_its_name_says():
    x = 0.25 + 0.5 * tf.random.stateless_uniform([8, 2, 8, 8, 3], [5, 6])  # no clipping
    bright = augment_video_batch(x, SEED, dataclasses.replace(OFF, brightness=0.2)).numpy()
    shift = (bright - x.numpy()).reshape(8, -1)
    np.testing.assert_allclose(shift, shift[:, :1] * np.ones_like(shift), atol=1e-5)
    assert np.ptp(shift[:, 0]) > 0.01  # one shift per clip, not the same for all
    contrast = augment_video_batch(x, SEED, dataclasses.replace(OFF, contrast=0.4)).numpy()
    np.testing.assert_allclose(contrast.mean(axis=(2, 3)), x.numpy().mean(axis=(2, 3)), atol=1e-5)
    assert not np.allclose(contrast, x)
    grey = tf.tile(x[..., :1], [1, 1, 1, 1, 3])  # grey pixels have no saturation to change
    sat = augment_video_batch(grey, SEED, dataclasses.replace(OFF, saturation=0.5)).numpy()
    np.testing.assert_allclose(sat, grey.numpy(), atol=1e-4)  # grey weights sum to 0.9999
    assert not np.allclose(
        augment_video_batch(x, SEED, dataclasses.replace(OFF, saturation=0.5)), x
    )

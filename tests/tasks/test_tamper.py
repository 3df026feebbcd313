"""One-class anomaly's synthetic outliers: what is altered, and only where it is said to be."""

import numpy as np
import tensorflow as tf

from vdg_tf.tasks.tamper import tamper_audio, tamper_batch, tamper_video


def batch(n=64, seed=0):
    rng = np.random.default_rng(seed)
    text = rng.integers(1, 40, (n, 6)).astype(np.int32)
    text[:, 4:] = 0  # padding
    return {
        "video": tf.constant(rng.random((n, 4, 8, 8, 3), dtype=np.float32)),
        "audio": tf.constant(rng.normal(size=(n, 5, 16, 1)).astype(np.float32)),
        "text": tf.constant(text),
        "video_mask": tf.ones((n, 1)),
        "audio_mask": tf.constant((np.arange(n) % 4 != 0).astype(np.float32)[:, None]),
        "text_mask": tf.ones((n, 1)),
    }


def test_a_tampered_clip_changes_in_the_modality_its_target_names_and_nowhere_else():
    x = batch()
    out, hits = tamper_batch(x, ["video", "audio", "text"], tf.constant([3, 4]), vocab_size=40)
    hit = {m: hits[m].numpy().ravel() > 0 for m in hits}
    assert 0.3 < np.mean(np.any(list(hit.values()), axis=0)) < 0.7  # about half the clips
    assert not np.any(np.sum(list(hit.values()), axis=0) > 1)  # one modality a clip at most
    assert not np.any(hit["audio"] & (x["audio_mask"].numpy().ravel() == 0))  # silent: never
    for m in ("video", "audio", "text"):
        same = np.all((out[m].numpy() == x[m].numpy()).reshape(len(hit[m]), -1), axis=1)
        assert np.all(same[~hit[m]]), m  # untouched where not hit
    text = out["text"].numpy()
    assert np.all(text[:, 4:] == 0) and np.all((text[:, :4] >= 1) & (text[:, :4] < 40))


def test_video_alterations_are_the_listed_ones():
    v = batch(16)["video"]
    out = tamper_video(v, tf.constant([1, 1])).numpy()
    v = v.numpy()
    ways = [
        lambda a: a[::-1],
        lambda a: a[:, :, ::-1],
        lambda a: a[:, ::-1],
        lambda a: np.repeat(a[:1], len(a), 0),
        lambda a: a.transpose(0, 2, 1, 3),
    ]
    for b in range(16):
        assert any(np.array_equal(out[b], w(v[b])) for w in ways), b


def test_audio_is_pitch_shifted_by_an_eighth_to_a_half_of_the_mel_axis():
    mel = batch(16)["audio"]
    out = tamper_audio(mel, tf.constant([5, 6])).numpy()
    for b in range(16):
        shifts = [k for k in range(16) if np.array_equal(np.roll(mel[b], k, axis=1), out[b])]
        assert shifts and (2 <= shifts[0] < 8 or 16 - 8 < shifts[0] <= 16 - 2), shifts

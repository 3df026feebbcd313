"""Synthetic anomalies for one-class training: normal clips with one modality tampered with.

With a single normal label there is nothing to contrast a normal clip with. A classifier
taught to tell real normal clips from copies with one modality altered learns what normal
looks, sounds and reads like (self-supervised anomaly detection from synthetic outliers,
as CutPaste or transformation prediction do for images), and its probability of
"tampered" scores a real clip in one pass, exportable like any head (BENCHMARKS.md
compares it with Deep SVDD).

Alterations, drawn per clip: video played backwards, mirrored, flipped upside down,
transposed or frozen on one frame (motion and layout); the log-mel shifted in pitch;
caption tokens replaced by random ones. A clip without audio or text is not tampered
in that modality.
"""

from __future__ import annotations

import tensorflow as tf

MODALITIES = ("video", "audio", "text")


def _pick(variants: list[tf.Tensor], index: tf.Tensor) -> tf.Tensor:
    """Per clip, the variant `index[b]` of a list of same-shape batches."""
    stacked = tf.stack(variants, axis=1)  # [B, K, ...]
    return tf.gather(stacked, index, axis=1, batch_dims=1)


def tamper_video(video: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """[B, T, H, W, C] -> the same clips altered in motion or layout, one way per clip."""
    variants = [
        tf.reverse(video, [1]),  # played backwards
        tf.reverse(video, [3]),  # mirrored
        tf.reverse(video, [2]),  # upside down
        tf.repeat(video[:, :1], tf.shape(video)[1], axis=1),  # frozen
    ]
    if video.shape[2] is not None and video.shape[2] == video.shape[3]:
        variants.append(tf.transpose(video, [0, 1, 3, 2, 4]))  # rows become columns
    index = tf.random.stateless_uniform(
        [tf.shape(video)[0]], seed, 0, len(variants), dtype=tf.int32
    )
    return _pick(variants, index)


def tamper_audio(mel: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """[B, frames, mels, 1] log-mel -> the same sounds shifted up or down by 1/8 to 1/2 of
    the mel axis (wrapping round), a shift per clip."""
    mels = mel.shape[2]
    lo, hi = max(mels // 8, 1), max(mels // 2, 2)
    s = tf.random.experimental.stateless_split(seed, 2)
    size = tf.random.stateless_uniform([tf.shape(mel)[0]], s[0], lo, hi, tf.int32)
    sign = tf.where(tf.random.stateless_uniform([tf.shape(mel)[0]], s[1]) < 0.5, -1, 1)
    source = (tf.range(mels)[None, :] - (size * sign)[:, None]) % mels  # [B, mels]
    return tf.gather(mel, source, axis=2, batch_dims=1)


def tamper_text(ids: tf.Tensor, seed: tf.Tensor, vocab_size: int) -> tf.Tensor:
    """[B, L] token ids -> every non-padding token replaced by a random one (ids 1..V-1)."""
    random = tf.random.stateless_uniform(tf.shape(ids), seed, 1, vocab_size, ids.dtype)
    return tf.where(ids > 0, random, ids)


def tamper_batch(
    x: dict, modalities: list[str], seed: tf.Tensor, vocab_size: int | None, rate: float = 0.5
) -> tuple[dict, dict]:
    """Tamper with one present modality of a `rate` share of the clips.

    Returns the new inputs and, per modality, a [B, 1] float 1.0 where it was altered.
    """
    usable = [m for m in modalities if m != "text" or vocab_size]
    s = tf.random.experimental.stateless_split(seed, 2 + len(usable))
    batch = tf.shape(x[f"{usable[0]}_mask"])[0]
    altered = tf.random.stateless_uniform([batch], s[0]) < rate
    which = tf.random.stateless_uniform([batch], s[1], 0, len(usable), tf.int32)
    out, hits = dict(x), {}
    for k, m in enumerate(usable):
        present = tf.reshape(x[f"{m}_mask"], [-1]) > 0
        hit = altered & tf.equal(which, k) & present
        if m == "video":
            changed = tamper_video(x["video"], s[2 + k])
        elif m == "audio":
            changed = tamper_audio(x["audio"], s[2 + k])
        else:
            changed = tamper_text(x["text"], s[2 + k], vocab_size)
        shape = [-1] + [1] * (len(x[m].shape) - 1)
        out[m] = tf.where(tf.reshape(hit, shape), changed, x[m])
        hits[m] = tf.cast(hit, tf.float32)[:, None]
    return out, hits

"""The tf.data input pipeline: manifest rows -> parallel PyAV decode -> features -> batches.

Elements are `(inputs, label)` with `inputs` keyed by the model's input names (`video`,
`audio`, `text`, `*_mask`). Bad clips are skipped and logged in a `SkipLog`, or raise in
strict mode; the rest of the epoch goes on.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from vdg_tf.config import DataConfig
from vdg_tf.data.decode import DecodeError, decode_clip
from vdg_tf.data.features import TextTokenizer, log_mel
from vdg_tf.data.manifest import ClipRow

AUTOTUNE = tf.data.AUTOTUNE


@dataclass
class SkipLog:
    """Thread-safe record of skipped clips, one entry per manifest line."""

    skipped: dict[int, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, line: int, reason: str) -> None:
        with self._lock:
            self.skipped.setdefault(line, reason)

    def extend(self, problems: list[str]) -> None:
        for i, p in enumerate(problems):
            self.add(-1 - i, p)

    @property
    def count(self) -> int:
        return len(self.skipped)

    @property
    def reasons(self) -> list[str]:
        return list(self.skipped.values())

    def summary(self, total: int) -> str:
        if not self.skipped:
            return f"skipped 0 of {total} clips"
        shown = "; ".join(self.reasons[:5]) + (" ..." if self.count > 5 else "")
        return f"skipped {self.count} of {total} clips: {shown}"


def _label_ids(rows: list[ClipRow], labels: list[str], skips: SkipLog, strict: bool) -> np.ndarray:
    """Class index per row; -1 (later skipped) for a missing or unknown label."""
    index = {name: i for i, name in enumerate(labels)}
    ids = np.full(len(rows), -1, np.int32)
    for i, row in enumerate(rows):
        if row.label in index:
            ids[i] = index[row.label]
            continue
        known = ", ".join(labels[:8]) + (" ..." if len(labels) > 8 else "")
        msg = (
            f"{row.where}: missing key 'label'"
            if row.label is None
            else f"{row.where}: label '{row.label}' not in labels (known: {known})"
        )
        if strict:
            raise ValueError(msg)
        skips.add(row.line, msg)
    return ids


def _is_ok(d, label, ok):
    return ok


def _drop_ok(d, label, ok):
    return d, label


def make_dataset(
    rows: list[ClipRow],
    cfg: DataConfig,
    labels: list[str],
    tokenizer: TextTokenizer,
    training: bool = False,
    skips: SkipLog | None = None,
) -> tf.data.Dataset:
    """Batched, prefetched dataset of `({video, audio, text, *_mask}, label)`.

    Args:
      rows: validated manifest rows.
      cfg: sizes, batch size, caching and strictness.
      labels: class names; the label is the index into this list.
      tokenizer: turns the caption into `text` ids.
      training: shuffle each epoch.
      skips: collects skipped clips (pass one to report them at the end).
    """
    skips = skips if skips is not None else SkipLog()
    label_ids = _label_ids(rows, labels, skips, cfg.strict)
    vspec, aspec = cfg.video, cfg.audio
    seed = cfg.seed

    def decode(i):
        i = int(i)
        row = rows[i]
        if label_ids[i] >= 0:
            try:
                rng = np.random.default_rng([seed, i]) if training else None
                clip = decode_clip(row.video, vspec, aspec, row.start, row.end, row.audio, rng)
                return clip.frames, clip.audio, np.float32(clip.has_audio), True
            except DecodeError as e:
                if cfg.strict:
                    raise ValueError(f"manifest line {row.line}: {e}") from None
                skips.add(row.line, f"line {row.line}: {e}")
        frames = np.zeros((vspec.frames, vspec.size, vspec.size, 3), np.uint8)
        return frames, np.zeros(aspec.samples, np.float32), np.float32(0), False

    def decode_tf(i, text, label):
        frames, audio, audio_mask, ok = tf.numpy_function(
            decode, [i], [tf.uint8, tf.float32, tf.float32, tf.bool], stateful=False
        )
        frames.set_shape([vspec.frames, vspec.size, vspec.size, 3])
        audio.set_shape([aspec.samples])
        audio_mask.set_shape([])
        ok.set_shape([])
        return (
            {"frames": frames, "samples": audio, "audio_mask": audio_mask, "text": text},
            label,
            ok,
        )

    def features(d, label):
        text_mask = tf.cast(tf.strings.length(tf.strings.strip(d["text"])) > 0, tf.float32)
        inputs = {
            "video": tf.cast(d["frames"], tf.float32) / 255.0,
            "audio": log_mel(d["samples"], aspec) * d["audio_mask"],
            "text": tokenizer(d["text"]),
            "video_mask": tf.ones([1], tf.float32),
            "audio_mask": tf.reshape(d["audio_mask"], [1]),
            "text_mask": tf.reshape(text_mask, [1]),
        }
        return inputs, label

    texts = [r.text for r in rows]
    ds = tf.data.Dataset.from_tensor_slices((np.arange(len(rows)), texts, label_ids))
    ds = ds.map(decode_tf, num_parallel_calls=AUTOTUNE, deterministic=True)
    ds = ds.filter(_is_ok).map(_drop_ok)
    ds = ds.map(features, num_parallel_calls=AUTOTUNE)
    if cfg.cache:
        ds = ds.cache()
    if training:
        ds = ds.shuffle(cfg.shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    return ds.batch(cfg.batch_size).prefetch(AUTOTUNE)

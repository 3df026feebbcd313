"""The tf.data input pipeline: manifest rows -> parallel PyAV decode -> augment -> features -> batches.

Elements are `(inputs, label)` with `inputs` keyed by the model's input names (`video`,
`audio`, `text`, `*_mask`). Bad clips are skipped and logged in a `SkipLog`, or raise in
strict mode; the rest of the epoch goes on. Decoded clips (uint8 frames, waveform) are
what gets cached, so augmentation still differs every epoch.
"""

from __future__ import annotations

import atexit
import gc
import os
import threading
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from vdg_tf.config import AugmentConfig, DataConfig
from vdg_tf.data.augment import (
    augment_video_batch,
    augment_waveform_batch,
    drop_tokens,
    spec_keep,
    token_drops,
)
from vdg_tf.data.features import TextTokenizer, log_mel
from vdg_tf.manifest import ClipRow
from vdg_tf.media.decode import DecodeError, video_duration
from vdg_tf.media.workers import DecodeJob, DecodePool, run_or_error, shared_pool
from vdg_tf.tasks import get_task

AUTOTUNE = tf.data.AUTOTUNE
DECODE_GROUP = 8  # clips per call into the decode worker processes (`decode_grouping`)
_DECODING = threading.Event()  # set once a dataset of this process has decoded a clip


@dataclass
class SkipLog:
    """Thread-safe record of skipped clips, one entry per manifest row, keyed by
    `ClipRow.key` (manifest, line): line 3 of the training and of the evaluation manifest
    are two entries, and a row seen again (a later epoch, another stage) is still one.
    Clips kept although some of their packets failed to decode are counted in `damaged`."""

    skipped: dict[tuple, str] = field(default_factory=dict)
    damaged: dict[tuple, int] = field(default_factory=dict)
    # parts of kept rows left out (detection's bad boxes): one message per part, by key
    parts: dict[tuple, tuple[str, str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, key: tuple, reason: str) -> None:
        with self._lock:
            self.skipped.setdefault(key, reason)

    def extend(self, problems: list[str]) -> None:
        """Problems found before decoding (`read_manifest`'s, a records folder's list);
        each names its manifest and line, so the text itself is the key."""
        for p in problems:
            self.add(("problem", p), p)

    def skip_part(self, key: tuple, reason: str, message: str) -> None:
        """A part of a kept row left out (a bad box), counted by `reason`; `key` names
        the part, so a row read again (another epoch) counts it once."""
        with self._lock:
            self.parts.setdefault(key, (reason, message))

    @property
    def part_reasons(self) -> dict[str, int]:
        """Parts left out, counted by reason."""
        counts: dict[str, int] = {}
        for reason, _ in self.parts.values():
            counts[reason] = counts.get(reason, 0) + 1
        return dict(sorted(counts.items()))

    def kept_damaged(self, key: tuple, bad_packets: int) -> None:
        """A clip used although `bad_packets` of its packets failed (and were skipped)."""
        with self._lock:
            self.damaged[key] = bad_packets

    @property
    def count(self) -> int:
        return len(self.skipped)

    @property
    def damaged_count(self) -> int:
        return len(self.damaged)

    @property
    def reasons(self) -> list[str]:
        return list(self.skipped.values())

    def summary(self, total: int) -> str:
        damaged = ""
        if self.damaged:
            bad = sum(self.damaged.values())
            damaged = f"; kept {self.damaged_count} damaged clips ({bad} bad packets skipped)"
        if not self.skipped:
            return f"skipped 0 of {total} clips{damaged}"
        shown = "; ".join(self.reasons[:5]) + (" ..." if self.count > 5 else "")
        return f"skipped {self.count} of {total} clips{damaged}: {shown}"


def usable_rows(
    rows: list[ClipRow], cfg: DataConfig, labels: list[str], skips: SkipLog, training: bool
) -> list[ClipRow]:
    """Rows that can teach `cfg.task`: bad ones are logged (or raise in strict mode);
    anomaly training keeps only the normal rows."""
    task = get_task(cfg)
    keep = []
    for row in rows:
        problem = task.problem(row, labels)
        if problem is not None:
            if cfg.strict:
                raise ValueError(problem)
            skips.add(row.key, problem)
        elif task.untrimmed:
            keep += _windows_of(row, task, cfg, skips, labels)
        elif not training or task.trains_on(row):
            keep.append(row)
    return keep


def _windows_of(
    row: ClipRow, task, cfg: DataConfig, skips: SkipLog, labels: list[str]
) -> list[ClipRow]:
    """An untrimmed row's labelled windows (`Task.parts`); a video with no duration to cut,
    or too short for one window, is skipped and counted, and so is each part of a row the
    task leaves out (a bad box), by reason; in strict mode each of these raises."""

    def skip(message: str) -> list[ClipRow]:
        if cfg.strict:
            raise ValueError(message)
        skips.add(row.key, message)
        return []

    try:
        duration = video_duration(row.video)
    except DecodeError as e:
        return skip(f"{row.place}: {e}")
    try:
        clips, left_out = task.parts(row, duration, cfg.audio.seconds, labels or None)
    except ValueError as e:  # the row does not fit its video
        return skip(str(e))
    for i, (reason, message) in enumerate(left_out):
        if cfg.strict:
            raise ValueError(message)
        skips.skip_part((*row.key, i), reason, message)
    if not clips:
        return skip(f"{row.place}: no whole {cfg.audio.seconds:g} s window in {duration:.1f} s")
    return clips


def decoded_dataset(
    rows: list[ClipRow],
    cfg: DataConfig,
    labels: list[str],
    training: bool = False,
    skips: SkipLog | None = None,
    shard: tuple[int, int] | None = None,
) -> tf.data.Dataset:
    """Unbatched `(clip, target)`: clip = {frames uint8, samples, audio_mask, text}; bad clips dropped.

    The target follows `cfg.task` (see `vdg_tf.tasks`); `labels` is its vocabulary.
    `shard=(n, i)` keeps every n-th row starting at i (one input worker of n).
    """
    skips = skips if skips is not None else SkipLog()
    rows = usable_rows(rows, cfg, labels, skips, training)
    return checked_dataset(rows, cfg, labels, training, skips, shard)


def checked_dataset(
    rows: list[ClipRow],
    cfg: DataConfig,
    labels: list[str],
    training: bool = False,
    skips: SkipLog | None = None,
    shard: tuple[int, int] | None = None,
) -> tf.data.Dataset:
    """`decoded_dataset` of rows that `usable_rows` has already checked (each row once a run)."""
    task = get_task(cfg)
    targets = task.row_targets(rows, labels)
    if targets is not None:
        return decode_rows(rows, cfg, training, skips, shard, carry=targets)
    encode_target = task.target_encoder(labels, training)
    per_row = [task.names(r) for r in rows]
    names = tf.RaggedTensor.from_row_lengths(
        tf.constant([n for ns in per_row for n in ns], tf.string, shape=[sum(map(len, per_row))]),
        tf.constant([len(ns) for ns in per_row], tf.int64, shape=[len(rows)]),
    )
    values = tf.constant([task.value(r) for r in rows], tf.float32, shape=[len(rows)])
    # every row's target, encoded once up front: a per-clip map after the parallel decode
    # would be a serial stage (it cost 1.3 ms a clip, a fifth of the decode)
    encoded = tf.data.Dataset.from_tensor_slices((names, values)).map(
        encode_target, num_parallel_calls=AUTOTUNE
    )
    targets = next(iter(encoded.batch(max(len(rows), 1)))) if rows else tf.zeros([0], tf.int32)
    return decode_rows(rows, cfg, training, skips, shard, carry=targets)


def decode_rows(
    rows: list[ClipRow],
    cfg: DataConfig,
    training: bool = False,
    skips: SkipLog | None = None,
    shard: tuple[int, int] | None = None,
    carry: tf.Tensor | None = None,
) -> tf.data.Dataset:
    """Unbatched `(clip, row index)` of decoded clips, or `(clip, carry[row])` when a
    per-row tensor is given; clips that fail to decode are dropped.

    Decoding runs in the worker processes, `DECODE_GROUP` clips a call, or in threads
    (`cfg.decoder: threads`), a clip a call: PyAV releases the GIL while FFmpeg decodes.
    """
    skips = skips if skips is not None else SkipLog()
    vspec, aspec, seed = cfg.video, cfg.audio, cfg.seed
    jitter = training and (cfg.augment is not None and cfg.augment.temporal_jitter)
    pool = decode_pool(cfg)

    def job_for(i, epoch_seed) -> tuple[ClipRow, DecodeJob]:
        row = rows[int(i)]
        job = DecodeJob(
            row.video, vspec, aspec, row.start, row.end, row.audio,
            (seed, row.line, int(epoch_seed)) if jitter else None, cfg.max_bad_packet_fraction,
        )  # fmt: skip
        return row, job

    def skipped(row: ClipRow, e: DecodeError):
        """Raise in strict mode; else log the clip and return a placeholder to filter out."""
        if cfg.strict:
            raise ValueError(f"manifest line {row.line}: {e}") from None
        skips.add(row.key, f"{row.place}: {e}")
        frames = np.zeros((vspec.frames, vspec.size, vspec.size, 3), np.uint8)
        return frames, np.zeros(aspec.samples, np.float32), np.float32(0), False

    def decode(i, epoch_seed):
        _DECODING.set()
        row, job = job_for(i, epoch_seed)
        clip = run_or_error(job)
        return skipped(row, clip) if isinstance(clip, DecodeError) else kept(row, clip)

    def kept(row: ClipRow, clip) -> tuple:
        if clip.bad_packets:
            skips.kept_damaged(row.key, clip.bad_packets)
        return _clip_fields(clip)

    def decode_group(index, epoch_seed):
        """A group of clips decoded by one worker, in order."""
        _DECODING.set()
        rows_jobs = [job_for(i, e) for i, e in zip(index, epoch_seed, strict=True)]
        clips = pool.decode_many([job for _, job in rows_jobs], cfg.decode_timeout)
        out = [
            skipped(row, clip) if isinstance(clip, DecodeError) else kept(row, clip)
            for (row, _), clip in zip(rows_jobs, clips, strict=True)
        ]
        frames, samples, mask, ok = zip(*out, strict=True)
        return np.stack(frames), np.stack(samples), np.array(mask), np.array(ok)

    def decode_tf(i, text, extra, epoch_seed):
        grouped = pool is not None
        frames, samples, audio_mask, ok = tf.numpy_function(
            decode_group if grouped else decode,
            [i, epoch_seed],
            [tf.uint8, tf.float32, tf.float32, tf.bool],
            stateful=False,
        )
        _set_clip_shapes(frames, samples, audio_mask, ok, cfg, grouped)
        clip = {"frames": frames, "samples": samples, "audio_mask": audio_mask, "text": text}
        return clip, extra, ok

    ds = _indexed_rows(rows, cfg, training, shard, carry)
    order = ordered(cfg, training)
    if pool is None:
        ds = ds.map(decode_tf, num_parallel_calls=AUTOTUNE, deterministic=order)
    else:
        group, calls = decode_grouping(pool.workers)
        ds = ds.batch(group).map(decode_tf, num_parallel_calls=calls, deterministic=order)
        ds = ds.with_options(_threads_for(calls)).unbatch()
    return ds.filter(_is_ok).map(_drop_ok)


def _set_clip_shapes(frames, samples, audio_mask, ok, cfg: DataConfig, grouped: bool) -> None:
    """The static shapes `tf.numpy_function` loses: a clip's, with a group axis first when
    a worker decodes a group of clips a call."""
    lead = [None] if grouped else []
    frames.set_shape([*lead, cfg.video.frames, cfg.video.size, cfg.video.size, 3])
    samples.set_shape([*lead, cfg.audio.samples])
    audio_mask.set_shape(lead)
    ok.set_shape(lead)


def _indexed_rows(
    rows: list[ClipRow],
    cfg: DataConfig,
    training: bool,
    shard: tuple[int, int] | None,
    carry: tf.Tensor | None,
) -> tf.data.Dataset:
    """`(row index, text, carry[row] or the index, epoch seed)` per row, before decoding:
    sharded first (each worker decodes only its own rows) and shuffled when training."""
    texts = [get_task(cfg).text(r) for r in rows]
    index = np.arange(len(rows))
    ds = tf.data.Dataset.from_tensor_slices(
        (index, tf.constant(texts, tf.string, shape=[len(rows)]), index if carry is None else carry)
    )
    if shard is not None:
        ds = ds.shard(*shard)
    if training and not cfg.cache:
        ds = ds.shuffle(len(rows), seed=cfg.seed, reshuffle_each_iteration=True)
    # a per-epoch number for temporal jitter: a new draw each epoch, the same for a seed
    epoch = tf.data.Dataset.random(seed=cfg.seed, rerandomize_each_iteration=True).map(
        lambda x: x % 100003
    )
    return tf.data.Dataset.zip((ds, epoch)).map(lambda t, e: (*t, e))


def _clip_fields(clip) -> tuple:
    """A decoded clip as the decode stage's outputs: frames, samples, audio mask, ok."""
    return clip.frames, clip.audio, np.float32(clip.has_audio), True


def decode_grouping(workers: int) -> tuple[int, int]:
    """Clips per decode call into the worker processes, and calls in flight.

    A call hands its group to one worker as one message each way (`DecodePool.decode_many`).
    A call and a message per clip wakes a tf.data thread and a reader thread, takes the GIL
    and waits on a future for every clip: 0.45-0.5 ms of the training process's CPU a clip
    spent moving clips, 0.34 ms in groups of 8 (BENCHMARKS.md, "Data pipeline"). Two calls
    per worker: each has a group queued when it finishes one.
    """
    return DECODE_GROUP, 2 * workers


def _threads_for(calls: int) -> tf.data.Options:
    """A tf.data thread for each decode call in flight, plus one per core for the rest.

    A call to a worker process blocks its tf.data thread until the clip is back. With
    tf.data's default pool (a thread per core) only `cores` clips were ever in flight, so
    each worker finished a clip and then waited for its next job: every job found its
    worker idle, and on 2 cores 13% of the machine sat idle (`vdg_tf.bench.decode_cost`).
    """
    options = tf.data.Options()
    options.threading.private_threadpool_size = calls + (os.cpu_count() or 1)
    return options


def ordered(cfg: DataConfig, training: bool) -> bool:
    """Whether parallel stages keep input order: always outside training (predictions line
    up with manifest rows), and in training when `cfg.deterministic` asks for it."""
    return cfg.deterministic or not training


@atexit.register
def release_iterators() -> None:
    """Free every tf.data iterator still open at exit, while Python can still finish the
    decode calls in flight. Left to interpreter teardown, a half-read iterator (say
    `it = iter(ds); next(it)` at the end of a script) waits forever on a decode thread
    that Python has already stopped: the process hangs instead of exiting. Registered
    after TensorFlow's own exit hooks and the decode workers' (so it runs before them).
    Scanning the heap costs ~0.15 s, so a process that never decoded skips it."""
    if not _DECODING.is_set():
        return
    for obj in gc.get_objects():
        if isinstance(obj, tf.data.Iterator):
            obj.__dict__.pop("_iterator_resource", None)  # tf.data has no public close()


def decode_pool(cfg: DataConfig) -> DecodePool | None:
    """The shared worker processes for `cfg.decoder: processes`, None for threads (and on
    Windows, where the workers' pipes cannot be waited on with `select`)."""
    if cfg.decoder == "threads" or os.name == "nt":
        return None
    if cfg.decoder != "processes":
        raise ValueError(f"data.decoder: unknown '{cfg.decoder}' (known: processes, threads)")
    return shared_pool(cfg.decode_workers)


def _is_ok(clip, label, ok):
    return ok


def _drop_ok(clip, label, ok):
    return clip, label


def batched_features(
    ds: tf.data.Dataset,
    cfg: DataConfig,
    tokenizer: TextTokenizer,
    training: bool = False,
    repeat: bool = False,
) -> tf.data.Dataset:
    """Decoded clips -> [fixed features -> cache -> shuffle] -> [repeat] -> batch ->
    [augment] -> model inputs -> prefetch.

    Every stage after decoding runs on batches: a dozen small ops per clip cost more CPU
    than the pixels they touch, CPU the training step needs. With `cfg.cache`, the features
    no augmentation changes (tokens, the text mask, and the log-mel unless the waveform
    itself is augmented) run before the cache, once: a cached epoch only casts, augments
    and masks, and a cached clip keeps its log-mel (32 KB) instead of its waveform (128 KB).

    `repeat`: one endless stream of epochs (read it with `steps_per_epoch`). Each epoch is
    reshuffled and re-augmented, but the stages after the repeat are built once and never
    drain: a new iterator per epoch costs ~0.15 s to build (tfio's STFT and mel matrix,
    the tokenizer) and idles the decoders while it refills.
    """
    aug = cfg.augment if training else None
    early_mel = aug is None or not (aug.gain_db or aug.noise_snr_db)
    order = ordered(cfg, training)
    if cfg.cache:
        ds = ds.batch(cfg.batch_size).map(
            lambda clip, label: (fixed_features(clip, cfg, tokenizer, early_mel), label),
            num_parallel_calls=AUTOTUNE,
            deterministic=order,
        )
        ds = ds.unbatch().cache()
        if training:
            ds = ds.shuffle(cfg.shuffle_buffer, seed=cfg.seed, reshuffle_each_iteration=True)

    def inputs(clip, label, seed=None):
        fixed = clip if cfg.cache else fixed_features(clip, cfg, tokenizer, early_mel)
        return model_inputs(fixed, cfg, aug, seed), label

    if repeat:
        ds = ds.repeat()
    ds = ds.batch(cfg.batch_size)
    if aug is not None:  # one seed a batch, a draw per clip from it
        seeds = tf.data.Dataset.random(seed=cfg.seed + 1, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip((ds, seeds.batch(2))).map(lambda pair, seed: (*pair, seed))
    ds = ds.map(inputs, num_parallel_calls=AUTOTUNE, deterministic=order)
    return ds.prefetch(AUTOTUNE)


def fixed_features(clip: dict, cfg: DataConfig, tokenizer: TextTokenizer, mel: bool) -> dict:
    """A batch of decoded clips -> what no augmentation changes: token ids, text mask and,
    when `mel`, the log-mel in place of the waveform (`model_inputs` masks clips without
    audio)."""
    out = {
        "frames": clip["frames"],
        "audio_mask": clip["audio_mask"],
        "text": tokenizer(clip["text"]),
        "text_mask": tf.cast(tf.strings.length(tf.strings.strip(clip["text"])) > 0, tf.float32),
    }
    if mel:
        out["mel"] = log_mel(clip["samples"], cfg.audio)
    else:
        out["samples"] = clip["samples"]
    return out


def model_inputs(
    batch: dict, cfg: DataConfig, aug: AugmentConfig | None = None, seed: tf.Tensor | None = None
) -> dict:
    """A batch of `fixed_features` -> the model's named inputs, augmented from `seed`
    (a draw per clip) when `aug` is given."""
    video = tf.cast(batch["frames"], tf.float32) / 255.0
    audio_mask = batch["audio_mask"][:, tf.newaxis]
    text = batch["text"]
    s = tf.random.experimental.stateless_split(seed, 4) if aug is not None else None
    if aug is not None:
        video = augment_video_batch(video, s[0], aug)
    if "samples" in batch:
        samples = batch["samples"]
        if aug is not None:
            samples = augment_waveform_batch(samples, s[1], aug)
        audio = log_mel(samples * audio_mask, cfg.audio)
    else:
        audio = batch["mel"]
    if aug is not None:
        shape = tf.shape(audio)
        keep_t, keep_f = spec_keep(shape[0], shape[1], shape[2], s[2], aug)
        audio *= keep_t[:, :, None, None] * keep_f[:, None, :, None]
        text = drop_tokens(text, token_drops(tf.shape(text), s[3], aug.token_dropout))
    return {
        "video": video,
        "audio": audio * audio_mask[:, :, tf.newaxis, tf.newaxis],
        "text": text,
        "video_mask": tf.ones_like(audio_mask),
        "audio_mask": audio_mask,
        "text_mask": batch["text_mask"][:, tf.newaxis],
    }


def make_dataset(
    rows: list[ClipRow],
    cfg: DataConfig,
    labels: list[str],
    tokenizer: TextTokenizer,
    training: bool = False,
    skips: SkipLog | None = None,
    shard: tuple[int, int] | None = None,
    repeat: bool = False,
) -> tf.data.Dataset:
    """Batched, prefetched dataset of `({video, audio, text, *_mask}, label)`.

    Args:
      rows: validated manifest rows.
      cfg: sizes, batch size, caching, augmentation, strictness.
      labels: class names; the label is the index into this list.
      tokenizer: turns the caption into `text` ids.
      training: shuffle each epoch and augment (if `cfg.augment`).
      skips: collects skipped clips (pass one to report them at the end).
      shard: `(num_workers, worker_index)` for distributed input.
      repeat: an endless stream of epochs for training (fit with `steps_per_epoch`).

    Example:
      ds = make_dataset(rows, DataConfig(), labels, TextTokenizer.fit(texts, TextSpec()))
    """
    decoded = decoded_dataset(rows, cfg, labels, training, skips, shard)
    return batched_features(decoded, cfg, tokenizer, training, repeat)

"""`vdg benchmark pipeline`: input throughput measured side by side in one run.

(a) the tf.data pipeline (threads decoding in parallel), (b) a sequential Python loop with
the same decoder and features, (c) the raw decode-only limit: PyAV demuxing and decoding
the same streams on every core with no resize, resampling or features, (d) the same
pipeline fed by a process pool instead of threads. Also: how long a training step of
the demo model waits on input, and resident memory over streamed epochs.
"""

from __future__ import annotations

import os
import resource
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path

import av
import numpy as np
import tensorflow as tf

from vdg_tf._quiet import silence_worker
from vdg_tf.config import Config, DataConfig
from vdg_tf.data.decode import DecodeError, _clip_bounds, decode_clip, sample_times
from vdg_tf.data.features import TextTokenizer, log_mel
from vdg_tf.data.manifest import ClipRow, label_vocabulary, read_manifest
from vdg_tf.data.pipeline import SkipLog, batched_features, decoded_dataset


def _timed(fn) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def _count(ds: tf.data.Dataset) -> int:
    return sum(int(y.shape[0]) for _, y in ds)


def decode_only(row: ClipRow, cfg: DataConfig) -> int:
    """Demux and decode both streams up to the last sampled frame time; no conversion."""
    with av.open(row.video) as c:
        lo, hi = _clip_bounds(c, row.start, row.end)
        last = float(sample_times(lo, hi, cfg.video)[-1])
        streams = [c.streams.video[0], *c.streams.audio[:1]]
        streams[0].thread_type = "AUTO"
        frames = 0
        for packet in c.demux(streams):
            for frame in packet.decode():
                if packet.stream.type == "video":
                    frames += 1
                    if frame.time is not None and frame.time > last:
                        return frames
        return frames


def sequential(rows: list[ClipRow], cfg: DataConfig, tokenizer: TextTokenizer) -> int:
    """The same work as the pipeline, one clip after another in a Python loop; features
    run as one traced graph per clip (eager ops would add ~10 ms a clip and flatter tf.data)."""

    @tf.function
    def features(frames, samples, text):
        return tf.cast(frames, tf.float32) / 255.0, log_mel(samples, cfg.audio), tokenizer(text)

    n = 0
    for row in rows:
        try:
            clip = decode_clip(row.video, cfg.video, cfg.audio, row.start, row.end, row.audio)
        except DecodeError:
            continue
        features(clip.frames, clip.audio, tf.constant(row.text))
        n += 1
    return n


def _proc_decode(args):
    row, cfg = args
    try:
        clip = decode_clip(row.video, cfg.video, cfg.audio, row.start, row.end, row.audio)
        return clip.frames, clip.audio, np.float32(clip.has_audio), row.text
    except DecodeError:
        return None


def process_pool_dataset(
    rows, cfg: DataConfig, labels: list[str], tokenizer, workers: int
) -> tf.data.Dataset:
    """Decoding in worker processes (no GIL at all), fed to tf.data through a generator."""
    index = {name: i for i, name in enumerate(labels)}
    v, a = cfg.video, cfg.audio

    def gen():
        with get_context("spawn").Pool(workers, initializer=silence_worker) as pool:
            for row, out in zip(
                rows, pool.imap(_proc_decode, [(r, cfg) for r in rows], chunksize=4), strict=True
            ):
                if out is not None:
                    frames, samples, mask, text = out
                    clip = {"frames": frames, "samples": samples, "audio_mask": mask, "text": text}
                    yield clip, np.int32(index.get(row.label, 0))

    sig = (
        {
            "frames": tf.TensorSpec([v.frames, v.size, v.size, 3], tf.uint8),
            "samples": tf.TensorSpec([a.samples], tf.float32),
            "audio_mask": tf.TensorSpec([], tf.float32),
            "text": tf.TensorSpec([], tf.string),
        },
        tf.TensorSpec([], tf.int32),
    )
    return batched_features(
        tf.data.Dataset.from_generator(gen, output_signature=sig), cfg, tokenizer
    )


def rss_mb() -> float:
    """Current resident set size in MiB (Linux /proc; falls back to the peak)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def input_wait_fraction(rows, cfg: Config, labels, tokenizer, steps: int = 24) -> dict:
    """Share of a demo-model training step spent waiting on input, with prefetch.

    Times `steps` steps fed by the pipeline against the same steps replayed from memory,
    for `streaming` (decode every epoch) and `cached` (decoded clips kept in memory).
    """
    from vdg_tf.data.features import log_mel_frames
    from vdg_tf.models.builder import build_classifier
    from vdg_tf.training.train import compile_classifier, with_head_targets

    model = build_classifier(cfg, len(labels), tokenizer.vocab_size, log_mel_frames(cfg.data.audio))
    compile_classifier(model, cfg, steps)
    out = {}
    for name, cache in (("streaming", False), ("cached", True)):
        dcfg = replace(cfg.data, cache=cache)
        decoded = decoded_dataset(rows, dcfg, labels, training=True)
        ds = with_head_targets(
            batched_features(decoded, dcfg, tokenizer, True), model.output_names
        ).repeat()
        if cache:  # fill the cache first: the steady state is what a cached run sees
            for _ in ds.take(-(-len(rows) // dcfg.batch_size)):
                pass
        model.fit(ds, steps_per_epoch=2, epochs=1, verbose=0)  # trace once
        fed, _ = _timed(lambda ds=ds: model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0))
        memory = ds.take(steps).cache()
        for _ in memory:
            pass
        ideal, _ = _timed(
            lambda m=memory: model.fit(m.repeat(), steps_per_epoch=steps, epochs=1, verbose=0)
        )
        out[name] = max(0.0, (fed - ideal) / fed)
    return out


def memory_growth(rows, cfg: DataConfig, labels, tokenizer, epochs: int) -> dict:
    """Resident memory after epoch 1 and after `epochs` streamed epochs (no cache)."""
    dcfg = replace(cfg, cache=False)
    ds = batched_features(decoded_dataset(rows, dcfg, labels, training=True), dcfg, tokenizer, True)
    first = last = 0.0
    for e in range(epochs):
        for _ in ds:
            pass
        if e == 0:
            first = rss_mb()
        last = rss_mb()
    return {
        "epochs": epochs,
        "rss_mb_epoch1": first,
        "rss_mb_last": last,
        "growth": last / first - 1,
    }


def run_benchmark(manifest: str | Path, cfg: Config | None = None, clips: int | None = None,
                  memory_epochs: int = 0, wait_steps: int = 24, log=print) -> dict:  # fmt: skip
    """All measurements in one run; ratios are between figures taken here, on this machine."""
    cfg = cfg or Config()
    dcfg = replace(cfg.data, cache=False, augment=None, deterministic=False)
    rows, _ = read_manifest(manifest)
    rows = rows[:clips] if clips else rows
    labels = label_vocabulary(rows)
    tokenizer = TextTokenizer.fit([r.text for r in rows], dcfg.text)
    frames = dcfg.video.frames
    cores = os.cpu_count() or 1
    skips = SkipLog()

    # built and traced before the clock starts (as every epoch after a training run's
    # first sees it); a rebuilt dataset re-traces its map functions, ~1 s here
    pipe_ds = batched_features(decoded_dataset(rows, dcfg, labels, skips=skips), dcfg, tokenizer)
    _count(pipe_ds.take(1))
    sequential(rows[:2], dcfg, tokenizer)  # warm up: imports, kernels
    log(f"pipeline: {len(rows)} clips on {cores} cores")
    t_pipe, n_pipe = _timed(lambda: _count(pipe_ds))
    log("sequential loop")
    t_seq, n_seq = _timed(lambda: sequential(rows, dcfg, tokenizer))
    log("decode-only limit")
    with ThreadPoolExecutor(cores) as pool:
        t_raw, _ = _timed(lambda: list(pool.map(lambda r: decode_only(r, dcfg), rows)))
    log("process-pool decoding")
    t_proc, n_proc = _timed(
        lambda: _count(process_pool_dataset(rows, dcfg, labels, tokenizer, cores))
    )
    result = {
        "clips": len(rows),
        "cores": cores,
        "frames_per_clip": frames,
        "pipeline_clips_per_s": n_pipe / t_pipe,
        "pipeline_frames_per_s": n_pipe * frames / t_pipe,
        "sequential_clips_per_s": n_seq / t_seq,
        "decode_only_clips_per_s": len(rows) / t_raw,
        "decode_only_frames_per_s": len(rows) * frames / t_raw,
        "process_pool_clips_per_s": n_proc / t_proc,
        "skipped": skips.count,
    }
    result["pipeline_vs_sequential"] = (
        result["pipeline_clips_per_s"] / result["sequential_clips_per_s"]
    )
    result["pipeline_vs_decode_only"] = (
        result["pipeline_frames_per_s"] / result["decode_only_frames_per_s"]
    )
    result["threads_vs_processes"] = (
        result["pipeline_clips_per_s"] / result["process_pool_clips_per_s"]
    )
    if wait_steps:
        log("input wait of a training step")
        result["input_wait_fraction"] = input_wait_fraction(
            rows, cfg, labels, tokenizer, wait_steps
        )
    if memory_epochs:
        log(f"memory over {memory_epochs} streamed epochs")
        result["memory"] = memory_growth(
            rows, replace(cfg.data, augment=cfg.data.augment), labels, tokenizer, memory_epochs
        )
    return result

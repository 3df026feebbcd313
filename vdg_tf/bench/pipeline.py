"""`vdg benchmark pipeline`: input throughput measured side by side in one run.

(a) the tf.data pipeline, decoding in threads and in worker processes, read as `vdg
train` reads it (one repeated stream, epoch after epoch) and with a new iterator per
epoch; (b) a sequential Python loop with the same decoder and features; (c) the raw
decode-only limit: PyAV demuxing and decoding the same streams on every core with no
resize, resampling or features (the fastest of one clip per thread, FFmpeg's own
threads, and worker processes fed groups of clips as the pipeline feeds them). Also: how
long a training step of the demo model waits on input, and resident memory over streamed
epochs.
"""

from __future__ import annotations

import os
import resource
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import tensorflow as tf

from vdg_tf.bench.decode_limit import DecodeOnlyJob, decode_only
from vdg_tf.config import Config, DataConfig
from vdg_tf.data.features import TextTokenizer, log_mel
from vdg_tf.data.pipeline import (
    SkipLog,
    batched_features,
    decode_grouping,
    decode_pool,
    decoded_dataset,
)
from vdg_tf.manifest import ClipRow, label_vocabulary, read_manifest
from vdg_tf.media.decode import DecodeError, decode_clip


def _timed(fn) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def _count(ds: tf.data.Dataset) -> int:
    return sum(int(y.shape[0]) for _, y in ds)


def clip_features(cfg: DataConfig, tokenizer: TextTokenizer):
    """The pipeline's features for one clip as one traced graph (eager ops would add ~10 ms
    a clip and flatter tf.data). Build it once: each new tf.function traces again (~1 s)."""

    @tf.function
    def features(frames, samples, text):
        return tf.cast(frames, tf.float32) / 255.0, log_mel(samples, cfg.audio), tokenizer(text)

    return features


def sequential(rows: list[ClipRow], cfg: DataConfig, features, threads: int = 1) -> int:
    """The same work as the pipeline, one clip after another in a Python loop.

    `threads=1` is the pipeline's own decoder setting; 0 lets FFmpeg decode each clip
    with a thread per core, the best a sequential loop can do.
    """
    n = 0
    for row in rows:
        try:
            clip = decode_clip(
                row.video, cfg.video, cfg.audio, row.start, row.end, row.audio, threads=threads
            )
        except DecodeError:
            continue
        features(clip.frames, clip.audio, tf.constant(row.text))
        n += 1
    return n


def _decode_all(rows: list[ClipRow], decode, workers: int, group: int = 0) -> int:
    """`decode(row)` over every clip from `workers` threads, or `decode(rows)` over groups
    of `group` rows; returns the number of clips."""
    items = [rows[i : i + group] for i in range(0, len(rows), group)] if group else rows
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(decode, items))
    return len(rows)


def _epoch_of(it, steps: int) -> int:
    """Clips in the next `steps` batches of the iterator `it` (one epoch of a stream)."""
    return sum(int(next(it)[1].shape[0]) for _ in range(steps))


def _rates(runs: dict[str, callable], repeats: int) -> dict[str, list[float]]:
    """Clips per second of each run (each returns its own) over `repeats` passes, the runs
    interleaved so that a slow spell of the machine hits every one alike."""
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            rates[name].append(fn())
    return rates


def _per_s(fn) -> callable:
    """A run for `_rates` that times `fn()`, which returns the clips it went through."""

    def run() -> float:
        t, n = _timed(fn)
        return n / t

    return run


def _stream_pass(ds: tf.data.Dataset, steps: int) -> float:
    """Clips per second of the second epoch of a fresh repeated stream (the first builds
    and fills it), as `vdg train` reads epoch after epoch. The stream is then closed and
    the machine let settle: one kept open between passes went on filling its buffers
    (autotuned to a whole epoch) while the other runs were timed."""
    it = iter(ds)
    _epoch_of(it, steps)
    start = time.perf_counter()
    n = _epoch_of(it, steps)
    rate = n / (time.perf_counter() - start)
    del it  # waits for the decode calls in flight
    _settle()
    return rate


def _settle(idle: float = 0.2, most_s: float = 3.0) -> None:
    """Wait (at most `most_s`) until the machine is mostly idle for 0.1 s (Linux /proc;
    elsewhere a plain 0.5 s)."""
    if not Path("/proc/stat").exists():
        time.sleep(0.5)
        return
    end = time.monotonic() + most_s
    while time.monotonic() < end:
        busy0, all0 = machine_ticks()
        time.sleep(0.1)
        busy1, all1 = machine_ticks()
        if (busy1 - busy0) <= idle * max(all1 - all0, 1):
            return


def machine_ticks() -> tuple[int, int]:
    """Busy and total CPU ticks of the whole machine so far (Linux /proc/stat)."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(ticks) - ticks[3] - ticks[4], sum(ticks)


def rss_mb(pid: int | str = "self") -> float:
    """Resident set size of a process in MiB (Linux /proc; falls back to our peak)."""
    try:
        pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 if pid == "self" else 0.0


def _timed_steps(step, batches, steps: int) -> tuple[float, float]:
    """Wall seconds of `steps` training steps on batches from the iterator `batches`, and
    of the time the loop spent blocked waiting for the next batch."""
    wait = 0.0
    t = time.perf_counter()
    for _ in range(steps):
        t0 = time.perf_counter()
        x, y = next(batches)
        wait += time.perf_counter() - t0
        step(x, y)
    return time.perf_counter() - t, wait


def input_wait_fraction(rows, cfg: Config, labels, tokenizer, steps: int = 24,
                        repeats: int = 3) -> dict:  # fmt: skip
    """How a training step of the demo model fares fed by the pipeline, with prefetch.

    `NAME`: the share of the time the training loop is blocked waiting for the next
    batch. `NAME_slowdown`: how much longer the same steps take than when replayed from
    memory (passes interleaved, medians of `repeats`): the pipeline's CPU taken from the
    step, on a machine where the step uses every core. Streaming decodes every epoch
    (in threads and in worker processes); `cached` keeps decoded clips in memory, as
    `data.cache: true` does after the first epoch. Training augmentation is on.
    """
    from vdg_tf.data.features import log_mel_frames
    from vdg_tf.models.builder import build_classifier
    from vdg_tf.training.trainer import compile_classifier, with_head_targets

    model = build_classifier(cfg, len(labels), tokenizer.vocab_size, log_mel_frames(cfg.data.audio))
    compile_classifier(model, cfg, steps)
    step = tf.function(lambda x, y: model.train_step((x, y)), reduce_retracing=True)
    out, all_ideal = {}, []
    runs = (
        ("streaming_threads", False, "threads"),
        ("streaming_processes", False, "processes"),
        ("cached", True, cfg.data.decoder),
    )
    for name, cache, decoder in runs:
        dcfg = replace(cfg.data, cache=cache, decoder=decoder)
        decoded = decoded_dataset(rows, dcfg, labels, training=True)
        stream = batched_features(decoded, dcfg, tokenizer, True, repeat=True)  # as vdg train
        it = iter(with_head_targets(stream, model.output_names))
        if cache:  # fill the cache first: the steady state is what a cached run sees
            for _ in range(-(-len(rows) // dcfg.batch_size)):
                next(it)
        memory = [next(it) for _ in range(steps)]
        _timed_steps(step, iter(memory), 2)  # trace once
        fed, waits, ideal = [], [], []
        for _ in range(repeats):
            seconds, waited = _timed_steps(step, it, steps)
            fed.append(seconds)
            waits.append(waited / seconds)
            ideal.append(_timed_steps(step, iter(memory), steps)[0])
        fed_s, ideal_s = float(np.median(fed)), float(np.median(ideal))
        all_ideal += ideal
        out[name] = float(np.median(waits))
        out[f"{name}_slowdown"] = max(0.0, (fed_s - ideal_s) / fed_s)
        out[f"{name}_step_ms"] = 1000 * fed_s / steps
    out["step_ms_from_memory"] = 1000 * float(np.median(all_ideal)) / steps
    return out


def memory_growth(rows, cfg: DataConfig, labels, tokenizer, epochs: int) -> dict:
    """Resident memory (this process plus decode workers) after epoch 1 and after `epochs`
    streamed epochs (no cache), with a figure per epoch to tell growth from noise."""
    dcfg = replace(cfg, cache=False)
    ds = batched_features(decoded_dataset(rows, dcfg, labels, training=True), dcfg, tokenizer, True)
    pool = decode_pool(dcfg)
    per_epoch, workers = [], []
    for _ in range(epochs):
        for _ in ds:
            pass
        workers.append(sum(rss_mb(pid) for pid in (pool.pids() if pool else [])))
        per_epoch.append(rss_mb() + workers[-1])
    return {
        "epochs": epochs,
        "decoder": dcfg.decoder,
        "rss_mb_epoch1": per_epoch[0],
        "rss_mb_last": per_epoch[-1],
        "growth": per_epoch[-1] / per_epoch[0] - 1,
        "rss_mb_per_epoch": [round(m, 1) for m in per_epoch],
        "workers_rss_mb_per_epoch": [round(m, 1) for m in workers],
    }


def machine_ms_per_clip(pipeline: float, limit: float, cores: int) -> dict[str, float]:
    """Machine time a clip (wall time x cores) of the limit and the pipeline, and what
    the pipeline adds. The clip's own decoding cost cancels out of `overhead`, so it
    tells what the pipeline costs on any footage, where the ratio to the limit depends
    on how much decoding a clip costs (small, short clips decode in a few ms)."""
    ms = {"decode_only": 1000.0 * cores / limit, "pipeline": 1000.0 * cores / pipeline}
    return ms | {"overhead": ms["pipeline"] - ms["decode_only"]}


@dataclass(frozen=True)
class _Inputs:
    """The clips to measure and what the pipeline needs to turn them into batches."""

    rows: list[ClipRow]
    dcfg: DataConfig
    labels: list[str]
    tokenizer: TextTokenizer


def _read_inputs(manifest: str | Path, cfg: Config, clips: int | None) -> _Inputs:
    """The first `clips` rows of the manifest, their labels and a tokenizer fitted on them;
    the data settings of the throughput passes: no cache, no augmentation, any order."""
    dcfg = replace(cfg.data, cache=False, augment=None, deterministic=False)
    rows, _ = read_manifest(manifest)
    rows = rows[:clips] if clips else rows
    labels = label_vocabulary(rows)
    tokenizer = TextTokenizer.fit([r.text for r in rows], dcfg.text)
    return _Inputs(rows, dcfg, labels, tokenizer)


def _warm_pipelines(data: _Inputs, skips: SkipLog) -> tuple[dict, dict]:
    """Each decoder's pipeline (a new iterator per epoch) and repeated stream, built and traced
    before the clock starts, as later epochs of training see them (a rebuilt dataset re-traces,
    ~1 s); the worker processes start here too, living as long as the training process."""
    pipes, streams = {}, {}
    for decoder in ("threads", "processes"):
        c = replace(data.dcfg, decoder=decoder)
        # training order (no augmentation: the sequential loop computes the same features)
        decoded = decoded_dataset(
            data.rows, c, data.labels, training=True, skips=skips if decoder == "threads" else None
        )
        pipes[decoder] = batched_features(decoded, c, data.tokenizer, training=True)
        streams[decoder] = batched_features(decoded, c, data.tokenizer, training=True, repeat=True)
        _count(pipes[decoder].take(1))
    return pipes, streams


def _throughput_runs(data: _Inputs, pipes: dict, streams: dict, features,
                     cores: int) -> dict[str, callable]:  # fmt: skip
    """Every throughput pass for `_rates`, by name: the pipelines (streamed and with a new
    iterator per epoch), the sequential loop and the decode-only limit in three settings."""
    rows, dcfg = data.rows, data.dcfg
    steps = -(-len(rows) // dcfg.batch_size)
    processes = decode_pool(replace(dcfg, decoder="processes"))
    group, calls = decode_grouping(processes.workers)
    return {
        "threads": lambda: _stream_pass(streams["threads"], steps),
        "processes": lambda: _stream_pass(streams["processes"], steps),
        "threads_new_iterator": _per_s(lambda: _count(pipes["threads"])),
        "processes_new_iterator": _per_s(lambda: _count(pipes["processes"])),
        "sequential": _per_s(lambda: sequential(rows, dcfg, features, threads=1)),
        "sequential_ffmpeg_threads": _per_s(lambda: sequential(rows, dcfg, features, threads=0)),
        "decode_only": _per_s(lambda: _decode_all(rows, lambda r: decode_only(r, dcfg, 1), cores)),
        "decode_only_ffmpeg_threads": _per_s(
            lambda: _decode_all(rows, lambda r: decode_only(r, dcfg, 0), cores)
        ),
        "decode_only_processes": _per_s(  # grouped and queued as the pipeline's
            lambda: _decode_all(
                rows,
                lambda g: processes.decode_many([DecodeOnlyJob(r, dcfg) for r in g]),
                calls,
                group,
            )
        ),
    }


def _throughput_result(passes: dict[str, list[float]], data: _Inputs, cores: int, repeats: int,
                       skipped: int) -> dict:  # fmt: skip
    """The benchmark's throughput figures from every pass: medians, the faster decoder as
    the pipeline's, the fastest decode-only setting as the limit, and the ratios between."""
    frames = data.dcfg.video.frames
    rate = {name: float(np.median(r)) for name, r in passes.items()}
    best = max(("threads", "processes"), key=rate.get)
    settings = {
        "one_thread_per_clip": rate["decode_only"],
        "ffmpeg_threads_per_clip": rate["decode_only_ffmpeg_threads"],
        "worker_processes": rate["decode_only_processes"],
    }
    limit = max(settings.values())
    return {
        "clips": len(data.rows),
        "cores": cores,
        "frames_per_clip": frames,
        "repeats": repeats,
        "decoder": best,
        "pipeline_clips_per_s": rate[best],
        "pipeline_frames_per_s": rate[best] * frames,
        "threads_clips_per_s": rate["threads"],
        "processes_clips_per_s": rate["processes"],
        "threads_new_iterator_clips_per_s": rate["threads_new_iterator"],
        "processes_new_iterator_clips_per_s": rate["processes_new_iterator"],
        "sequential_clips_per_s": rate["sequential"],
        "sequential_ffmpeg_threads_clips_per_s": rate["sequential_ffmpeg_threads"],
        "decode_only_clips_per_s": limit,
        "decode_only_frames_per_s": limit * frames,
        "decode_only_by_setting": settings,
        "skipped": skipped,
        "passes_clips_per_s": {name: [round(x, 1) for x in r] for name, r in passes.items()},
        "pipeline_vs_sequential": rate[best] / rate["sequential"],
        "pipeline_vs_decode_only": rate[best] / limit,
        "processes_vs_threads": rate["processes"] / rate["threads"],
        "machine_ms_per_clip": machine_ms_per_clip(rate[best], limit, cores),
    }


def run_benchmark(manifest: str | Path, cfg: Config | None = None, clips: int | None = None,
                  memory_epochs: int = 0, wait_steps: int = 24, repeats: int = 3,
                  log=print) -> dict:  # fmt: skip
    """All measurements in one run; ratios are between figures taken here, on this machine.

    Each throughput is the median of `repeats` passes over the clips, every kind of pass
    interleaved with the others (so that a slow spell of the machine hits every one
    alike); a pipeline's pass is the second epoch of a repeated stream (`_stream_pass`).
    """
    cfg = cfg or Config()
    data = _read_inputs(manifest, cfg, clips)
    cores = os.cpu_count() or 1
    skips = SkipLog()
    pipes, streams = _warm_pipelines(data, skips)
    features = clip_features(data.dcfg, data.tokenizer)
    sequential(data.rows[:2], data.dcfg, features)  # warm up: trace, kernels
    log(f"{len(data.rows)} clips on {cores} cores, median of {repeats} passes")
    passes = _rates(_throughput_runs(data, pipes, streams, features, cores), repeats)
    result = _throughput_result(passes, data, cores, repeats, skips.count)
    rows, labels, tokenizer = data.rows, data.labels, data.tokenizer
    if memory_epochs:
        log(f"memory over {memory_epochs} streamed epochs")
        result["memory"] = memory_growth(  # with training's augmentation, unlike the passes
            rows, replace(cfg.data, augment=cfg.data.augment), labels, tokenizer, memory_epochs
        )
    if wait_steps:
        log("input wait of a training step")
        result["input_wait_fraction"] = input_wait_fraction(
            rows, cfg, labels, tokenizer, wait_steps, repeats
        )
    return result


def format_benchmark(r: dict) -> str:
    """A summary in words (how the pipeline compares with a plain loop and with decoding
    alone), then the figures behind it."""
    limit = r["pipeline_vs_decode_only"]
    bound = (
        "decoding is the limit: keep data.cache on or decode once with vdg preprocess"
        if limit >= 0.8
        else "the pipeline adds work beyond decoding (see the machine time a clip below)"
    )
    lines = [
        f"the tf.data pipeline streams {r['pipeline_clips_per_s']:.0f} clips/s on "
        f"{r['cores']} cores: {r['pipeline_vs_sequential']:.1f}x a plain Python loop, "
        f"{limit:.0%} of bare decoding's speed; {bound}",
    ]
    if "input_wait_fraction" in r:
        w = r["input_wait_fraction"]
        lines.append(
            f"training waits for input {w['cached']:.0%} of each step from the cache, "
            f"{w['streaming_processes']:.0%} while streaming"
        )
    lines += [
        "",
        f"clips {r['clips']} x {r['frames_per_clip']} frames, {r['cores']} cores",
        f"  tf.data pipeline      {r['pipeline_clips_per_s']:8.1f} clips/s  {r['pipeline_frames_per_s']:8.1f} frames/s  (decoding in {r['decoder']})",
        f"    threads             {r['threads_clips_per_s']:8.1f} clips/s",
        f"    worker processes    {r['processes_clips_per_s']:8.1f} clips/s  -> {r['processes_vs_threads']:.2f}x threads",
        f"    new iterator/epoch  {r['processes_new_iterator_clips_per_s']:8.1f} clips/s  (processes; threads {r['threads_new_iterator_clips_per_s']:.1f})",
        f"  sequential loop       {r['sequential_clips_per_s']:8.1f} clips/s  -> pipeline is {r['pipeline_vs_sequential']:.2f}x",
        f"    with FFmpeg threads {r['sequential_ffmpeg_threads_clips_per_s']:8.1f} clips/s",
        f"  decode-only limit     {r['decode_only_clips_per_s']:8.1f} clips/s  {r['decode_only_frames_per_s']:8.1f} frames/s -> pipeline at {r['pipeline_vs_decode_only']:.2f}x",
        "    machine time a clip limit {decode_only:.1f} ms, pipeline {pipeline:.1f} ms: the pipeline adds {overhead:.1f} ms".format(
            **r["machine_ms_per_clip"]
        ),
    ]
    if "input_wait_fraction" in r:
        w = r["input_wait_fraction"]
        lines += [
            f"  input wait per step   cached {w['cached']:.1%}, streaming {w['streaming_processes']:.1%} (processes), {w['streaming_threads']:.1%} (threads)",
            f"    step slower than from memory: cached {w['cached_slowdown']:.1%}, streaming {w['streaming_processes_slowdown']:.1%} (processes), {w['streaming_threads_slowdown']:.1%} (threads)",
        ]
    if "memory" in r:
        m = r["memory"]
        lines.append(
            f"  memory                {m['rss_mb_epoch1']:.0f} MiB after epoch 1, {m['rss_mb_last']:.0f} MiB after {m['epochs']} ({m['growth']:+.1%})"
        )
    return "\n".join(lines)

"""Where a clip's CPU goes: bare decode vs our decoder, and worker vs training process.

    vdg benchmark decode data/manifest_train.jsonl [--json]
    python -m vdg_tf.bench.decode_cost data/manifest_train.jsonl [--json]   # the same
    python tools/decode_cost.py data/manifest_train.jsonl [--json]          # the same

Prints CPU milliseconds per clip (process time, one thread, median of `--repeats` passes)
for the bare decode (`decode_only`), `decode_clip` with and without frame skipping, and
the frames the decoder outputs per clip with and without skipping; then, streaming the
training pipeline (worker processes, one repeated stream), the CPU per clip of the decode
workers and of the training process, and how busy the whole machine was (Linux /proc).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from vdg_tf._quiet import import_tensorflow_quietly
from vdg_tf.bench.decode_limit import decode_only
from vdg_tf.config import Config, DataConfig
from vdg_tf.manifest import ClipRow, label_vocabulary, read_manifest
from vdg_tf.media.decode import decode_clip
from vdg_tf.media.heap import pool_tensorflow_memory


def cpu_ms_per_clip(rows: list[ClipRow], fn, repeats: int) -> float:
    """Median over `repeats` passes of this process's CPU time per clip for `fn(row)`."""
    fn(rows[0])  # warm up
    passes = []
    for _ in range(repeats):
        t = time.process_time()
        for row in rows:
            fn(row)
        passes.append((time.process_time() - t) / len(rows) * 1e3)
    return float(np.median(passes))


def _proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def streaming_split(rows: list[ClipRow], cfg: DataConfig, batches: int) -> dict:
    """CPU per clip in the decode workers and in this process while streaming."""
    from vdg_tf.bench.pipeline import machine_ticks
    from vdg_tf.data.features import TextTokenizer
    from vdg_tf.data.pipeline import batched_features, decode_pool, decoded_dataset

    cfg = replace(cfg, cache=False, augment=None, decoder="processes")
    labels = label_vocabulary(rows)
    tokenizer = TextTokenizer.fit([r.text for r in rows], cfg.text)
    decoded = decoded_dataset(rows, cfg, labels, training=True)
    it = iter(batched_features(decoded, cfg, tokenizer, training=True, repeat=True))
    for _ in range(-(-len(rows) // cfg.batch_size)):  # one epoch to build and fill
        next(it)
    pids = decode_pool(cfg).pids()
    workers0, main0 = [_proc_cpu_s(p) for p in pids], _proc_cpu_s(os.getpid())
    busy0, all0 = machine_ticks()
    t = time.perf_counter()
    clips = sum(int(next(it)[1].shape[0]) for _ in range(batches))
    wall = time.perf_counter() - t
    busy1, all1 = machine_ticks()
    workers = sum(_proc_cpu_s(p) - c for p, c in zip(pids, workers0, strict=True))
    main = _proc_cpu_s(os.getpid()) - main0
    return {
        "clips_per_s": clips / wall,
        "worker_ms_per_clip": workers / clips * 1e3,
        "training_process_ms_per_clip": main / clips * 1e3,
        "machine_busy": (busy1 - busy0) / max(all1 - all0, 1),
    }


def measure_decode_cost(
    manifest: str | Path, *, clips: int = 120, repeats: int = 3, batches: int = 60
) -> dict:
    """The CPU split of decoding `manifest`'s clips (module doc): one-thread figures on the
    first `clips` clips (median of `repeats` passes), then `batches` streamed batches."""
    pool_tensorflow_memory()  # the training process as `vdg train` runs it
    import_tensorflow_quietly()
    cfg = Config().data
    rows, _ = read_manifest(manifest)
    few = rows[:clips]

    def clip(skip: bool):
        return lambda r: decode_clip(
            r.video, cfg.video, cfg.audio, r.start, r.end, r.audio, threads=1, skip_unneeded=skip
        )

    return {
        "clips": len(few),
        "repeats": repeats,
        "bare_decode_ms": cpu_ms_per_clip(few, lambda r: decode_only(r, cfg, 1), repeats),
        "decode_clip_no_skip_ms": cpu_ms_per_clip(few, clip(False), repeats),
        "decode_clip_ms": cpu_ms_per_clip(few, clip(True), repeats),
        # frame counts do not depend on threads: 0 decodes every frame, 1 skips
        "frames_decoded_no_skip": float(np.mean([decode_only(r, cfg, 0) for r in few])),
        "frames_decoded": float(np.mean([decode_only(r, cfg, 1) for r in few])),
        "streaming": streaming_split(rows, cfg, batches),
    }


def format_decode_cost(r: dict) -> str:
    """The table a person reads of `measure_decode_cost`'s result."""
    s = r["streaming"]
    return "\n".join(
        [
            f"{r['clips']} clips, CPU ms per clip (one thread, median of {r['repeats']})",
            f"  bare decode (decode_only, skipping)   {r['bare_decode_ms']:6.2f}",
            f"  decode_clip without frame skipping    {r['decode_clip_no_skip_ms']:6.2f}",
            f"  decode_clip                           {r['decode_clip_ms']:6.2f}",
            f"  frames out of the decoder per clip    {r['frames_decoded']:.1f} "
            f"(without skipping {r['frames_decoded_no_skip']:.1f})",
            f"streaming, worker processes: {s['clips_per_s']:.0f} clips/s",
            f"  decode workers                        {s['worker_ms_per_clip']:6.2f}",
            f"  training process                      {s['training_process_ms_per_clip']:6.2f}",
            f"  machine busy                          {s['machine_busy']:6.0%}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    """`python -m vdg_tf.bench.decode_cost ARGS` is `vdg benchmark decode ARGS`."""
    from vdg_tf.cli import main as vdg

    return vdg(["benchmark", "decode", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())

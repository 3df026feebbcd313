"""`vdg benchmark service`: training input throughput with 0, 1, 2, ... tf.data service workers.

Side by side in one run, on the same `vdg preprocess` shards and config: the training
stream built in this process (0 workers: the pipeline `vdg train` runs without
`data.service`), then the same pipeline sent to a dispatcher with N workers. The servers
run in this process, on free ports (their gRPC traffic is real; their threads share this
machine's cores with the reader, as local service workers do). The first batch of each
stream is timed apart: it holds the job's start-up.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import tensorflow as tf

from vdg_tf.config import Config
from vdg_tf.data.features import TextTokenizer
from vdg_tf.data.records import read_index
from vdg_tf.data.service import service_stream, worker_pipeline
from vdg_tf.results import Result


@dataclass
class ServiceBenchmark(Result):
    """Clips a second read from the training stream per number of service workers."""

    data: str
    batches: int
    batch_size: int
    rows: list[dict] = field(default_factory=list)  # {workers, clips_per_s, first_batch_s, ratio}

    def format(self) -> str:
        lines = [f"training input from {self.data}: {self.batches} batches of "
                 f"{self.batch_size} after the first", "  workers  clips/s  x local  first batch s"]  # fmt: skip
        for r in self.rows:
            lines.append(f"  {r['workers']:>7}  {r['clips_per_s']:>7.1f}  {r['ratio']:>7.2f}  "
                         f"{r['first_batch_s']:>13.2f}")  # fmt: skip
        return "\n".join(lines)


def _timed_stream(ds: tf.data.Dataset, batches: int) -> tuple[float, float, int]:
    """(first batch seconds, seconds for the next `batches`, clips in them)."""
    it = iter(ds)
    t = time.perf_counter()
    next(it)
    first = time.perf_counter() - t
    clips = 0
    t = time.perf_counter()
    for _ in range(batches):
        _, labels = next(it)
        clips += int(labels.shape[0])
    return first, time.perf_counter() - t, clips


def _measure(folder, cfg, labels, tokenizer, workers: int, batches: int):
    if workers == 0:
        return _timed_stream(worker_pipeline(folder, cfg, labels, tokenizer), batches)
    service = tf.data.experimental.service
    dispatcher = service.DispatchServer(service.DispatcherConfig(port=0))
    address = dispatcher.target.split("://")[1]
    servers = [
        service.WorkerServer(service.WorkerConfig(dispatcher_address=address, port=0))
        for _ in range(workers)
    ]
    try:
        cfg = dataclasses.replace(cfg, service=dispatcher.target)
        return _timed_stream(service_stream(folder, cfg, labels, tokenizer), batches)
    finally:
        for s in servers:
            s.stop()
        dispatcher.stop()


def run_service_benchmark(
    data: str | Path,
    config: Config | None = None,
    workers: tuple[int, ...] = (0, 1, 2),
    batches: int = 40,
    log=None,
) -> ServiceBenchmark:
    """Measure the training stream of `data` (a `vdg preprocess` folder) with each number
    of local service workers in `workers` (0: no service)."""
    cfg = (config or Config()).data
    index = read_index(data, cfg)
    tokenizer = TextTokenizer.fit(index["texts"], cfg.text)
    result = ServiceBenchmark(str(data), batches, cfg.batch_size)
    for n in workers:
        if log:
            log(f"{n} service workers: {batches} batches")
        first, seconds, clips = _measure(data, cfg, index["labels"], tokenizer, n, batches)
        result.rows.append({"workers": n, "clips_per_s": clips / seconds, "first_batch_s": first})
    base = result.rows[0]["clips_per_s"]
    for r in result.rows:
        r["ratio"] = r["clips_per_s"] / base
    return result

"""`vdg benchmark workers`: training speed of one process against a local multi-worker cluster.

One run trains the same data and config twice on this machine: one process
(`train.strategy: default`, batch `data.batch_size`), then N `vdg train` worker processes
on 127.0.0.1 (`train.strategy: multi_worker`, each with its `TF_CONFIG`, per-replica batch
`data.batch_size`, so the global batch is N times larger). Speed is clips trained per
second over the epochs after the first (the first decodes, later ones read the cache),
from each run's `metrics.json` (`epoch_seconds`). On one host the workers share its
cores, so this measures the cost of the collectives, not a cluster's speed-up.

`LocalCluster` is also what the tests start workers with: free ports, one process per
worker, each killed when the block ends, whatever happened.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vdg_tf.config import Config
from vdg_tf.results import Result


def free_ports(n: int) -> list[int]:
    """`n` distinct TCP ports free on 127.0.0.1 now (held open together while chosen)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def tf_config(ports: Sequence[int], index: int) -> str:
    """The `TF_CONFIG` of worker `index` in a cluster of `127.0.0.1:port` workers."""
    workers = [f"127.0.0.1:{p}" for p in ports]
    return json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})


@dataclass
class LocalCluster:
    """`vdg` worker processes on 127.0.0.1, one per port, logs in `logs/worker{i}.{out,err}`."""

    ports: list[int]
    logs: Path
    env: dict = field(default_factory=dict)  # extra environment for every worker
    procs: dict[int, subprocess.Popen] = field(default_factory=dict)

    def start(self, index: int, args: Sequence[str], env: dict | None = None) -> None:
        """Start worker `index` running `vdg ARGS` (a restarted worker reuses its port)."""
        self.logs.mkdir(parents=True, exist_ok=True)
        environ = {**os.environ, **self.env, **(env or {})}
        environ["TF_CONFIG"] = tf_config(self.ports, index)
        with open(self.out_path(index), "w") as out, open(self.err_path(index), "w") as err:
            self.procs[index] = subprocess.Popen(
                [sys.executable, "-m", "vdg_tf.cli", *map(str, args)],
                stdout=out, stderr=err, env=environ,
            )  # fmt: skip

    def start_all(self, args: Sequence[str]) -> None:
        for i in range(len(self.ports)):
            self.start(i, args)

    def out_path(self, index: int) -> Path:
        return self.logs / f"worker{index}.out"

    def err_path(self, index: int) -> Path:
        return self.logs / f"worker{index}.err"

    def wait(self, timeout: float) -> dict[int, int]:
        """Exit codes once every worker has ended; any still running at `timeout` seconds
        (a bound for a hung cluster) is killed and reported as -9."""
        deadline = time.monotonic() + timeout
        codes = {}
        for i, p in self.procs.items():
            try:
                codes[i] = p.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                codes[i] = p.wait()
        return codes

    def kill(self, index: int) -> None:
        p = self.procs[index]
        if p.poll() is None:
            p.kill()
        p.wait()

    def result(self, index: int) -> dict:
        """Worker `index`'s `--json` output (a one-line error names its stderr)."""
        text = self.out_path(index).read_text().strip()
        if not text:
            err = self.err_path(index).read_text().strip().splitlines()
            raise RuntimeError(f"worker {index} printed no result: {err[-1] if err else ''}")
        return json.loads(text.splitlines()[-1])

    def stop(self) -> None:
        for i in list(self.procs):
            self.kill(i)


@contextlib.contextmanager
def local_cluster(
    workers: int, logs: str | Path, env: dict | None = None
) -> Iterator[LocalCluster]:
    """A `LocalCluster` of `workers` free ports; every process it started is killed at exit."""
    cluster = LocalCluster(free_ports(workers), Path(logs), dict(env or {}))
    try:
        yield cluster
    finally:
        cluster.stop()


def steady_clips_per_s(metrics: dict) -> float | None:
    """Clips a second over the epochs after the first (None with fewer than 2 epochs)."""
    d, seconds = metrics["distribution"], metrics.get("epoch_seconds", [])
    if len(seconds) < 2:
        return None
    return d["global_batch"] * d["steps_per_epoch"] / statistics.median(seconds[1:])


@dataclass
class WorkersBenchmark(Result):
    """One process against N local workers on the same data, config and machine."""

    workers: int
    single: dict
    cluster: dict
    ratio: float | None  # cluster clips/s over single-process clips/s
    machine: str = f"{os.cpu_count()} cores"

    def format(self) -> str:
        def line(name: str, r: dict) -> str:
            speed = r["clips_per_s"]
            shown = "n/a" if speed is None else f"{speed:.2f} clips/s"
            return (
                f"  {name:<12}{shown}  (global batch {r['global_batch']}, "
                f"{r['steps_per_epoch']} steps an epoch, epochs {r['epoch_seconds']} s)"
            )

        ratio = "n/a" if self.ratio is None else f"{self.ratio:.2f}x"
        return "\n".join([
            f"training speed on this machine ({self.machine}), epochs after the first",
            line("1 process", self.single),
            line(f"{self.workers} workers", self.cluster),
            f"  ratio       {ratio}  (the workers share this host's cores)",
        ])  # fmt: skip


def run_workers_benchmark(
    data: str | Path,
    out: str | Path,
    config: Config,
    *,
    workers: int = 2,
    timeout: float = 3600.0,
) -> WorkersBenchmark:
    """Train `config` on `data` in one process, then in `workers` local worker processes
    (runs under `out/single` and `out/workers`), and compare their clips per second."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    single_cfg = config.with_overrides({"train": {"strategy": "default"}})
    multi_cfg = config.with_overrides({"train": {"strategy": "multi_worker"}})
    single_cfg.save(out / "single.yaml")
    multi_cfg.save(out / "multi_worker.yaml")
    base = ["train", "--data", str(data), "--json"]
    with local_cluster(1, out / "logs-single") as one:  # a cluster of one: the plain path
        one.start(0, [*base, "--config", out / "single.yaml", "--out", out / "single"])
        one.procs[0].wait(timeout)
        single = _figures(out / "single", one, 0)
    with local_cluster(workers, out / "logs-workers") as many:
        many.start_all([*base, "--config", out / "multi_worker.yaml", "--out", out / "workers"])
        many.wait(timeout)
        cluster = _figures(out / "workers", many, 0)
    ratio = None
    if single["clips_per_s"] and cluster["clips_per_s"]:
        ratio = cluster["clips_per_s"] / single["clips_per_s"]
    return WorkersBenchmark(workers, single, cluster, ratio)


def _figures(run: Path, cluster: LocalCluster, index: int) -> dict:
    """A finished run's speed figures (raises with the worker's last error line if it failed)."""
    cluster.result(index)
    metrics = json.loads((run / "metrics.json").read_text())
    d = metrics["distribution"]
    return {
        "clips_per_s": steady_clips_per_s(metrics),
        "global_batch": d["global_batch"],
        "steps_per_epoch": d["steps_per_epoch"],
        "replicas": d["replicas"],
        "epoch_seconds": metrics["epoch_seconds"],
    }

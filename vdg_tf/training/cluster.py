"""Where this process sits in a multi-worker cluster: `TF_CONFIG`, the chief, a barrier.

Every host runs the same `vdg train ... --out DIR` with its own `TF_CONFIG` (the cluster's
`host:port` list and this task's place in it). `MultiWorkerMirroredStrategy` must be made
before TensorFlow runs any other op in the process ("Collective ops must be configured at
program startup"), with at least `workers + 1` inter-op threads (fewer, on a 2-core
machine, can hang the collectives), so `Cluster.from_env` reads `TF_CONFIG` without
touching TensorFlow and `start_multi_worker` is the first thing training does.

Writes follow the Keras multi-worker recipe: the chief (worker 0, or the `chief` task)
writes the run folder; every other worker writes the same files into a temporary folder
of its own (`worker_folder`) and deletes it, since all of them must still take part in
every read of synchronised variables. The backup (`BackupAndRestore`) is the one folder
every worker reads, so `--out` sits on storage that every host shares.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import tensorflow as tf

logger = logging.getLogger(__name__)

TF_CONFIG = "TF_CONFIG"


@dataclass(frozen=True)
class Cluster:
    """This process's place in a `TF_CONFIG` cluster (one worker, index 0, when unset).

    `workers` counts every task that trains (a `chief` task and the `worker` tasks);
    `index` is this task's input pipeline among them (the chief's is 0).
    """

    workers: int = 1
    index: int = 0
    task: str = "worker"

    @property
    def chief(self) -> bool:
        """Whether this process writes the run folder."""
        return self.index == 0

    @property
    def multi_worker(self) -> bool:
        return self.workers > 1

    def to_dict(self) -> dict:
        return {"workers": self.workers, "worker_index": self.index, "chief": self.chief}

    @classmethod
    def from_env(cls, env: dict | None = None) -> Cluster:
        """The cluster `TF_CONFIG` describes; a malformed one is one line naming it."""
        text = (os.environ if env is None else env).get(TF_CONFIG, "").strip()
        if not text:
            return cls()
        try:
            spec = json.loads(text)
            jobs, task = spec["cluster"], spec["task"]
            chiefs, workers = list(jobs.get("chief", [])), list(jobs.get("worker", []))
            kind, index = task["type"], int(task["index"])
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise ValueError(
                f'{TF_CONFIG}: expected {{"cluster": {{"worker": ["host:port", ...]}}, '
                f'"task": {{"type": "worker", "index": N}}}} ({type(e).__name__}: {e})'
            ) from None
        if kind not in ("chief", "worker"):
            raise ValueError(
                f"{TF_CONFIG}: task type '{kind}' does not train here (known: chief, worker)"
            )
        tasks = chiefs if kind == "chief" else workers
        if not 0 <= index < len(tasks):
            raise ValueError(
                f"{TF_CONFIG}: task index {index} but the cluster lists {len(tasks)} '{kind}' "
                "addresses"
            )
        place = index if kind == "chief" else len(chiefs) + index
        return cls(workers=len(chiefs) + len(workers), index=place, task=kind)


def start_multi_worker(cluster: Cluster) -> tf.distribute.MultiWorkerMirroredStrategy:
    """`MultiWorkerMirroredStrategy` for `cluster`, with enough inter-op threads for its
    collectives; refused in one line when TensorFlow has already run an op here."""
    try:
        threads = tf.config.threading.get_inter_op_parallelism_threads()
        need = max(threads or os.cpu_count() or 1, cluster.workers + 1)
        if threads != need:
            tf.config.threading.set_inter_op_parallelism_threads(need)
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    except RuntimeError as e:
        raise ValueError(
            "train.strategy multi_worker: TensorFlow already ran an op in this process, so "
            "its collectives cannot be set up; start a new process whose first TensorFlow "
            f"work is vdg.train (or `vdg train`) ({e})"
        ) from None
    logger.info(
        "multi-worker training: worker %d of %d%s, %d replicas",
        cluster.index, cluster.workers, " (chief)" if cluster.chief else "",
        strategy.num_replicas_in_sync,
    )  # fmt: skip
    return strategy


def barrier(strategy: tf.distribute.Strategy) -> None:
    """Return once every worker of `strategy` has reached this call (a tiny all-reduce)."""
    if strategy.extended._in_multi_worker_mode():  # the one public-enough way to ask

        @tf.function
        def meet():
            ctx = tf.distribute.get_replica_context()
            return ctx.all_reduce(tf.distribute.ReduceOp.SUM, tf.constant(1.0))

        strategy.run(meet)


def worker_folder(cluster: Cluster) -> Path:
    """A new local temporary folder for a non-chief worker's copy of the run's files."""
    return Path(tempfile.mkdtemp(prefix=f"vdg-worker{cluster.index}-"))


def remove_worker_folder(path: Path) -> None:
    """Delete a non-chief worker's temporary folder (what it wrote is the chief's too)."""
    shutil.rmtree(path, ignore_errors=True)

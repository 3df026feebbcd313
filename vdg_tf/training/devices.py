"""Where and in what precision training runs: `tf.distribute` strategy and mixed precision.

`train.strategy`: auto (multi_worker when `TF_CONFIG` names several workers, else
MirroredStrategy over all GPUs when there are several, else the default), default,
mirrored (the GPUs of one host), or multi_worker (`MultiWorkerMirroredStrategy`, the
cluster read from `TF_CONFIG`: see `vdg_tf.training.cluster`). `train.mixed_precision`:
auto (mixed_float16 on a GPU, float32 on CPU, where float16 is slower), on, off.
`train.jit_compile` compiles the training step with XLA (`Model.compile(jit_compile=)`):
on GPUs it fuses the many small ops of the encoders; it runs on CPU too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import tensorflow as tf
import tf_keras as keras

from vdg_tf.training.cluster import TF_CONFIG, Cluster, start_multi_worker

STRATEGIES = ("auto", "default", "mirrored", "multi_worker")
PRECISIONS = ("auto", "on", "off")


_multi_worker: list[tf.distribute.Strategy] = []  # made once a process, at its start


def distribution_strategy(name: str, cluster: Cluster | None = None) -> tf.distribute.Strategy:
    """The strategy called `name` (models are built and compiled in its scope).

    Call it before any other TensorFlow work when it may be multi_worker (`Trainer.prepare`
    does); that strategy is made once a process and returned again after.
    `cluster`: where this process sits (default: read from `TF_CONFIG`).
    """
    if name not in STRATEGIES:
        raise ValueError(f"train.strategy: unknown '{name}' (known: {', '.join(STRATEGIES)})")
    cluster = cluster or Cluster.from_env()
    if name == "multi_worker" or (name == "auto" and cluster.multi_worker):
        if not _multi_worker:
            _multi_worker.append(start_multi_worker(cluster))
        return _multi_worker[0]
    if cluster.multi_worker:  # each worker would train alone and write the same folder
        raise ValueError(
            f"train.strategy {name}: {TF_CONFIG} names {cluster.workers} workers; set "
            f"train.strategy multi_worker (or auto), or unset {TF_CONFIG}"
        )
    gpus = tf.config.list_physical_devices("GPU")  # listing does not start TensorFlow
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def use_mixed_precision(setting: str) -> bool:
    """Whether `train.mixed_precision` means float16 compute on this machine."""
    if setting not in PRECISIONS:
        raise ValueError(
            f"train.mixed_precision: unknown '{setting}' (known: {', '.join(PRECISIONS)})"
        )
    if setting == "auto":
        return bool(tf.config.list_physical_devices("GPU"))
    return setting == "on"


@contextlib.contextmanager
def precision_policy(mixed: bool) -> Iterator[None]:
    """Layers built inside use mixed_float16 (or float32); the global policy is restored after."""
    before = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(before)

"""Where and in what precision training runs: `tf.distribute` strategy and mixed precision.

`train.strategy`: auto (MirroredStrategy over all GPUs when there are several, else the
default), default, mirrored, or multi_worker (reads TF_CONFIG). `train.mixed_precision`:
auto (mixed_float16 on a GPU, float32 on CPU, where float16 is slower), on, off.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import tensorflow as tf
import tf_keras as keras

STRATEGIES = ("auto", "default", "mirrored", "multi_worker")
PRECISIONS = ("auto", "on", "off")


def distribution_strategy(name: str) -> tf.distribute.Strategy:
    """The strategy called `name` (models are built and compiled in its scope)."""
    if name not in STRATEGIES:
        raise ValueError(f"train.strategy: unknown '{name}' (known: {', '.join(STRATEGIES)})")
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
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

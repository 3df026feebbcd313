"""Learning-rate schedules by name (`SCHEDULES`), each a serialisable Keras schedule."""

from __future__ import annotations

import math

import tensorflow as tf
import tf_keras as keras


@keras.utils.register_keras_serializable(package="vdg_tf")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup to `peak` over `warmup_steps`, then cosine decay to `floor * peak`."""

    def __init__(self, peak: float, total_steps: int, warmup_steps: int = 0, floor: float = 0.02):
        self.peak, self.total_steps, self.warmup_steps, self.floor = (
            peak,
            total_steps,
            warmup_steps,
            floor,
        )

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warm = self.peak * (step + 1.0) / max(self.warmup_steps, 1)
        span = max(self.total_steps - self.warmup_steps, 1)
        progress = tf.clip_by_value((step - self.warmup_steps) / span, 0.0, 1.0)
        cos = self.peak * (self.floor + (1 - self.floor) * 0.5 * (1 + tf.cos(math.pi * progress)))
        return tf.where(step < self.warmup_steps, warm, cos)

    def get_config(self):
        return {
            "peak": self.peak,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "floor": self.floor,
        }


def make_schedule(
    name: str, peak: float, steps_per_epoch: int, epochs: int, warmup_epochs: int = 0
):
    """The schedule called `name` over `epochs` of `steps_per_epoch` steps.

    cosine: warmup then cosine; inverse_time: lr / (1 + t / epoch); step: x0.1 at 50% and 75%;
    constant: `peak` throughout.
    """
    total = max(steps_per_epoch * epochs, 1)
    if name == "cosine":
        return WarmupCosine(peak, total, steps_per_epoch * warmup_epochs)
    if name == "inverse_time":
        return keras.optimizers.schedules.InverseTimeDecay(peak, max(steps_per_epoch, 1), 1.0)
    if name == "step":
        bounds = [int(total * 0.5), int(total * 0.75)]
        return keras.optimizers.schedules.PiecewiseConstantDecay(
            bounds, [peak, peak * 0.1, peak * 0.01]
        )
    if name == "constant":
        return peak
    raise ValueError(f"train.schedule: unknown '{name}' (known: {', '.join(SCHEDULES)})")


SCHEDULES = ("cosine", "inverse_time", "step", "constant")

"""Training: fusion loss, schedules, callbacks, the run folder, evaluation metrics."""

from vdg_tf.training.artifacts import Run, load_run
from vdg_tf.training.train import TrainResult, train

__all__ = ["Run", "TrainResult", "load_run", "train"]

"""Training: the `Trainer` steps, fusion loss, schedules, callbacks, evaluation metrics."""

from vdg_tf.training.trainer import Trainer, TrainResult, train, write_saved_model

__all__ = ["TrainResult", "Trainer", "train", "write_saved_model"]

"""Training: fusion loss, schedules, callbacks, the run folder, evaluation metrics."""

from vdg_tf.training.train import TrainResult, train, write_saved_model

__all__ = ["TrainResult", "train", "write_saved_model"]

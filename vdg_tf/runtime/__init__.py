"""Use a trained or exported model: evaluate it on a manifest, predict on new or live video."""

from vdg_tf.runtime.evaluate import evaluate, load_for_inference
from vdg_tf.runtime.predict import Events, Predictor, PredictRun, predict

__all__ = ["Events", "PredictRun", "Predictor", "evaluate", "load_for_inference", "predict"]

"""Model builders: per-modality encoders, fusion strategies and task heads (tf_keras)."""

from vdg_tf.models.builder import build_classifier, inference_model, model_inputs
from vdg_tf.models.fusion import FUSIONS, get_fusion

__all__ = ["FUSIONS", "build_classifier", "get_fusion", "inference_model", "model_inputs"]

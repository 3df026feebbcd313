"""Model builders: per-modality encoders, fusion strategies and task heads (tf_keras)."""

from vdg_tf.models.backbones import AUDIO_BACKBONES, VIDEO_BACKBONES, standalone_backbone
from vdg_tf.models.builder import build_classifier, inference_model, model_inputs
from vdg_tf.models.fusion import FUSIONS, get_fusion
from vdg_tf.models.layers import LAYERS
from vdg_tf.models.presets import PRESETS

__all__ = [
    "AUDIO_BACKBONES",
    "FUSIONS",
    "LAYERS",
    "PRESETS",
    "VIDEO_BACKBONES",
    "build_classifier",
    "get_fusion",
    "inference_model",
    "model_inputs",
    "standalone_backbone",
]

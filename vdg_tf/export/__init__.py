"""Export: TFLite conversion per target, SavedModel for serving, LiteRT verification."""

from vdg_tf.export.litert import LiteRTModel
from vdg_tf.export.targets import TARGETS, Target, get_target
from vdg_tf.export.tflite import ExportConfig, convert
from vdg_tf.models.serving import save_serving_model

__all__ = [
    "TARGETS",
    "ExportConfig",
    "LiteRTModel",
    "Target",
    "convert",
    "get_target",
    "save_serving_model",
]

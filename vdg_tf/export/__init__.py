"""Export: TFLite conversion per target, SavedModel for serving, LiteRT verification."""

from vdg_tf.export.litert import LiteRTModel
from vdg_tf.export.tflite import TARGETS, ExportConfig, convert, save_serving_model

__all__ = ["TARGETS", "ExportConfig", "LiteRTModel", "convert", "save_serving_model"]

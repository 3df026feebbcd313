"""Export: TFLite conversion per target, SavedModel for serving, LiteRT verification.

`export` (also `export_model`) is the one export path: `vdg export`, the pipeline's
export stage and Python users call it; it returns an `ExportResult`.

The names below load on first use (PEP 562), so reading the target table
(`vdg_tf.export.targets`, e.g. for `vdg --help`) does not start TensorFlow.
"""

from __future__ import annotations

import importlib
import sys
import types

_WHERE = {
    "export": "vdg_tf.export.api",
    "export_model": "vdg_tf.export.api",
    "ExportResult": "vdg_tf.export.api",
    "inspect_model": "vdg_tf.export.inspect",
    "Inspection": "vdg_tf.export.inspect",
    "TARGETS": "vdg_tf.export.targets",
    "Target": "vdg_tf.export.targets",
    "get_target": "vdg_tf.export.targets",
    "ExportConfig": "vdg_tf.export.tflite",
    "convert": "vdg_tf.export.tflite",
    "LiteRTModel": "vdg_tf.export.litert",
    "save_serving_model": "vdg_tf.models.serving",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'vdg_tf.export' has no attribute '{name}'")
    return getattr(importlib.import_module(_WHERE[name]), name)


class _ExportPackage(types.ModuleType):
    """`vdg_tf.export` is a package and, called, the export function itself, so
    `vdg.export(model, target, out)` reads as every other API verb does."""

    def __call__(self, *args, **kwargs):
        return self.export(*args, **kwargs)


sys.modules[__name__].__class__ = _ExportPackage

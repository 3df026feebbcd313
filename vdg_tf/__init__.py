"""vdg_tf: multimodal (vision, audio, text) video models in tf_keras, compressed to TFLite.

The flow is `media` -> `data` -> `models` -> `training` -> `compression` -> `export` ->
`runtime`, with `tasks` and `config` as the base every stage uses and `pipeline` on top;
each stage is a plain Python API and the `vdg` command line calls it. Importing the
package changes no process settings and loads no TensorFlow: the names below are
imported on first use.

Example:
    import vdg_tf as vdg

    run = vdg.train("configs/default.yaml", "data/manifest_train.jsonl", "runs/a",
                    val_split=0.2, eval_data="data/manifest_eval.jsonl")
    print(vdg.evaluate(run.model, "data/manifest_eval.jsonl").format())
    vdg.export(run.model, "edge-int8", "exports/a.tflite", data="data/manifest_train.jsonl")
    for record in vdg.predict("exports/a.tflite", ["new.mp4"]).records:
        print(record["start"], record["top"][0])
    report = vdg.run("pipelines/edge_int8.yaml", "videos/", "runs/p", val_split=0.1)

Every call returns a typed result with `to_dict()` (what the command's `--json` prints)
and `format()` (the table it prints).
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# name -> (module, attribute): the public API, loaded lazily. `export` is the
# `vdg_tf.export` package itself, which is callable (vdg_tf/export/__init__.py).
_API = {
    "train": ("vdg_tf.training.trainer", "train"),
    "evaluate": ("vdg_tf.runtime.evaluate", "evaluate"),
    "predict": ("vdg_tf.runtime.predict", "predict"),
    "run": ("vdg_tf.pipeline.engine", "run"),
    "demo": ("vdg_tf.pipeline.demo", "run_demo"),
    "inspect": ("vdg_tf.export.inspect", "inspect_model"),
    "make_sample_data": ("vdg_tf.data.sample", "make_sample_data"),
    "preprocess": ("vdg_tf.data.preprocess", "preprocess"),
    "PreprocessResult": ("vdg_tf.data.preprocess", "PreprocessResult"),
    "Bundle": ("vdg_tf.bundle", "Bundle"),
    "Config": ("vdg_tf.config", "Config"),
    "TrainResult": ("vdg_tf.training.trainer", "TrainResult"),
    "EvalReport": ("vdg_tf.runtime.evaluate", "EvalReport"),
    "ExportResult": ("vdg_tf.export.api", "ExportResult"),
    "PredictRun": ("vdg_tf.runtime.predict", "PredictRun"),
    "PipelineReport": ("vdg_tf.pipeline.engine", "PipelineReport"),
}

__all__ = ["__version__", "export", *_API]


def __getattr__(name: str):
    if name == "export":
        return importlib.import_module("vdg_tf.export")
    if name not in _API:
        raise AttributeError(f"module 'vdg_tf' has no attribute {name!r}")
    module, attr = _API[name]
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

"""Convert a Keras model to TFLite for a named target, with a signature named by input.

Conversion goes through a SavedModel whose `serving_default` signature takes the model's
inputs by their contract names (`video`, `audio`, `text`, `*_mask`) at batch 1, so the
TFLite signature runner and the representative dataset are fed by name, never position.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras as keras

from vdg_tf._quiet import silenced_stderr
from vdg_tf.export.int4 import quantize_int4
from vdg_tf.export.targets import get_target
from vdg_tf.models.serving import save_serving_model


@dataclass
class ExportConfig:
    """A TFLite target by name (the table in `export/targets.py`), with its calibration data.

    `representative` yields input dicts (batch 1, keyed by input name) for int8 calibration.
    """

    target: str = "float32"
    representative: Callable[[], Iterable[dict[str, np.ndarray]]] | None = None
    # drop the names of intermediate tensors (long fused-op names, ~8% of a small int8
    # file); inputs, outputs and signatures keep theirs
    strip_names: bool = True
    # text entries embedded in the file's metadata (labels, vocabulary, config), so a
    # .tflite copied alone still says what its outputs mean; `read_metadata` gives them back
    metadata: dict[str, str] | None = None
    # the batch axis: 1 (what edge runtimes feed; the smallest, all-int8 graph) or None
    # (dynamic: LiteRT resizes to any batch, at a cost in ops and bytes)
    batch: int | None = 1

    def __post_init__(self):
        if get_target(self.target).calibrated and self.representative is None:
            raise ValueError(f"export target {self.target} needs a representative dataset")

    @classmethod
    def edge_int8(cls, representative) -> ExportConfig:
        return cls("edge-int8", representative)


def convert(model: keras.Model, cfg: ExportConfig) -> bytes:
    """The `.tflite` flatbuffer of `model` for `cfg.target`."""
    with tempfile.TemporaryDirectory() as tmp:
        saved = save_serving_model(model, Path(tmp) / "saved", batch=cfg.batch)
        converter = tf.lite.TFLiteConverter.from_saved_model(
            str(saved), signature_keys=["serving_default"]
        )
        configure_converter(converter, cfg)
        data = run_converter(converter)
    if get_target(cfg.target).int4:
        data = quantize_int4(data)  # before stripping: the quantizer matches tensor names
    return finish(data, cfg)


def run_converter(converter: tf.lite.TFLiteConverter) -> bytes:
    """`converter.convert()` without its calibration chatter from C++ and the warnings
    about its own deprecations; failures still raise with their message."""
    with silenced_stderr(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return converter.convert()


def finish(data: bytes, cfg: ExportConfig, metadata: dict[str, str] | None = None) -> bytes:
    """A converted flatbuffer as every export writes it: intermediate names stripped (with
    `cfg.strip_names`), then `cfg.metadata` and `metadata` embedded."""
    data = strip_tensor_names(data) if cfg.strip_names else data
    entries = {**(cfg.metadata or {}), **(metadata or {})}
    return embed_metadata(data, entries) if entries else data


METADATA_PREFIX = "vdg_tf."


def embed_metadata(data: bytes, entries: dict[str, str]) -> bytes:
    """The model with each entry added as a named TFLite metadata buffer (`vdg_tf.<key>`)."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    model.metadata = list(model.metadata or [])
    for key, text in entries.items():
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(text.encode("utf-8"), np.uint8)
        model.buffers.append(buffer)
        entry = schema.MetadataT()
        entry.name = f"{METADATA_PREFIX}{key}"
        entry.buffer = len(model.buffers) - 1
        model.metadata.append(entry)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def read_metadata(path: str | Path) -> dict[str, str]:
    """The `vdg_tf.*` metadata entries of a .tflite file, by key."""
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(Path(path).read_bytes()))
    out = {}
    for entry in model.metadata or []:
        name = entry.name.decode() if isinstance(entry.name, bytes) else entry.name
        if name and name.startswith(METADATA_PREFIX):
            raw = model.buffers[entry.buffer].data
            out[name.removeprefix(METADATA_PREFIX)] = bytes(np.asarray(raw, np.uint8)).decode(
                "utf-8"
            )
    return out


def strip_tensor_names(data: bytes) -> bytes:
    """The same model with intermediate tensor names removed.

    Unlike upstream `flatbuffer_utils.strip_strings`, this keeps the signature defs and
    the names of input and output tensors, so the model is still fed by name.
    """
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    model.description = None
    for sg in model.subgraphs:
        keep = set(sg.inputs) | set(sg.outputs)
        for i, tensor in enumerate(sg.tensors):
            if i not in keep:
                tensor.name = None
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def configure_converter(converter: tf.lite.TFLiteConverter, cfg: ExportConfig) -> None:
    """Set the converter's optimizations, types, calibration data and op sets for `cfg.target`."""
    t = get_target(cfg.target)
    if t.optimize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if t.float16:
        converter.target_spec.supported_types = [tf.float16]
    if t.int8:
        rep = cfg.representative
        converter.representative_dataset = lambda: (
            {k: np.asarray(v) for k, v in d.items()} for d in rep()
        )
        ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if t.float_fallback:
            ops.append(tf.lite.OpsSet.TFLITE_BUILTINS)
        converter.target_spec.supported_ops = ops

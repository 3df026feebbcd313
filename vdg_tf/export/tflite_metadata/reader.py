"""Read standard TFLite Model Metadata back: what a metadata reader (MediaPipe, the Task
library) finds in a model, parsed with the same generated bindings the writer uses.

Used by tests and by export checks to see that a written file says what was meant: the
model name, each input's normalisation and value range, each output's name and labels
file, the detection tensor group, and the associated files packed after the flatbuffer.
"""

from __future__ import annotations

import io
import zipfile

from vdg_tf.export.tflite_metadata import metadata_schema_py_generated as fb
from vdg_tf.export.tflite_metadata.writer import (
    METADATA_IDENTIFIER,
    METADATA_NAME,
    OUTPUT_KINDS,
)

_LABEL_TYPES = {
    fb.AssociatedFileType.TENSOR_AXIS_LABELS: "axis",
    fb.AssociatedFileType.TENSOR_VALUE_LABELS: "value",
}


def metadata_buffer(tflite_bytes: bytes) -> bytes | None:
    """The raw `TFLITE_METADATA` flatbuffer of a model, or None when it has none."""
    from ai_edge_litert import schema_py_generated as tfl

    model = tfl.Model.GetRootAs(tflite_bytes, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name() is not None and entry.Name().decode("utf-8") == METADATA_NAME:
            return model.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
    return None


def packed_files(tflite_bytes: bytes) -> dict[str, bytes]:
    """The associated files zipped after the flatbuffer ({} when there is no zip)."""
    data = io.BytesIO(tflite_bytes)
    if not zipfile.is_zipfile(data):
        return {}
    with zipfile.ZipFile(data) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def read_metadata(tflite_bytes: bytes) -> dict:
    """What the model's Model Metadata says, as plain values.

    Returns:
      {"name", "description", "version", "author", "min_parser_version",
       "inputs": [{"name", "kind", "mean", "std", "min", "max"}],
       "outputs": [{"name", "kind", "labels_file", "label_type", "box_index", "min", "max"}],
       "output_groups": {group: [tensor names]}, "files": {name: bytes},
       "labels": [str] from the first labels file, or None}
    """
    buf = metadata_buffer(tflite_bytes)
    if buf is None:
        raise ValueError(f"model has no {METADATA_NAME} buffer (no standard Model Metadata)")
    if not fb.ModelMetadata.ModelMetadataBufferHasIdentifier(buf, 0):
        raise ValueError(f"{METADATA_NAME} buffer lacks the identifier {METADATA_IDENTIFIER!r}")
    meta = fb.ModelMetadataT.InitFromObj(fb.ModelMetadata.GetRootAs(buf, 0))
    graph = meta.subgraphMetadata[0]
    files = packed_files(tflite_bytes)
    outputs = [_tensor(t) for t in graph.outputTensorMetadata or []]
    label_files = [o["labels_file"] for o in outputs if o["labels_file"]]
    labels = None
    if label_files and label_files[0] in files:
        labels = files[label_files[0]].decode("utf-8").splitlines()
    return {
        "name": _text(meta.name),
        "description": _text(meta.description),
        "version": _text(meta.version),
        "author": _text(meta.author),
        "min_parser_version": _text(meta.minParserVersion),
        "inputs": [_tensor(t) for t in graph.inputTensorMetadata or []],
        "outputs": outputs,
        "output_groups": {
            _text(g.name): [_text(n) for n in g.tensorNames or []]
            for g in graph.outputTensorGroups or []
        },
        "files": files,
        "labels": labels,
    }


def _tensor(t: fb.TensorMetadataT) -> dict:
    """One tensor's metadata as plain values."""
    content = t.content
    props = content.contentPropertiesType if content is not None else None
    kinds = {spec.name: k for k, spec in OUTPUT_KINDS.items() if spec.name}
    kind = {
        fb.ContentProperties.ImageProperties: "image",
        fb.ContentProperties.BoundingBoxProperties: "boxes",
    }.get(props, kinds.get(_text(t.name), "tensor"))
    norm = next(
        (
            u.options
            for u in t.processUnits or []
            if u.optionsType == fb.ProcessUnitOptions.NormalizationOptions
        ),
        None,
    )
    files = [f for f in t.associatedFiles or [] if f.type in _LABEL_TYPES]
    box = content.contentProperties if props == fb.ContentProperties.BoundingBoxProperties else None
    return {
        "name": _text(t.name),
        "kind": kind,
        "mean": _floats(norm.mean) if norm is not None else None,
        "std": _floats(norm.std) if norm is not None else None,
        "min": _floats(t.stats.min) if t.stats is not None else None,
        "max": _floats(t.stats.max) if t.stats is not None else None,
        "labels_file": _text(files[0].name) if files else None,
        "label_type": _LABEL_TYPES[files[0].type] if files else None,
        "box_index": [int(i) for i in box.index] if box is not None else None,
    }


def _floats(values) -> list[float] | None:
    return None if values is None else [float(v) for v in values]


def _text(value: bytes | str | None) -> str | None:
    return value.decode("utf-8") if isinstance(value, bytes) else value

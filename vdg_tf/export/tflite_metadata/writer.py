"""Write and read standard TFLite Model Metadata (the `TFLITE_METADATA` buffer + labels zip).

MediaPipe's ObjectDetector and the TFLite Task library refuse a detector without Model
Metadata, and read from it what our sidecars say elsewhere: the input normalisation, the
label names and which output holds boxes, classes, scores and the count. This writes that
metadata the way tflite-support's `MetadataPopulator` does, with the flatc-generated
bindings of the official schema beside this module (never hand-assembled bytes):

1. a `ModelMetadata` flatbuffer (file identifier `M001`) whose `min_parser_version` is the
   newest schema version among the fields used, by the rules of tflite-support's
   `metadata_version.cc` (ported in `min_parser_version`);
2. stored as a model buffer named `TFLITE_METADATA` (an existing one is replaced), the
   model re-packed through the TFLite schema bindings `ai_edge_litert` ships;
3. associated files (`labels.txt`) appended as an uncompressed zip after the flatbuffer,
   which readers find by the zip's end record while the interpreter ignores the tail.

Example:
  data = write_metadata(tflite, name="detector", description="boxes in one RGB frame",
                        input_norm=(127.5, 127.5), labels=["cat", "dog"],
                        output_kinds=["boxes", "classes", "scores", "count"])
  read_metadata(data)["labels"]  # ["cat", "dog"]
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass

import flatbuffers
import numpy as np

from vdg_tf.export.tflite_metadata import metadata_schema_py_generated as fb

METADATA_NAME = "TFLITE_METADATA"
METADATA_IDENTIFIER = b"M001"
TFLITE_IDENTIFIER = b"TFL3"
LABELS_FILE = "labels.txt"
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip entry holds
DETECTION_GROUP = "detection_result"
POSTPROCESS_OP = "TFLite_Detection_PostProcess"
POSTPROCESS_PORTS = ("boxes", "classes", "scores", "count")  # the op's outputs, in order
BOX_INDEX = [1, 0, 3, 2]  # TFLite_Detection_PostProcess boxes are [ymin, xmin, ymax, xmax]


@dataclass(frozen=True)
class OutputKind:
    """How one kind of output is described: the tensor name the Task library and MediaPipe
    look outputs up by, whether labels attach to it (and as which file type), whether it
    is a box tensor, and whether its last-but-one dimension is per detection (range 2)."""

    name: str
    description: str
    label_type: int | None = None
    boxes: bool = False
    per_detection: bool = False


OUTPUT_KINDS = {
    "probabilities": OutputKind(
        "probability", "Probabilities of the labels.", fb.AssociatedFileType.TENSOR_AXIS_LABELS
    ),
    "boxes": OutputKind(
        "location", "The locations of the detected boxes.", boxes=True, per_detection=True
    ),
    "classes": OutputKind(
        "category",
        "The categories of the detected boxes.",
        fb.AssociatedFileType.TENSOR_VALUE_LABELS,
        per_detection=True,
    ),
    "scores": OutputKind("score", "The scores of the detected boxes.", per_detection=True),
    "count": OutputKind("number of detections", "The number of the detected boxes."),
    "tensor": OutputKind("", ""),  # named after the model's own tensor
}
INPUT_KINDS = ("image", "video", "tensor")
# tflite-support metadata_version.cc: the schema version that introduced each member
_VERSIONS = {
    "vocabulary": (1, 0, 1),
    "subgraph_process_units": (1, 1, 0),
    "tokenizer": (1, 1, 0),
    "tensor_groups": (1, 2, 0),
    "regex_tokenizer": (1, 2, 1),
    "audio": (1, 3, 0),
    "scann": (1, 4, 0),
    "file_version": (1, 4, 1),
    "custom_metadata": (1, 5, 0),
}


def write_metadata(
    tflite_bytes: bytes,
    *,
    name: str,
    description: str = "",
    version: str = "",
    author: str = "",
    input_norm: tuple[float | Sequence[float], float | Sequence[float]] | None = None,
    labels: Sequence[str] | None = None,
    output_kinds: Sequence[str] | None = None,
    input_kinds: Sequence[str] | None = None,
) -> bytes:
    """`tflite_bytes` with standard Model Metadata and its labels file added.

    Args:
      tflite_bytes: a .tflite model (metadata and packed files it already has are replaced).
      name, description, version, author: what a model browser shows.
      input_norm: (mean, std), scalars or one per channel, that the model expects image
        pixels in 0-255 to be normalised with: input = (pixel - mean) / std. Applied to
        "image" and "video" inputs; None when the model takes raw pixels.
      labels: class names, written as `labels.txt` and attached to the "probabilities"
        or "classes" output.
      output_kinds: one of OUTPUT_KINDS per output, in the order of the model's outputs
        (`get_output_details()`); None: "tensor" for each.
      input_kinds: one of INPUT_KINDS per input; None: "image" for [1, H, W, 3], "video"
        for [1, T, H, W, 3], "tensor" otherwise.

    Returns:
      The new model bytes (flatbuffer, then the zip of associated files).
    """
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(tflite_bytes))
    graph = model.subgraphs[0]
    ins = [model.subgraphs[0].tensors[i] for i in graph.inputs]
    outs = [model.subgraphs[0].tensors[i] for i in graph.outputs]
    in_kinds = _input_kinds(ins, input_kinds)
    out_kinds = _output_kinds(len(outs), output_kinds, labels)
    if input_norm is not None and not {"image", "video"} & set(in_kinds):
        raise ValueError(f"input_norm: no image or video input to normalise (inputs: {in_kinds})")
    subgraph = fb.SubGraphMetadataT()
    sig = _signature_names(model)
    subgraph.inputTensorMetadata = [
        _input_metadata(t, k, input_norm, sig.get(int(i), _tensor_name(t)))
        for i, t, k in zip(graph.inputs, ins, in_kinds, strict=True)
    ]
    subgraph.outputTensorMetadata = [
        _output_metadata(t, k, labels, sig.get(int(i), _tensor_name(t)))
        for i, t, k in zip(graph.outputs, outs, out_kinds, strict=True)
    ]
    if {"boxes", "classes", "scores"} <= set(out_kinds):
        group = fb.TensorGroupT()
        group.name = DETECTION_GROUP
        group.tensorNames = [OUTPUT_KINDS[k].name for k in ("boxes", "classes", "scores")]
        subgraph.outputTensorGroups = [group]
    meta = fb.ModelMetadataT()
    meta.name, meta.description = name, description
    meta.version, meta.author = version or None, author or None
    meta.subgraphMetadata = [subgraph]
    meta.minParserVersion = min_parser_version(meta)
    builder = flatbuffers.Builder(0)
    builder.Finish(meta.Pack(builder), METADATA_IDENTIFIER)
    _set_metadata_buffer(model, bytes(builder.Output()))
    packed = bytes(flatbuffer_utils.convert_object_to_bytearray(model))
    files = {LABELS_FILE: "".join(f"{x}\n" for x in labels).encode()} if labels else {}
    return _append_files(packed, files)


def detection_output_kinds(tflite_bytes: bytes) -> list[str]:
    """`output_kinds` of a model whose outputs come from `TFLite_Detection_PostProcess`.

    The op's ports are boxes, classes, scores, count, but the model lists its outputs in
    another order (LiteRT showed classes, count, boxes, scores for one converted graph), so
    each output is matched to the port that writes it; "tensor" for any other output.
    """
    from ai_edge_litert import schema_py_generated as tfl

    model = tfl.Model.GetRootAs(tflite_bytes, 0)
    graph = model.Subgraphs(0)
    ports = None
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex()).CustomCode()
        if code is not None and code.decode("utf-8") == POSTPROCESS_OP:
            ports = dict(zip(op.OutputsAsNumpy().tolist(), POSTPROCESS_PORTS, strict=False))
    if ports is None:
        raise ValueError(f"model has no {POSTPROCESS_OP} op (a detection export must end in it)")
    return [ports.get(int(t), "tensor") for t in graph.OutputsAsNumpy()]


def _input_kinds(tensors: list, kinds: Sequence[str] | None) -> list[str]:
    """The kind of each input: as given (checked), or guessed from its shape."""
    if kinds is None:
        guess = {4: "image", 5: "video"}
        return [
            guess.get(len(t.shape), "tensor") if list(t.shape)[-1:] == [3] else "tensor"
            for t in tensors
        ]
    kinds = list(kinds)
    if len(kinds) != len(tensors):
        raise ValueError(f"input_kinds: {len(kinds)} kinds for {len(tensors)} model inputs")
    unknown = [k for k in kinds if k not in INPUT_KINDS]
    if unknown:
        raise ValueError(f"input_kinds: unknown '{unknown[0]}' (known: {', '.join(INPUT_KINDS)})")
    return kinds


def _output_kinds(count: int, kinds: Sequence[str] | None, labels: Sequence[str] | None) -> list:
    """The kind of each output (checked), and that labels have an output to attach to."""
    kinds = ["tensor"] * count if kinds is None else list(kinds)
    if len(kinds) != count:
        raise ValueError(f"output_kinds: {len(kinds)} kinds for {count} model outputs")
    unknown = [k for k in kinds if k not in OUTPUT_KINDS]
    if unknown:
        known = ", ".join(OUTPUT_KINDS)
        raise ValueError(f"output_kinds: unknown '{unknown[0]}' (known: {known})")
    if labels is not None:
        if not labels or any(not isinstance(x, str) or not x.strip() for x in labels):
            raise ValueError("labels: need non-empty strings (one class name each)")
        if any("\n" in x or "\r" in x for x in labels):
            raise ValueError("labels: a label holds a line break (labels.txt is one per line)")
        if not any(OUTPUT_KINDS[k].label_type is not None for k in kinds):
            raise ValueError(
                f"labels: no output of kind 'probabilities' or 'classes' to attach them to "
                f"(output_kinds: {kinds})"
            )
    return kinds


def _signature_names(model) -> dict[int, str]:
    """{tensor index: name} of the first subgraph's signature inputs and outputs (`video`,
    `probs`): what a caller feeds and reads by, better than a converted tensor's name."""
    names: dict[int, str] = {}
    for sig in model.signatureDefs or []:
        if sig.subgraphIndex not in (0, None):
            continue
        for entry in [*(sig.inputs or []), *(sig.outputs or [])]:
            names[int(entry.tensorIndex)] = _tensor_name(entry)
    return names


def _input_metadata(tensor, kind: str, norm: tuple | None, name: str) -> fb.TensorMetadataT:
    """One input's metadata: image/video content, normalisation, value range."""
    meta = fb.TensorMetadataT()
    meta.name = "image" if kind == "image" else name
    meta.content = fb.ContentT()
    if kind == "image":
        meta.description = "Input image (RGB)."
        meta.content.contentPropertiesType = fb.ContentProperties.ImageProperties
        meta.content.contentProperties = fb.ImagePropertiesT()
        meta.content.contentProperties.colorSpace = fb.ColorSpaceType.RGB
    else:
        meta.content.contentPropertiesType = fb.ContentProperties.FeatureProperties
        meta.content.contentProperties = fb.FeaturePropertiesT()
    if kind == "tensor" or norm is None:
        if kind != "tensor" and tensor.type == _tensor_type("UINT8"):
            meta.stats = _stats([0.0], [255.0])
        return meta
    mean, std = (list(np.atleast_1d(np.asarray(v, np.float64))) for v in norm)
    if len(mean) != len(std) or not all(s > 0 for s in std):
        raise ValueError(f"input_norm: need std > 0 and as many means as stds, got {norm}")
    unit = fb.ProcessUnitT()
    unit.optionsType = fb.ProcessUnitOptions.NormalizationOptions
    unit.options = fb.NormalizationOptionsT()
    unit.options.mean, unit.options.std = [float(m) for m in mean], [float(s) for s in std]
    meta.processUnits = [unit]
    # value ranges as tflite-support's InputImageTensorMd writes them: raw pixels for a
    # uint8 input, normalised pixels for float32, none for other types (int8 and so on)
    if tensor.type == _tensor_type("UINT8"):
        meta.stats = _stats([0.0], [255.0])
    elif tensor.type == _tensor_type("FLOAT32"):
        lo = [(0.0 - m) / s for m, s in zip(mean, std, strict=True)]
        meta.stats = _stats(lo, [(255.0 - m) / s for m, s in zip(mean, std, strict=True)])
    return meta


def _output_metadata(
    tensor, kind: str, labels: Sequence[str] | None, name: str
) -> fb.TensorMetadataT:
    """One output's metadata: name, content (boxes or features), labels file."""
    spec = OUTPUT_KINDS[kind]
    meta = fb.TensorMetadataT()
    meta.name = spec.name or name
    meta.description = spec.description or None
    meta.content = fb.ContentT()
    if spec.boxes:
        meta.content.contentPropertiesType = fb.ContentProperties.BoundingBoxProperties
        props = fb.BoundingBoxPropertiesT()
        props.index = list(BOX_INDEX)
        props.type = fb.BoundingBoxType.BOUNDARIES
        props.coordinateType = fb.CoordinateType.RATIO
        meta.content.contentProperties = props
    else:
        meta.content.contentPropertiesType = fb.ContentProperties.FeatureProperties
        meta.content.contentProperties = fb.FeaturePropertiesT()
    if spec.per_detection:
        meta.content.range = fb.ValueRangeT()
        meta.content.range.min = meta.content.range.max = 2
    if spec.label_type is not None and labels:
        file = fb.AssociatedFileT()
        file.name, file.type = LABELS_FILE, spec.label_type
        file.description = "Labels for the classes the model can recognise."
        meta.associatedFiles = [file]
    if kind in ("probabilities", "scores"):
        meta.stats = _stats([0.0], [1.0])
    return meta


def _stats(lo: list[float], hi: list[float]) -> fb.StatsT:
    stats = fb.StatsT()
    stats.min, stats.max = [float(v) for v in lo], [float(v) for v in hi]
    return stats


def _tensor_name(tensor) -> str:
    name = tensor.name
    return name.decode("utf-8") if isinstance(name, bytes) else str(name)


def _tensor_type(name: str) -> int:
    """The TFLite schema's TensorType code named `name` (UINT8, FLOAT32, ...)."""
    from ai_edge_litert import schema_py_generated as tfl

    return getattr(tfl.TensorType, name)


def _set_metadata_buffer(model, data: bytes) -> None:
    """Put `data` in the buffer the model's `TFLITE_METADATA` entry names (added if none)."""
    from ai_edge_litert import schema_py_generated as tfl

    buffer = tfl.BufferT()
    buffer.data = np.frombuffer(data, np.uint8)
    for entry in model.metadata or []:
        if _tensor_name(entry) == METADATA_NAME:
            model.buffers[entry.buffer] = buffer
            return
    model.buffers = list(model.buffers or []) + [buffer]
    entry = tfl.MetadataT()
    entry.name, entry.buffer = METADATA_NAME, len(model.buffers) - 1
    model.metadata = list(model.metadata or []) + [entry]


def _append_files(model: bytes, files: dict[str, bytes]) -> bytes:
    """The model followed by a zip of `files`, stored uncompressed (what metadata readers
    such as MediaPipe's accept) as tflite-support's populator writes it; entries carry a
    fixed date so the same model exports to the same bytes."""
    if not files:
        return model
    out = io.BytesIO()
    out.write(model)
    with zipfile.ZipFile(out, "a", compression=zipfile.ZIP_STORED) as zf:
        for name, data in files.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=ZIP_DATE), data)
    return out.getvalue()


def min_parser_version(meta: fb.ModelMetadataT) -> str:
    """The oldest metadata parser that understands every field of `meta` ("1.0.0" at
    least), by the member table of tflite-support's `metadata_version.cc`."""
    found = [(1, 0, 0)]
    _files_version(meta.associatedFiles, found)
    for graph in meta.subgraphMetadata or []:
        for tensor in [*(graph.inputTensorMetadata or []), *(graph.outputTensorMetadata or [])]:
            _files_version(tensor.associatedFiles, found)
            _units_version(tensor.processUnits, found)
            content = tensor.content
            if content is not None and (
                content.contentPropertiesType == fb.ContentProperties.AudioProperties
            ):
                found.append(_VERSIONS["audio"])
        _files_version(graph.associatedFiles, found)
        for units in (graph.inputProcessUnits, graph.outputProcessUnits):
            if units is not None:
                found.append(_VERSIONS["subgraph_process_units"])
                _units_version(units, found)
        if graph.inputTensorGroups is not None or graph.outputTensorGroups is not None:
            found.append(_VERSIONS["tensor_groups"])
        if graph.customMetadata is not None:
            found.append(_VERSIONS["custom_metadata"])
    return ".".join(str(v) for v in max(found))


def _files_version(files: list | None, found: list) -> None:
    for file in files or []:
        if file.type == fb.AssociatedFileType.VOCABULARY:
            found.append(_VERSIONS["vocabulary"])
        if file.type == fb.AssociatedFileType.SCANN_INDEX_FILE:
            found.append(_VERSIONS["scann"])
        if file.version is not None:
            found.append(_VERSIONS["file_version"])


def _units_version(units: list | None, found: list) -> None:
    opts = fb.ProcessUnitOptions
    for unit in units or []:
        if unit.optionsType in (opts.BertTokenizerOptions, opts.SentencePieceTokenizerOptions):
            found.append(_VERSIONS["tokenizer"])
        if unit.optionsType == opts.RegexTokenizerOptions:
            found.append(_VERSIONS["regex_tokenizer"])

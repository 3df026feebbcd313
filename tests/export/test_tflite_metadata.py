"""Standard TFLite Model Metadata on real tiny converted models: written with the
flatc-generated bindings, the file still runs in LiteRT with the same outputs, and the
metadata (name, normalisation, labels, output roles, parser version) reads back."""

from __future__ import annotations

import io
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from vdg_tf.export.tflite_metadata import (
    metadata_buffer,
    min_parser_version,
    read_metadata,
    write_metadata,
)
from vdg_tf.export.tflite_metadata import metadata_schema_py_generated as fb

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ROOT / "vdg_tf/export/tflite_metadata/metadata_schema_py_generated.py"


def _convert(model: keras.Model) -> bytes:
    return tf.lite.TFLiteConverter.from_keras_model(model).convert()


@pytest.fixture(scope="module")
def classifier() -> bytes:
    """A float classifier: one [1, 16, 16, 3] image in, 3 softmax probabilities out."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((16, 16, 3), batch_size=1)
    x = keras.layers.Conv2D(4, 3, strides=2)(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return _convert(keras.Model(inp, keras.layers.Dense(3, activation="softmax")(x)))


@pytest.fixture(scope="module")
def detector_shaped() -> tuple[bytes, list[str]]:
    """A model with the four outputs of TFLite_Detection_PostProcess (boxes [1,4,4],
    classes [1,4] all 2.0, scores [1,4] in (0, 1), count [1]) and their kinds in the
    order LiteRT lists the outputs."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((16, 16, 3), batch_size=1)
    flat = keras.layers.GlobalAveragePooling2D()(inp)
    boxes = keras.layers.Reshape((4, 4))(keras.layers.Dense(16, activation="sigmoid")(flat))
    scores = keras.layers.Dense(4, activation="sigmoid")(flat)
    classes = keras.layers.Lambda(lambda s: tf.zeros_like(s) + 2.0)(scores)
    count = keras.layers.Lambda(lambda s: tf.reduce_sum(s * 0.0 + 1.0, axis=-1))(scores)
    data = _convert(keras.Model(inp, [boxes, classes, scores, count]))
    kinds = []
    for out in _run(data, np.full((1, 16, 16, 3), 0.5, np.float32)):
        if out.ndim == 3:
            kinds.append("boxes")
        elif out.ndim == 1:
            kinds.append("count")
        else:
            kinds.append("classes" if np.all(out == 2.0) else "scores")
    assert sorted(kinds) == ["boxes", "classes", "count", "scores"]
    return data, kinds


def _run(data: bytes, x: np.ndarray) -> list[np.ndarray]:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=data)
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.invoke()
    return [interp.get_tensor(d["index"]).copy() for d in interp.get_output_details()]


def test_classifier_metadata_reads_back_and_model_still_runs(classifier):
    data = write_metadata(
        classifier,
        name="tiny classifier",
        description="three shapes",
        version="1",
        input_norm=(127.5, 127.5),
        labels=["circle", "square", "triangle"],
        output_kinds=["probabilities"],
    )
    x = np.random.default_rng(0).uniform(-1, 1, (1, 16, 16, 3)).astype(np.float32)
    np.testing.assert_allclose(_run(data, x)[0], _run(classifier, x)[0], rtol=1e-6)
    meta = read_metadata(data)
    assert (meta["name"], meta["description"], meta["version"]) == (
        "tiny classifier",
        "three shapes",
        "1",
    )
    assert meta["min_parser_version"] == "1.0.0"
    (image,) = meta["inputs"]
    assert image["kind"] == "image" and image["mean"] == [127.5] and image["std"] == [127.5]
    assert image["min"] == [-1.0] and image["max"] == [1.0]  # (0 - 127.5) / 127.5, (255 - ...)
    (probs,) = meta["outputs"]
    assert probs["name"] == "probability" and probs["label_type"] == "axis"
    assert meta["labels"] == ["circle", "square", "triangle"]
    with zipfile.ZipFile(io.BytesIO(data)) as zf:  # readers need the files uncompressed
        assert [(i.filename, i.compress_type) for i in zf.infolist()] == [
            ("labels.txt", zipfile.ZIP_STORED)
        ]
    assert metadata_buffer(classifier) is None


def test_writing_again_replaces_metadata_and_files(classifier):
    first = write_metadata(
        classifier, name="a", labels=["x", "y", "z"], output_kinds=["probabilities"]
    )
    second = write_metadata(first, name="b", input_norm=([0, 1, 2], [1, 2, 4]))
    meta = read_metadata(second)
    assert meta["name"] == "b" and meta["labels"] is None and meta["files"] == {}
    assert meta["inputs"][0]["mean"] == [0.0, 1.0, 2.0]
    assert meta["inputs"][0]["max"] == [255.0, 127.0, 63.25]
    from ai_edge_litert import schema_py_generated as tfl

    model = tfl.Model.GetRootAs(second, 0)
    names = [model.Metadata(i).Name() for i in range(model.MetadataLength())]
    assert names.count(b"TFLITE_METADATA") == 1


def test_detection_outputs_carry_roles_labels_and_group(detector_shaped):
    data, kinds = detector_shaped
    out = write_metadata(
        data,
        name="detector",
        input_norm=(127.5, 127.5),
        labels=["cat", "dog", "bird"],
        output_kinds=kinds,
    )
    x = np.full((1, 16, 16, 3), 0.25, np.float32)
    for a, b in zip(_run(out, x), _run(data, x), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    meta = read_metadata(out)
    names = {
        "boxes": "location",
        "classes": "category",
        "scores": "score",
        "count": "number of detections",
    }
    assert [o["name"] for o in meta["outputs"]] == [names[k] for k in kinds]
    by_name = {o["name"]: o for o in meta["outputs"]}
    assert by_name["location"]["box_index"] == [1, 0, 3, 2]
    assert by_name["category"]["labels_file"] == "labels.txt"
    assert by_name["category"]["label_type"] == "value"
    assert by_name["score"]["labels_file"] is None
    assert meta["output_groups"] == {"detection_result": ["location", "category", "score"]}
    assert meta["min_parser_version"] == "1.2.0"  # output tensor groups came in 1.2.0
    assert meta["labels"] == ["cat", "dog", "bird"]


def _meta_with(**subgraph_fields) -> fb.ModelMetadataT:
    graph = fb.SubGraphMetadataT()
    for key, value in subgraph_fields.items():
        setattr(graph, key, value)
    meta = fb.ModelMetadataT()
    meta.subgraphMetadata = [graph]
    return meta


def _file(**fields) -> fb.AssociatedFileT:
    f = fb.AssociatedFileT()
    f.name = "f.txt"
    for key, value in fields.items():
        setattr(f, key, value)
    return f


@pytest.mark.parametrize(
    "meta, expected",
    [
        (_meta_with(), "1.0.0"),
        (_meta_with(associatedFiles=[_file(type=fb.AssociatedFileType.VOCABULARY)]), "1.0.1"),
        (_meta_with(inputProcessUnits=[]), "1.1.0"),  # present even when empty, as in C++
        (_meta_with(associatedFiles=[_file(version="2")]), "1.4.1"),
        (_meta_with(customMetadata=[], inputTensorGroups=[]), "1.5.0"),
    ],
)
def test_min_parser_version_follows_metadata_version_cc(meta, expected):
    assert min_parser_version(meta) == expected


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"labels": ["a"]}, "labels: no output of kind 'probabilities' or 'classes'"),
        (
            {"output_kinds": ["probabilities", "scores"]},
            "output_kinds: 2 kinds for 1 model outputs",
        ),
        ({"output_kinds": ["logits"]}, "output_kinds: unknown 'logits'"),
        ({"input_kinds": ["tensor"], "input_norm": (0, 1)}, "input_norm: no image or video input"),
        ({"input_norm": (0, 0)}, "input_norm: need std > 0"),
        ({"labels": ["a\nb"], "output_kinds": ["probabilities"]}, "labels: a label holds a line"),
    ],
)
def test_bad_arguments_are_one_line_errors(classifier, kwargs, message):
    with pytest.raises(ValueError) as e:
        write_metadata(classifier, name="m", **kwargs)
    assert message in str(e.value) and "\n" not in str(e.value)


@pytest.mark.skipif(shutil.which("flatc") is None, reason="flatc is not installed")
def test_generated_bindings_are_what_flatc_writes(tmp_path):
    version = subprocess.run(["flatc", "--version"], capture_output=True, text=True).stdout
    if version.strip() not in GENERATED.read_text().splitlines()[4]:
        pytest.skip(f"another flatc ({version.strip()}) than the one the file names")
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "tools/tflite_metadata", copy / "tools/tflite_metadata")
    (copy / "vdg_tf/export/tflite_metadata").mkdir(parents=True)
    subprocess.run(["sh", str(copy / "tools/tflite_metadata/generate.sh")], check=True)
    fresh = copy / "vdg_tf/export/tflite_metadata/metadata_schema_py_generated.py"
    assert fresh.read_text() == GENERATED.read_text()


@pytest.mark.parametrize(
    "input_type, expected_range",
    [(tf.uint8, ([0.0], [255.0])), (tf.int8, (None, None))],
)
def test_quantized_input_value_range(input_type, expected_range):
    """A uint8 image input takes raw pixels (0-255); an int8 one gets no range (as
    tflite-support's writer), whatever the normalisation."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 3), batch_size=1)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(2, 3)(inp))
    converter = tf.lite.TFLiteConverter.from_keras_model(keras.Model(inp, x))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(0)
    converter.representative_dataset = lambda: (
        [rng.uniform(-1, 1, (1, 8, 8, 3)).astype(np.float32)] for _ in range(4)
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = input_type
    converter.inference_output_type = input_type
    data = write_metadata(converter.convert(), name="q", input_norm=(127.5, 127.5))
    (image,) = read_metadata(data)["inputs"]
    assert (image["min"], image["max"]) == expected_range
    assert image["mean"] == [127.5]
    _run(data, np.zeros((1, 8, 8, 3), input_type.as_numpy_dtype))  # still runs

"""TFLite exports run in LiteRT by input name, hold int8 tensors, and agree with Keras."""

import numpy as np
import pytest

from vdg_tf.export import TARGETS, ExportConfig, LiteRTModel, convert
from vdg_tf.export.verify import agreement, predict_tflite, representative_inputs
from vdg_tf.files import atomic_write_bytes
from vdg_tf.models import inference_model
from vdg_tf.tasks import get_task
from vdg_tf.training.evaluate import predict_dataset


@pytest.fixture(scope="module")
def exports(trained_run, eval_ds, tmp_path_factory):
    d = tmp_path_factory.mktemp("export")
    model = inference_model(trained_run.model)
    rep = lambda: representative_inputs(eval_ds, 12)  # noqa: E731
    return {
        t: atomic_write_bytes(
            d / f"{t}.tflite", convert(model, ExportConfig(t, rep if "int8" in t else None))
        )
        for t in TARGETS
    }


def tensor_dtypes(path):
    m = LiteRTModel(path)
    return {d["dtype"].__name__ for d in m.interpreter.get_tensor_details()}


def test_signature_inputs_are_named_by_contract(exports):
    m = LiteRTModel(exports["float32"])
    assert m.input_names == ["audio", "audio_mask", "text", "text_mask", "video", "video_mask"]


def test_int8_export_holds_int8_tensors_and_is_smaller(exports):
    assert "int8" in tensor_dtypes(exports["edge-int8"])
    assert "int8" not in tensor_dtypes(exports["float32"])
    assert exports["edge-int8"].stat().st_size < 0.5 * exports["float32"].stat().st_size
    assert "float16" in tensor_dtypes(exports["gpu-fp16"])


def test_exports_agree_with_keras(trained_run, exports, eval_ds):
    _, p_keras = predict_dataset(inference_model(trained_run.model), eval_ds)
    task = get_task("classification")
    found = {
        t: agreement(p_keras, predict_tflite(path, eval_ds)[1], task) for t, path in exports.items()
    }
    # float32 is the Keras model; weight-only quantization (fp16, dynamic int8) barely
    # moves outputs; full int8 (post-training, no QAT, on this tiny model whose top classes
    # are often close) keeps most of top-1
    assert found["float32"]["max_abs_diff"] < 1e-4
    assert found["gpu-fp16"]["max_abs_diff"] < 1e-2
    assert (
        found["cpu-dynamic"]["max_abs_diff"] < 0.1 and found["cpu-dynamic"]["top1_agreement"] >= 0.9
    )
    for t in ("edge-int8", "int8-fallback"):
        assert found[t]["top1_agreement"] >= 0.75 and found[t]["max_abs_diff"] < 0.3, (t, found[t])


def test_missing_input_is_named(exports):
    m = LiteRTModel(exports["float32"])
    with pytest.raises(KeyError, match="missing input 'audio_mask'"):
        m.predict_one({"audio": np.zeros(1)})


def test_stripped_names_shrink_the_file_not_the_model(trained_run, exports, eval_ds, tmp_path):
    full = atomic_write_bytes(
        tmp_path / "full.tflite",
        convert(inference_model(trained_run.model), ExportConfig("float32", strip_names=False)),
    )
    stripped = exports["float32"]
    assert stripped.stat().st_size < full.stat().st_size
    names = [d["name"] for d in LiteRTModel(stripped).interpreter.get_tensor_details()]
    assert sum(1 for n in names if n) <= 7  # six named inputs and the output
    _, a = predict_tflite(full, eval_ds)
    _, b = predict_tflite(stripped, eval_ds)
    np.testing.assert_array_equal(a, b)


def test_vdg_inspect_reports_the_int8_file_it_reads(exports, capfd):
    """`vdg inspect FILE --latency --json` through the CLI: bytes of the file, all-int8 ops
    for edge-int8 and none for float32, and a latency."""
    import json

    from tests.helpers import vdg

    rc, out, err = vdg(capfd, "inspect", exports["edge-int8"], "--latency", "--json")
    assert rc == 0, err
    r = json.loads(out)
    assert r["bytes"] == exports["edge-int8"].stat().st_size
    assert r["int8_op_fraction"] >= 0.95 and r["latency_ms"] > 0
    rc, out, _ = vdg(capfd, "inspect", exports["float32"], "--json")
    assert rc == 0 and json.loads(out)["int8_op_fraction"] == 0

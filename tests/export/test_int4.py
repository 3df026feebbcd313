"""`edge-int4`: weights stored as 4-bit in the flatbuffer, run in LiteRT, agree with float."""

import pytest

from vdg_tf.export import ExportConfig, convert
from vdg_tf.export.api import export_model
from vdg_tf.export.inspect import inspect_tflite
from vdg_tf.export.int4 import weight_bytes
from vdg_tf.export.verify import agreement, predict_tflite, representative_inputs
from vdg_tf.files import atomic_write_bytes
from vdg_tf.models import inference_model
from vdg_tf.tasks import get_task


@pytest.fixture(scope="module")
def files(trained_run, eval_ds, tmp_path_factory):
    """float32 and edge-int8 through `convert`; edge-int4 through `vdg export`'s API."""
    d = tmp_path_factory.mktemp("int4")
    model = inference_model(trained_run.model)
    rep = lambda: representative_inputs(eval_ds, 12)  # noqa: E731
    out = {
        t: atomic_write_bytes(d / f"{t}.tflite", convert(model, ExportConfig(t, r)))
        for t, r in (("float32", None), ("edge-int8", rep))
    }
    r = export_model(trained_run.out, "edge-int4", d / "edge-int4.tflite")
    assert r.target == "edge-int4" and r.bytes == (d / "edge-int4.tflite").stat().st_size
    return out | {"edge-int4": d / "edge-int4.tflite"}


def _op_kernels(path) -> dict[str, list[str]]:
    """For each CONV_2D / FULLY_CONNECTED / DEPTHWISE_CONV_2D op, the stored type of its
    kernel: the constant itself, or what the DEQUANTIZE feeding it reads."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    types = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    ops = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    m = flatbuffer_utils.read_model_from_bytearray(bytearray(path.read_bytes()))
    sg = m.subgraphs[0]
    op_name = lambda op: ops[m.operatorCodes[op.opcodeIndex].builtinCode]  # noqa: E731
    made_by = {o: op for op in sg.operators for o in op.outputs}
    out: dict[str, list[str]] = {}
    for op in sg.operators:
        name = op_name(op)
        if name in ("CONV_2D", "FULLY_CONNECTED", "DEPTHWISE_CONV_2D"):
            kernel = op.inputs[1]
            src = made_by.get(kernel)
            if src is not None and op_name(src) == "DEQUANTIZE":
                kernel = src.inputs[0]
            out.setdefault(name, []).append(types[sg.tensors[kernel].type])
    return out


def test_int4_kernels_are_stored_in_4_bits(files):
    kernels = _op_kernels(files["edge-int4"])
    # every conv and dense kernel is int4; depthwise kernels have no int4 weight-only
    # kernel in LiteRT and go int8
    assert set(kernels["CONV_2D"]) == {"INT4"} and set(kernels["FULLY_CONNECTED"]) == {"INT4"}
    assert set(kernels.get("DEPTHWISE_CONV_2D", ["INT8"])) == {"INT8"}
    assert "INT4" not in {t for ts in _op_kernels(files["float32"]).values() for t in ts}
    w = weight_bytes(files["edge-int4"].read_bytes())
    assert w["int4"] > 0 and "int4" in inspect_tflite(files["edge-int4"])["weight_bytes"]


def test_int4_is_smaller_than_int8_and_float(files):
    size = {t: p.stat().st_size for t, p in files.items()}
    # measured on this tiny model (~20k weights): int4 0.33x float32 and 0.72x int8, as
    # graph, per-channel parameters and a DEQUANTIZE op per kernel are most of a file this
    # small (its weights are 15 kB of 28 kB); bounds ~10% above those
    assert size["edge-int4"] < 0.36 * size["float32"], size
    assert size["edge-int4"] < 0.8 * size["edge-int8"], size


def test_int4_runs_in_litert_and_agrees_with_float(files, eval_ds):
    task = get_task("classification")
    _, p_float = predict_tflite(files["float32"], eval_ds)
    _, p_int4 = predict_tflite(files["edge-int4"], eval_ds)
    found = agreement(p_float, p_int4, task)
    # int4 weights (16 levels per channel), no fine-tuning, on a tiny model whose top classes
    # are often close and whose training varies run to run (threaded tf.data): measured max
    # |diff| 0.08 to 0.26 in probability, top-1 kept on 12 of 16 clips. The bounds catch a
    # broken kernel (wrong scales or packing give diffs near 1 and chance-level agreement,
    # 1/8 here), not the product's last points of agreement.
    assert found["max_abs_diff"] < 0.4 and found["top1_agreement"] >= 0.6, found

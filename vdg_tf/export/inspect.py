"""`vdg inspect`: what a `.tflite` file holds: ops, tensor dtypes, int8 coverage, weight
bytes by stored type (int4 shows here: LiteRT's tensor list calls it int8), latency.

Read through LiteRT itself, so what is reported is what the runtime will execute.
"""

from __future__ import annotations

import gzip
import statistics
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from vdg_tf._quiet import silenced_stderr
from vdg_tf.export.int4 import weight_bytes
from vdg_tf.results import Result

# ops that only move or convert data: they count for neither side of int8 coverage
_LAYOUT_OPS = {
    "QUANTIZE",
    "DEQUANTIZE",
    "RESHAPE",
    "SQUEEZE",
    "EXPAND_DIMS",
    "TRANSPOSE",
    "CONCATENATION",
    "PACK",
    "UNPACK",
}


def _interpreter(
    path: str | Path, delegates: bool = True, threads: int | None = None
) -> Interpreter:
    """LiteRT interpreter; without default delegates the op list is the file's own."""
    resolver = (
        OpResolverType.AUTO if delegates else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    )
    with warnings.catch_warnings(), silenced_stderr():
        warnings.simplefilter("ignore")
        interp = Interpreter(
            model_path=str(path), num_threads=threads, experimental_op_resolver_type=resolver
        )
        interp.allocate_tensors()
    return interp


def inspect_tflite(path: str | Path) -> dict:
    """Op counts, tensor dtype counts and the fraction of compute ops that run in int8."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such .tflite file")
    data = path.read_bytes()
    interp = _interpreter(path, delegates=False)
    ops = interp._get_ops_details()  # public API has no op list; LiteRT's own accessor
    op_counts = Counter(op["op_name"] for op in ops)
    dtypes = Counter(np.dtype(t["dtype"]).name for t in interp.get_tensor_details())
    compute = [op for op in ops if op["op_name"] not in _LAYOUT_OPS]
    int8 = [op for op in compute if any(np.dtype(t).name == "int8" for t in op["operand_types"])]
    float_ops = Counter(op["op_name"] for op in compute if op not in int8)
    return {
        "path": str(path),
        "bytes": len(data),
        "gzip_bytes": len(gzip.compress(data, 9)),
        "ops": dict(op_counts.most_common()),
        "tensor_dtypes": dict(dtypes.most_common()),
        "int8_op_fraction": len(int8) / len(compute) if compute else 0.0,
        "weight_bytes": weight_bytes(data),
        "float_ops": dict(float_ops.most_common()),
        "inputs": {
            _input_name(d["name"]): [list(map(int, d["shape"])), np.dtype(d["dtype"]).name]
            for d in interp.get_input_details()
        },
    }


@dataclass
class Inspection(Result):
    """What `vdg inspect` reports of a `.tflite` (see `inspect_tflite` for each field);
    `latency_ms` is None unless asked for."""

    path: str
    bytes: int
    gzip_bytes: int
    ops: dict[str, int]
    tensor_dtypes: dict[str, int]
    int8_op_fraction: float
    weight_bytes: dict[str, int]
    float_ops: dict[str, int]
    inputs: dict[str, list]
    latency_ms: float | None = None

    def format(self) -> str:
        text = format_inspection(self.to_dict())
        if self.latency_ms is not None:
            text += f"\n  latency           {self.latency_ms:.3f} ms (LiteRT, median)"
        return text


def inspect_model(file: str | Path, *, latency: bool = False) -> Inspection:
    """`vdg inspect FILE.tflite`: ops, dtypes, int8 coverage and weight bytes of `file`,
    read through LiteRT; `latency` also times one invocation (median, XNNPACK).

    Example:
      inspect_model("exports/model.tflite").int8_op_fraction
    """
    report = Inspection(**inspect_tflite(file))
    if latency:
        report.latency_ms = latency_ms(file)
    return report


def latency_ms(
    path: str | Path,
    runs: int = 30,
    warmup: int = 3,
    threads: int | None = None,
    batch: int = 1,
) -> float:
    """Median wall time of one invocation in LiteRT (XNNPACK on CPU), on zero inputs;
    `batch` > 1 resizes a dynamic batch axis first (the time is for the whole batch)."""
    interp = _interpreter(path, threads=threads)
    details = interp.get_input_details()
    if batch > 1:
        for d in details:
            if d["shape_signature"][0] != -1:
                raise ValueError(f"{path}: input {d['name']} has a fixed batch of {d['shape'][0]}")
            interp.resize_tensor_input(d["index"], [batch, *d["shape"][1:]])
        interp.allocate_tensors()
        details = interp.get_input_details()
    for d in details:
        interp.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
    times = []
    for i in range(warmup + runs):
        t = time.perf_counter()
        interp.invoke()
        if i >= warmup:
            times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def _input_name(tensor_name: str) -> str:
    return tensor_name.removeprefix("serving_default_").split(":")[0]


def format_inspection(r: dict) -> str:
    lines = [f"{r['path']}: {r['bytes']:,} bytes ({r['gzip_bytes']:,} gzip)",
             f"  int8 op fraction  {r['int8_op_fraction']:.2f}",
             "  ops               " + ", ".join(f"{k} x{v}" for k, v in r["ops"].items()),
             "  tensor dtypes     " + ", ".join(f"{k} x{v}" for k, v in r["tensor_dtypes"].items()),
             "  weight bytes      " + ", ".join(f"{k} {v:,}" for k, v in r["weight_bytes"].items())]  # fmt: skip
    if r["float_ops"]:
        lines.append(
            "  float compute ops " + ", ".join(f"{k} x{v}" for k, v in r["float_ops"].items())
        )
    lines += [f"  input {name}: {shape} {dtype}" for name, (shape, dtype) in r["inputs"].items()]
    return "\n".join(lines)

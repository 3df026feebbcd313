"""Weight-only int4 on a converted float32 `.tflite`, with ai-edge-quantizer (`edge-int4`).

The TFLite converter has no int4 mode, so `edge-int4` converts to float32 first and then
rewrites the flatbuffer: the kernels of CONV_2D, FULLY_CONNECTED, BATCH_MATMUL and
EMBEDDING_LOOKUP become int4 (per output channel, symmetric: scale max|w| / 7, the levels
-7..7, as LiteRT's kernels require), each read through a DEQUANTIZE op, so compute stays
float and activations keep their precision. DEPTHWISE_CONV_2D has no int4 weight-only kernel in LiteRT; its
(small) kernels go int8 instead. Ops the quantizer does not cover (GATHER of a text
Embedding, biases) stay float32; `weight_bytes` says how much of a file that is.

It is a size target (storage, download), not a speed one: XNNPACK leaves a convolution
whose filter comes from an int4 DEQUANTIZE to TFLite's builtin float kernels, and the
kernels are dequantized on every call, so on the `small` preset it runs 4.4x slower than
float32 on one CPU thread, at 0.157x its bytes (BENCHMARKS.md, "Compression at scale").
Post-training it can also cost accuracy (-5 points on one `small` model, -1.25 on
another); the `int4_qat` pipeline stage (`compression/quantize_int4.py`) fine-tunes on
exactly this grid first, so the rounding here reproduces its model (the int4 file scored
as float32 did). Use edge-int8 where speed
matters more than bytes.
"""

from __future__ import annotations

import warnings
from collections import Counter

import numpy as np

from vdg_tf._quiet import silenced_stderr

# ops whose weights stay int8: LiteRT has no int4 depthwise kernel (ai-edge-quantizer's
# policy `weightonly_wi8_afp32` adds DEPTHWISE_CONV_2D to the int4 policy's ops)
INT8_OPS = ("DEPTHWISE_CONV_2D",)


def int4_recipe() -> list[dict]:
    """The ai-edge-quantizer recipe: int4 weights where LiteRT has a kernel, int8 elsewhere.

    Later entries win for the ops they name, so the int8 depthwise entry overrides the
    catch-all int4 one only for DEPTHWISE_CONV_2D.
    """
    from ai_edge_quantizer import qtyping, recipe_manager

    manager = recipe_manager.RecipeManager()
    manager.add_weight_only_config(
        regex=".*", operation_name=qtyping.TFLOperationName.ALL_SUPPORTED, num_bits=4
    )
    for op in INT8_OPS:
        manager.add_weight_only_config(
            regex=".*", operation_name=qtyping.TFLOperationName(op), num_bits=8
        )
    return manager.get_quantization_recipe()


def quantize_int4(data: bytes) -> bytes:
    """The float32 `.tflite` `data` with its weights stored in int4 (int8 for depthwise).

    `data` must still carry its tensor names: the quantizer matches ops by them (strip
    names after, not before).
    """
    from ai_edge_quantizer import quantizer

    q = quantizer.Quantizer(bytearray(data), int4_recipe())
    # the quantizer logs each op it skips and a size report; failures still raise
    with silenced_stderr(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = q.quantize(enable_progress_report=False, enable_progress_bar=False)
    return bytes(result.quantized_model)


def weight_bytes(data: bytes) -> dict[str, int]:
    """Bytes of constant tensors (weights, biases, embedded tables) by their stored type.

    Read from the flatbuffer, not LiteRT: the runtime reports int4 tensors as int8.
    Example: `{"int4": 1_184_512, "float32": 52_480, "int8": 20_160, "int32": 40}`.
    """
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    names = {v: k.lower() for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    seen: set[int] = set()  # a buffer shared by two tensors counts once
    out: Counter[str] = Counter()
    for sg in model.subgraphs:
        for tensor in sg.tensors:
            raw = model.buffers[tensor.buffer].data if tensor.buffer else None
            if raw is None or tensor.buffer in seen:
                continue
            seen.add(tensor.buffer)
            out[names[tensor.type]] += int(np.asarray(raw).size)
    return dict(out.most_common())

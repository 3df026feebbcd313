"""The export targets, in one table: what each is for, how it converts and how a report names it.

A pipeline, `vdg export --target` and the config loader all read this table; nothing else
spells a target's name.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    """One TFLite target.

    Attributes:
      name: what users type (`edge-int8`).
      stage: its key in a pipeline report (`tflite_int8`).
      short: its suffix in sweep keys (`sweep_s50_int8`).
      optimize: the converter's default optimizations on (weights quantized or cast).
      float16: weights stored as float16 (GPU delegates compute in fp16).
      int8: integer kernels from calibration data (needs a representative dataset).
      float_fallback: ops with no int8 kernel stay float instead of failing conversion.
      int4: after a float32 conversion, weights rewritten to int4 (int8 for depthwise) by
        ai-edge-quantizer (`export/int4.py`); compute stays float, no calibration.
      help: one line for `--help` and docs.
    """

    name: str
    stage: str
    short: str
    optimize: bool = False
    float16: bool = False
    int8: bool = False
    float_fallback: bool = False
    int4: bool = False
    help: str = ""

    @property
    def calibrated(self) -> bool:
        """Whether conversion needs representative data (and QAT, where a pipeline has it)."""
        return self.int8


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("float32", "tflite_float32", "f32", help="float32 reference"),
        Target("gpu-fp16", "tflite_fp16", "fp16", optimize=True, float16=True,
               help="float16 weights for GPU delegates"),
        Target("cpu-dynamic", "tflite_dynamic", "dyn", optimize=True,
               help="int8 weights, float activations (no calibration)"),
        Target("edge-int8", "tflite_int8", "int8", optimize=True, int8=True,
               help="full int8 for NPUs and microcontrollers (float32 inputs/outputs)"),
        Target("int8-fallback", "tflite_int8_fallback", "int8fb", optimize=True, int8=True,
               float_fallback=True, help="int8 where possible, float elsewhere"),
        Target("edge-int4", "tflite_int4", "int4", int4=True,
               help="int4 weights (int8 depthwise), float compute: the smallest file, slower on CPU"),
    )
}  # fmt: skip


def get_target(name: str, where: str = "export target") -> Target:
    """The target called `name`; an unknown one raises naming the known ones."""
    if name not in TARGETS:
        raise ValueError(f"{where}: unknown '{name}' (known: {', '.join(TARGETS)})")
    return TARGETS[name]

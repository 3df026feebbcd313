"""Per-preset figures: weights, MACs, float32 / int8 TFLite bytes, LiteRT latency per clip.

Each preset (`vdg_tf/models/presets.py`) is built with random weights (bytes, MACs and
latency do not depend on the values), its deployable model (the `fused` output) is
exported to float32 and int8 TFLite (int8 calibrated on a few random clips), and each
file is timed in LiteRT on zero inputs, one clip per invocation, with one thread and
with every core. MACs come from TensorFlow's profiler (its float-operation count of the
batch-1 graph, halved: one multiply-add is two operations).

Run: `python tools/bench_presets.py [--presets tiny small base] [--json]`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf

from vdg_tf.config import Config
from vdg_tf.data.features import log_mel_frames
from vdg_tf.export.inspect import inspect_tflite, latency_ms
from vdg_tf.export.tflite import ExportConfig, convert
from vdg_tf.models import build_classifier, inference_model
from vdg_tf.models.presets import PRESETS


def count_macs(model) -> int:
    """Multiply-adds of one batch-1 forward pass (TF profiler float ops / 2)."""
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )
    from tensorflow.python.profiler.model_analyzer import profile
    from tensorflow.python.profiler.option_builder import ProfileOptionBuilder

    specs = {t.name.split(":")[0]: tf.TensorSpec([1, *t.shape[1:]], t.dtype) for t in model.inputs}
    fn = tf.function(lambda x: model(x, training=False)).get_concrete_function(specs)
    frozen = convert_variables_to_constants_v2(fn)
    opts = ProfileOptionBuilder(ProfileOptionBuilder.float_operation()).with_empty_output().build()
    info = profile(frozen.graph, options=opts)
    return int(info.total_float_ops // 2)


def bench_preset(name: str, classes: int = 10, vocab: int = 400, runs: int = 10) -> dict:
    """One preset's row: weights, MACs, TFLite bytes and LiteRT ms per clip (1 thread, all)."""
    cfg = Config.from_dict({"model": {"preset": name}})
    spec_frames = log_mel_frames(cfg.data.audio)
    model = inference_model(build_classifier(cfg, classes, vocab, spec_frames))
    row = {
        "preset": name,
        "video": f"{cfg.model.video_backbone}, {cfg.data.video.frames}x{cfg.data.video.size}px",
        "audio": cfg.model.audio_backbone,
        "weights": int(model.count_params()),
        "macs": count_macs(model),
    }
    rng = np.random.default_rng(0)

    def representative():
        for _ in range(4):
            yield {
                t.name.split(":")[0]: (
                    rng.integers(1, vocab, (1, *t.shape[1:])).astype(np.int32)
                    if t.dtype == tf.int32
                    else rng.random((1, *t.shape[1:]), dtype=np.float32)
                )
                for t in model.inputs
            }

    with tempfile.TemporaryDirectory() as tmp:
        for target in ("float32", "edge-int8"):
            path = Path(tmp) / f"{target}.tflite"
            rep = representative if target == "edge-int8" else None
            path.write_bytes(convert(model, ExportConfig(target, rep)))
            key = "int8" if target == "edge-int8" else "float32"
            row[f"{key}_bytes"] = path.stat().st_size
            row[f"{key}_int8_op_fraction"] = round(inspect_tflite(path)["int8_op_fraction"], 2)
            row[f"{key}_ms_1thread"] = round(latency_ms(path, runs=runs, threads=1), 2)
            row[f"{key}_ms_all"] = round(latency_ms(path, runs=runs, threads=os.cpu_count()), 2)
    return row


def bench_presets(names: list[str] | None = None, runs: int = 10) -> list[dict]:
    """Rows of `bench_preset` for `names` (all presets by default)."""
    return [bench_preset(n, runs=runs) for n in (names or list(PRESETS))]


def format_table(rows: list[dict]) -> str:
    """A Markdown table of the rows, as BENCHMARKS.md shows them."""
    head = (
        "| preset | video | audio | weights | MACs / clip | float32 bytes | int8 bytes "
        "| int8/float32 bytes | float32 ms (1 thread / all) | int8 ms (1 thread / all) |\n"
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
    )
    lines = [
        f"| {r['preset']} | {r['video']} | {r['audio']} | {r['weights']:,} | "
        f"{r['macs'] / 1e6:,.1f} M | {r['float32_bytes']:,} | {r['int8_bytes']:,} | "
        f"{r['int8_bytes'] / r['float32_bytes']:.2f} | "
        f"{r['float32_ms_1thread']} / {r['float32_ms_all']} | "
        f"{r['int8_ms_1thread']} / {r['int8_ms_all']} |"
        for r in rows
    ]
    return head + "\n".join(lines)

"""`vdg export --target auto`: the fastest target on this machine that still agrees with float.

Which export runs fastest depends on the CPU: the same int8 file was 0.44x float32's
latency on an AMD EPYC and 1.4x on an Intel Xeon with AVX512-VNNI. So each candidate
target is exported, timed here in LiteRT (batch 1, with LiteRT's default threads as
`vdg predict` runs it, median of 30 invocations after 3 warm-up ones) and run over `data` beside float32.
The fastest candidate whose agreement with float32 meets the tolerance is exported to
`out`. Agreement is the task's own measure: the share of samples with the same decision
(top-1 class, label set, level), or, for a task whose output is a value (regression,
anomaly score), 1 - the largest |difference| over the float outputs' range.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np

from vdg_tf.bundle import Bundle
from vdg_tf.data.inputs import resolve_data
from vdg_tf.data.sources import dataset_from
from vdg_tf.export.inspect import latency_ms
from vdg_tf.export.verify import agreement, predict_tflite

log = logging.getLogger(__name__)

CANDIDATES = ("float32", "gpu-fp16", "cpu-dynamic", "edge-int8")
REFERENCE = "float32"


def agreement_score(reference: np.ndarray, other: np.ndarray, task) -> float:
    """How far `other` agrees with `reference` (module doc): 1.0 is identical."""
    found = agreement(reference, other, task)
    if "top1_agreement" in found:
        return found["top1_agreement"]
    span = float(np.ptp(reference)) if len(reference) else 0.0
    return (
        max(0.0, 1.0 - found["max_abs_diff"] / span) if span else float(found["max_abs_diff"] == 0)
    )


def choose(candidates: list[dict], tolerance: float) -> str:
    """The target of the fastest candidate (`ms`) whose `agreement` >= `tolerance`;
    float32, the reference, always qualifies. Marks each candidate's `within_tolerance`."""
    for c in candidates:
        c["within_tolerance"] = c["target"] == REFERENCE or c["agreement"] >= tolerance
    kept = [c for c in candidates if c["within_tolerance"]]
    if not kept:
        raise ValueError("--target auto: no candidate, not even float32, could be measured")
    return min(kept, key=lambda c: (c["ms"], c["bytes"]))["target"]


def measure_candidates(
    bundle: Bundle,
    data: str | Path,
    targets: tuple[str, ...] = CANDIDATES,
    *,
    calibration_samples: int = 64,
    threads: int | None = None,
) -> list[dict]:
    """Each target exported to a temp folder and measured: {target, ms, bytes, agreement}."""
    from vdg_tf.export.api import export  # the one export path (api imports this module)

    targets = (REFERENCE, *(t for t in targets if t != REFERENCE))
    out, outputs = [], {}
    with tempfile.TemporaryDirectory(prefix="vdg-auto-") as work:
        manifest = resolve_data(data, work, "--data")
        ds = dataset_from(manifest, bundle.config.data, bundle.labels, bundle.tokenizer)
        for target in targets:
            path = Path(work) / f"{target}.tflite"
            r = export(bundle, target, path, data=manifest,
                       calibration_samples=calibration_samples)  # fmt: skip
            log.info("timing %s and running it over the data", target)
            outputs[target] = predict_tflite(path, ds)[1]
            out.append({
                "target": target,
                "ms": latency_ms(path, threads=threads),
                "bytes": r.bytes,
                "agreement": agreement_score(outputs[REFERENCE], outputs[target], bundle.task),
            })  # fmt: skip
    return out

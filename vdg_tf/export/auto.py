"""`vdg export --target auto`: the fastest target on this machine that still agrees with float.

Which export runs fastest depends on the CPU: the same int8 file was 0.44x float32's
latency on an AMD EPYC and 1.4x on an Intel Xeon with AVX512-VNNI. So each candidate
target is exported with the batch axis asked for, timed here in LiteRT (with LiteRT's
default threads as `vdg predict` runs it, median of 30 invocations after 3 warm-up ones)
and run over `data` beside float32. `ms` is the latency of one window (batch 1), what a
live feed waits for and what the choice is made on; a dynamic-batch export is also timed
at the batch `vdg predict` runs a file's windows in (`batch`, `ms_per_window_batch`), its
offline throughput. The fastest candidate whose agreement with float32 meets the
tolerance is exported to `out`. Agreement is the task's own measure: the share of samples with the same decision
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
from vdg_tf.export.litert import PREDICT_BATCH
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
    float32, the reference, always qualifies and one with an `error` never does. Marks
    each candidate's `within_tolerance`."""
    for c in candidates:
        ok = "error" not in c and (c["target"] == REFERENCE or c["agreement"] >= tolerance)
        c["within_tolerance"] = ok
    kept = [c for c in candidates if c["within_tolerance"]]
    if not kept:
        raise ValueError("--target auto: no candidate, not even float32, could be measured")
    return min(kept, key=lambda c: (c["ms"], c["bytes"]))["target"]


def measure_candidates(
    bundle: Bundle,
    data: str | Path,
    targets: tuple[str, ...] = CANDIDATES,
    *,
    batch: int | None = 1,
    calibration_samples: int = 64,
    samples: int = 256,
) -> list[dict]:
    """Each target exported (batch axis `batch`, None: dynamic) to a temp folder and
    measured on up to `samples` clips of `data`: {target, ms, bytes, agreement, and for a
    dynamic batch `batch`, `ms_per_window_batch`}; a target that fails to convert or run
    is kept with its `error` and never chosen."""
    targets = (REFERENCE, *(t for t in targets if t != REFERENCE))
    out, reference = [], None
    with tempfile.TemporaryDirectory(prefix="vdg-auto-") as work:
        manifest = resolve_data(data, work, "--data")
        ds = dataset_from(manifest, bundle.config.data, bundle.labels, bundle.tokenizer)
        ds = ds.take(-(-samples // bundle.config.data.batch_size))
        for target in targets:
            try:
                row, outputs = _measure(bundle, target, Path(work), manifest, ds,
                                        calibration_samples, batch)  # fmt: skip
            except (ValueError, RuntimeError) as e:  # a converter or LiteRT refusal
                if target == REFERENCE:
                    raise
                log.warning("--target auto: %s left out: %s", target, e)
                out.append({"target": target, "error": " ".join(str(e).split())[:300]})
                continue
            if reference is None:
                if not len(outputs):
                    raise ValueError(f"--data {data}: no clip could be decoded to measure on")
                reference = outputs
            row["agreement"] = agreement_score(reference, outputs, bundle.task)
            out.append(row)
    return out


def _measure(bundle, target: str, work: Path, manifest, ds, calibration_samples: int, batch):
    """One target exported into `work`, timed, and run over `ds`: (row, outputs)."""
    from vdg_tf.export.api import export  # the one export path (api imports this module)

    path = work / f"{target}.tflite"
    r = export(bundle, target, path, data=manifest, calibration_samples=calibration_samples,
               batch=batch)  # fmt: skip
    log.info("timing %s and running it over the data", target)
    outputs = predict_tflite(path, ds)[1]
    row = {"target": target, "ms": latency_ms(path), "bytes": r.bytes}
    if batch is None:
        try:
            ms = latency_ms(path, batch=PREDICT_BATCH)
        except ValueError as e:  # an input whose batch stayed fixed: batch 1 only
            log.warning("--target auto: %s not timed at batch %d: %s", target, PREDICT_BATCH, e)
        else:
            row.update(batch=PREDICT_BATCH, ms_per_window_batch=ms / PREDICT_BATCH)
    return row, outputs

"""`vdg benchmark stream MODEL VIDEO`: how fast a model follows a video, decode included.

One run measures, side by side on this machine: the decode-only pass (windows/s), and
for the float32 and int8 exports in LiteRT, on one core and on all cores, the whole
predict loop (decode, features, model) per window and the real-time factor: seconds of
video covered per second of wall time, at stride = window / 4 unless told otherwise.
Incremental (ring-buffer) inference is not split out of the models yet, so its figure
is reported as missing rather than guessed.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from vdg_tf.export.litert import LiteRTModel
from vdg_tf.export.tflite import ExportConfig, convert
from vdg_tf.files import atomic_write_bytes
from vdg_tf.media.windows import read_windows
from vdg_tf.models.builder import inference_model
from vdg_tf.runtime.predict import Predictor


@contextlib.contextmanager
def cores(n: int | None) -> Iterator[int]:
    """Run the block on the first `n` cores (all when None); yields the count used."""
    everything = os.sched_getaffinity(0)
    use = sorted(everything)[:n] if n else sorted(everything)
    os.sched_setaffinity(0, set(use))
    try:
        yield len(use)
    finally:
        os.sched_setaffinity(0, everything)


def _representative(predictor: Predictor, video: str, window: float, stride: float, count: int):
    """Calibration inputs for int8: the model inputs of the video's own first windows."""
    cfg = predictor.bundle.config.data
    out = []
    for w in read_windows(video, cfg.video, cfg.audio, window, stride):
        x = predictor.inputs([w], [""])
        out.append(x)
        if len(out) == count:
            break
    return out


def _pass(predictor, video, window, stride, run: Callable | None) -> dict:
    """One pass over the video: decode (+ features + model when `run`); wall time, windows
    and the median model time of a window."""
    cfg = predictor.bundle.config.data
    model_ms, n, covered = [], 0, 0.0
    t0 = time.perf_counter()
    for w in read_windows(video, cfg.video, cfg.audio, window, stride):
        if run is not None:
            x = predictor.inputs([w], [""])
            t = time.perf_counter()
            run(x)
            model_ms.append((time.perf_counter() - t) * 1000)
        n, covered = n + 1, w.end
    wall = time.perf_counter() - t0
    return {
        "windows": n,
        "seconds_of_video": covered,
        "wall_s": wall,
        "ms_per_window": 1000 * wall / max(n, 1),
        "model_ms_per_window": statistics.median(model_ms) if model_ms else 0.0,
        "realtime_factor": covered / wall if wall else 0.0,
    }


def run_stream_benchmark(
    model: str | Path,
    video: str | Path,
    window: float | None = None,
    stride: float | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Every figure in one run (see the module docstring); `model` is a run folder."""
    predictor = Predictor(model)
    cfg = predictor.bundle.config.data
    window = window or cfg.audio.seconds
    stride = stride or window / 4
    video = str(video)
    result: dict = {"window_s": window, "stride_s": stride, "cores": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        log("exporting float32 and int8 (calibrated on the video's own windows)")
        rep = _representative(predictor, video, window, stride, 32)
        paths, keras_model = {}, inference_model(predictor.bundle.model)
        for target in ("float32", "edge-int8"):
            paths[target] = Path(tmp) / f"{target}.tflite"
            data = convert(keras_model, ExportConfig(target, lambda: iter(rep)))
            atomic_write_bytes(paths[target], data)
        for n_cores in (1, None):
            with cores(n_cores) as used:
                tag = f"{used}core"
                log(f"decode-only pass on {used} core(s)")
                result[f"decode_only_{tag}"] = _pass(predictor, video, window, stride, None)
                for target, path in paths.items():
                    m = LiteRTModel(path, num_threads=used)
                    feed = lambda x, m=m: m.runner(**{k: x[k] for k in m.input_details})  # noqa: E731
                    log(f"{target} on {used} core(s)")
                    result[f"{target}_{tag}"] = _pass(predictor, video, window, stride, feed)
    one = result["edge-int8_1core"]
    result["full_ms_per_window"] = one["ms_per_window"]
    result["realtime_factor"] = one["realtime_factor"]
    result["incremental_ms_per_window"] = None  # encoders are not split per frame yet
    return result


def format_stream_benchmark(r: dict) -> str:
    """The figures as a person reads them."""
    lines = [
        f"window {r['window_s']:.2f} s every {r['stride_s']:.2f} s; this machine has {r['cores']} cores"
    ]
    for key, v in r.items():
        if isinstance(v, dict):
            what = (
                key.replace("_", " ")
                .replace("1core", "on 1 core")
                .replace(f"{r['cores']}core", f"on {r['cores']} cores")
            )
            model = f", model {v['model_ms_per_window']:.2f} ms" if v["model_ms_per_window"] else ""
            lines.append(
                f"  {what:<28} {v['ms_per_window']:7.2f} ms a window{model}: "
                f"{v['realtime_factor']:6.1f}x real time ({v['windows']} windows, {v['seconds_of_video']:.0f} s of video)"
            )
    lines.append(
        "  incremental (ring-buffer) inference: not available yet (encoders are not split)"
    )
    return "\n".join(lines)

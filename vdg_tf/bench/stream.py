"""`vdg benchmark stream MODEL VIDEO`: how fast a model follows a video, decode included.

One run measures, side by side on this machine: the decode-only pass (windows/s), and
for the float32 and int8 exports of a run folder (or the one `.tflite` given) in LiteRT, on one core and on all cores, the whole
predict loop (decode, features, model) per window and the real-time factor: seconds of
video covered per second of wall time, at stride = window / 4 unless told otherwise.

When the model splits per frame (`model.video_frames: independent` or `causal`, or a video
backbone),
each export is the four-signature incremental `.tflite` (`vdg_tf/export/incremental.py`)
and every float32/int8 x cores pass is run twice on the same file: full re-inference
(`serving_default`, the whole window) and incremental (the ring buffer of
`vdg_tf/runtime/incremental.py`: `encode_frame` on new frames only, `encode_audio`,
`head`; a causal encoder carries its motion state, `vdg_tf/runtime/stream_state.py`), with the
time of each signature per window and the top-1 agreement of the two.
A model that cannot split reports why instead of an incremental figure. A `.tflite` is
measured as it is: whole windows, plus incremental when it is an incremental export.
"""

from __future__ import annotations

import contextlib
import logging
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vdg_tf.export.incremental import convert_incremental
from vdg_tf.export.litert import LiteRTModel
from vdg_tf.export.tflite import ExportConfig, convert
from vdg_tf.export.verify import agreement
from vdg_tf.files import atomic_write_bytes
from vdg_tf.media.windows import Window, read_windows
from vdg_tf.models.builder import inference_model
from vdg_tf.models.serving import OUTPUT_NAME
from vdg_tf.results import Result
from vdg_tf.runtime.incremental import LiteRTParts, incremental_reason
from vdg_tf.runtime.predict import Predictor
from vdg_tf.runtime.segments import find_segments
from vdg_tf.runtime.stream_state import make_runner

Run = Callable[[dict, Window], np.ndarray]
log = logging.getLogger(__name__)


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


def _pass(predictor, video, window, stride, run: Run | None) -> tuple[dict, np.ndarray]:
    """One pass over the video: decode (+ features + model when `run`); wall time, windows,
    the median model time of a window, and the model's outputs (one row a window)."""
    cfg = predictor.bundle.config.data
    model_ms, outputs, n, covered = [], [], 0, 0.0
    t0 = time.perf_counter()
    for w in read_windows(video, cfg.video, cfg.audio, window, stride):
        if run is not None:
            x = predictor.inputs([w], [""])
            t = time.perf_counter()
            outputs.append(run(x, w))
            model_ms.append((time.perf_counter() - t) * 1000)
        n, covered = n + 1, w.end
    wall = time.perf_counter() - t0
    figures = {
        "windows": n,
        "seconds_of_video": covered,
        "wall_s": wall,
        "ms_per_window": 1000 * wall / max(n, 1),
        "model_ms_per_window": statistics.median(model_ms) if model_ms else 0.0,
        "realtime_factor": covered / wall if wall else 0.0,
    }
    return figures, (np.concatenate(outputs) if outputs else np.zeros((0, 0)))


class _Timed:
    """Incremental parts that record the milliseconds of each signature call, so a pass
    can say where an incremental window's time goes (frames, audio, head)."""

    def __init__(self, parts: LiteRTParts):
        self.parts, self.frames, self.has_audio = parts, parts.frames, parts.has_audio
        self.state_shape = parts.state_shape  # a causal encoder's stream state, or None
        self.ms: dict[str, list[float]] = {"encode_frame": [], "encode_audio": [], "head": []}

    def _timed(self, name: str, *args):
        t = time.perf_counter()
        out = getattr(self.parts, name)(*args)
        self.ms[name].append((time.perf_counter() - t) * 1000)
        return out

    def encode_frame(self, frames):
        return self._timed("encode_frame", frames)

    def encode_chunk(self, frames, state):
        t = time.perf_counter()
        out = self.parts.encode_chunk(frames, state)
        self.ms["encode_frame"].append((time.perf_counter() - t) * 1000)
        return out

    def encode_audio(self, audio):
        return self._timed("encode_audio", audio)

    def head(self, feed):
        return self._timed("head", feed)

    def per_window(self, windows: int) -> dict[str, float]:
        """Mean ms a window of each signature (encode_frame runs on some windows only)."""
        return {f"{k}_ms": sum(v) / max(windows, 1) for k, v in self.ms.items() if v}


def _full_run(path: Path, threads: int) -> Run:
    m = LiteRTModel(path, num_threads=threads)
    return lambda x, w: np.asarray(m.runner(**{k: x[k] for k in m.input_details})[OUTPUT_NAME])


def _export(predictor: Predictor, rep: list, splits: bool, folder: str) -> dict[str, Path]:
    """float32 and int8 files of the model: the incremental export when it splits."""
    paths, model = {}, inference_model(predictor.bundle.model)
    for target in ("float32", "edge-int8"):
        cfg = ExportConfig(target, lambda: iter(rep))
        paths[target] = Path(folder) / f"{target}.tflite"
        data = convert_incremental(model, cfg) if splits else convert(model, cfg)
        atomic_write_bytes(paths[target], data)
    return paths


@dataclass
class StreamBenchmark(Result):
    """The figures of `vdg benchmark stream` (see the module docstring).

    Attributes:
      model: what was measured: a run folder (its float32 and int8 exports) or a `.tflite`.
      window_s, stride_s: the windows; cores: this machine's.
      incremental: "on", or why the model or file cannot run incrementally.
      full_ms_per_window, realtime_factor: the whole predict loop on one core, whole
        windows, of the int8 export (of the `.tflite` given).
      incremental_ms_per_window: the same with the ring buffer, or None.
      passes: every pass by name (`decode_only_1core`, `edge-int8_2core`,
        `float32_incremental_1core`, `tflite_1core`, ...): windows, seconds of video, wall
        time, ms a window, model ms a window (median), real-time factor.
      incremental_vs_full: per export, the model-time ratio and agreement of the two.
      segments_ms_per_window: what `vdg predict --segments` adds a window: finding the
        segments in the main pass's window scores (median of 5), beside its whole loop.
    """

    model: str
    window_s: float
    stride_s: float
    cores: int
    incremental: str
    full_ms_per_window: float
    realtime_factor: float
    incremental_ms_per_window: float | None
    passes: dict[str, dict] = field(default_factory=dict)
    incremental_vs_full: dict[str, dict] = field(default_factory=dict)
    segments_ms_per_window: float = 0.0

    def format(self) -> str:
        return format_stream_benchmark(self)


def run_stream_benchmark(
    model: str | Path,
    video: str | Path,
    *,
    window: float | None = None,
    stride: float | None = None,
) -> StreamBenchmark:
    """Every figure in one run (see the module docstring).

    `model`: a run folder or `.keras` (its float32 and int8 exports are made, calibrated on
    the video's own windows, and measured) or a `.tflite` (measured as it is: whole windows,
    and incremental too when it has the signatures of `vdg export --incremental`).
    """
    tflite = Path(model).suffix == ".tflite"
    if tflite:
        _check_features_model(Path(model))
    predictor = Predictor(model, incremental=False)
    cfg = predictor.bundle.config.data
    window = window or cfg.audio.seconds
    stride = stride or window / 4
    video = str(video)
    reason = incremental_reason(Path(model) if tflite else predictor.bundle.model)
    with tempfile.TemporaryDirectory() as tmp:
        if tflite:
            paths = {"tflite": Path(model)}
        else:
            log.info("exporting float32 and int8 (calibrated on the video's own windows)")
            rep = _representative(predictor, video, window, stride, 32)
            paths = _export(predictor, rep, reason is None, tmp)
        passes, outputs = _measure(predictor, video, (window, stride), paths, reason is None)
    main = "tflite" if tflite else "edge-int8"
    inc = passes.get(f"{main}_incremental_1core")
    return StreamBenchmark(
        model=str(model),
        window_s=window,
        stride_s=stride,
        cores=os.cpu_count(),
        incremental=reason or "on",
        full_ms_per_window=passes[f"{main}_1core"]["ms_per_window"],
        realtime_factor=passes[f"{main}_1core"]["realtime_factor"],
        incremental_ms_per_window=inc["ms_per_window"] if inc else None,
        passes=passes,
        incremental_vs_full=_comparisons(passes, outputs, paths, predictor) if inc else {},
        segments_ms_per_window=_segments_cost(predictor, outputs[f"{main}_1core"], window, stride),
    )


def _segments_cost(
    predictor: Predictor, outputs: np.ndarray, window: float, stride: float
) -> float:
    """Milliseconds a window that `--segments` adds: `find_segments` over a pass's window
    scores (every series of the task), the median of 5 runs, per window."""
    series = predictor.task.series(outputs, predictor.labels)
    names = list(series)
    if not len(outputs) or not names:
        return 0.0
    scores = np.stack([np.asarray(series[n], float) for n in names], 1)
    starts = np.arange(len(scores)) * stride
    runs = []
    for _ in range(5):
        t = time.perf_counter()
        find_segments(starts, starts + window, scores, names)
        runs.append((time.perf_counter() - t) * 1000)
    return statistics.median(runs) / len(scores)


def _check_features_model(path: Path) -> None:
    """Refuse, in one line, a `.tflite` this benchmark cannot feed."""
    if LiteRTModel(path).raw_media:
        raise ValueError(
            f"{path}: a --preprocess export (raw frames and waveform in); benchmark stream "
            "feeds the pipeline's features: give the run folder or a plain export"
        )


def _measure(predictor, video: str, spans: tuple[float, float], paths: dict, splits: bool):
    """Decode-only, then each file whole-window (and incremental when `splits`), on one
    core and on all: ({pass name: figures}, {pass name: outputs})."""
    window, stride = spans
    passes, outputs = {}, {}
    for n_cores in (1, None):
        with cores(n_cores) as used:
            tag = f"{used}core"
            log.info("decode-only pass on %d core(s)", used)
            passes[f"decode_only_{tag}"] = _pass(predictor, video, window, stride, None)[0]
            for name, path in paths.items():
                log.info("%s on %d core(s)", name, used)
                run = _full_run(path, used)
                key = f"{name}_{tag}"
                passes[key], outputs[key] = _pass(predictor, video, window, stride, run)
                if splits:
                    log.info("%s incremental on %d core(s)", name, used)
                    key = f"{name}_incremental_{tag}"
                    passes[key], outputs[key] = _incremental_pass(
                        predictor, video, window, stride, path, used
                    )
    return passes, outputs


def _comparisons(passes: dict, outputs: dict, paths: dict, predictor) -> dict[str, dict]:
    """Per file, on one core: incremental model time over full, and their agreement."""
    out = {}
    for name in paths:
        full, part = f"{name}_1core", f"{name}_incremental_1core"
        same = agreement(outputs[full], outputs[part], predictor.task)
        out[name] = {
            "model_ms_ratio": passes[part]["model_ms_per_window"]
            / passes[full]["model_ms_per_window"],
            "top1_agreement": same.get("top1_agreement"),
            "max_abs_diff": same["max_abs_diff"],
        }
    return out


def _incremental_pass(predictor, video, window, stride, path: Path, threads: int):
    """A pass with the ring buffer over the file's incremental signatures."""
    parts = _Timed(LiteRTParts(path, num_threads=threads))
    runner = make_runner(parts, predictor.bundle.config.data.video)
    figures, outputs = _pass(predictor, video, window, stride, lambda x, w: runner.outputs(x, [w]))
    figures |= parts.per_window(figures["windows"])
    figures["frames_encoded"], figures["frames_reused"] = runner.encoded, runner.reused
    return figures, outputs


def format_stream_benchmark(r: StreamBenchmark) -> str:
    """The figures as a person reads them."""
    lines = [
        f"{r.model}: window {r.window_s:.2f} s every {r.stride_s:.2f} s; "
        f"this machine has {r.cores} cores"
    ]
    for key, v in r.passes.items():
        what = (
            key.replace("_", " ")
            .replace("1core", "on 1 core")
            .replace(f"{r.cores}core", f"on {r.cores} cores")
        )
        model = f", model {v['model_ms_per_window']:.2f} ms" if v["model_ms_per_window"] else ""
        lines.append(
            f"  {what:<36} {v['ms_per_window']:7.2f} ms a window{model}: "
            f"{v['realtime_factor']:6.1f}x real time ({v['windows']} windows, "
            f"{v['seconds_of_video']:.0f} s of video)"
        )
        split = [f"{k.removesuffix('_ms')} {v[k]:.3f}" for k in v if k.endswith("_ms")]
        if split:
            lines.append(f"  {'':<36} ms a window by signature: {', '.join(split)}")
    if r.incremental != "on":
        lines.append(f"  incremental (ring-buffer) inference: off, {r.incremental}")
    main = r.passes.get("tflite_1core") or r.passes.get("edge-int8_1core")
    if main and r.segments_ms_per_window:
        lines.append(
            f"  --segments adds {r.segments_ms_per_window:.4f} ms a window "
            f"({r.segments_ms_per_window / main['ms_per_window']:.2%} of the 1-core loop)"
        )
    for name, c in r.incremental_vs_full.items():
        lines.append(
            f"  {name} incremental / full model time (1 core): {c['model_ms_ratio']:.2f}x "
            f"(target <= 0.35x); top-1 agreement {c['top1_agreement']:.1%}, "
            f"max |diff| {c['max_abs_diff']:.4f}"
        )
    return "\n".join(lines)

"""`vdg predict`: a trained or exported model on new video, window by window.

Each input (a video file of any length, a manifest, `-` or a URL with `stream=True`) is
decoded once into windows (`vdg_tf.media.windows`), turned into model inputs by the same
feature code training uses (`data.pipeline.fixed_features` + `model_inputs`, no
augmentation), run through the model (Keras, or LiteRT for a `.tflite`) and read back by
the task: `top` labels with scores for classification, labels, a value, or an anomaly
score. With `realtime`, windows that arrive while the model is busy are dropped (counted),
never queued without bound. A model that splits per frame (an `--incremental` `.tflite`,
or a Keras model with `model.video_frames: independent` or a video backbone) runs
incrementally by default (`vdg_tf/runtime/incremental.py`): each frame is encoded once;
other models fall back to whole windows with one line saying why.

`predict` returns a `PredictRun` (records, one summary per source, what was skipped) and
hands each record to `on_record` as it is made, which is how `vdg predict` streams them.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import tensorflow as tf

from vdg_tf.bundle import Bundle
from vdg_tf.data.pipeline import fixed_features, model_inputs
from vdg_tf.export.litert import PREDICT_BATCH
from vdg_tf.manifest import read_manifest
from vdg_tf.media.decode import DecodeError, sample_times
from vdg_tf.media.windows import Window, Windows, read_windows
from vdg_tf.results import Result
from vdg_tf.runtime.detect import is_box_model
from vdg_tf.runtime.evaluate import load_for_inference
from vdg_tf.runtime.events import EventTracker
from vdg_tf.runtime.incremental import (
    IncrementalRunner,
    KerasParts,
    LiteRTParts,
    incremental_reason,
)
from vdg_tf.runtime.segments import find_segments, is_segment
from vdg_tf.runtime.stream_state import CausalRunner, make_runner

log = logging.getLogger(__name__)

FRAME_WINDOW_S = 0.25  # a per-frame task's default window, per model frame


@dataclass
class Job:
    """One thing to predict on: a source, optionally a span of it, and its text."""

    source: str
    text: str = ""
    start: float | None = None
    end: float | None = None

    @property
    def where(self) -> str:
        """`clip.mp4`, or `clip.mp4 [100-110 s]` for a manifest row's span."""
        if self.start is None and self.end is None:
            return self.source
        end = "end" if self.end is None else f"{self.end:g}"
        return f"{self.source} [{self.start or 0:g}-{end} s]"


@dataclass
class Events:
    """Event detection settings: the series to `watch` (labels; None: the task's only
    series, e.g. the anomaly score), hysteresis thresholds and smoothing in windows.

    `on` None: the model's own decision threshold where training chose one on validation
    data (anomaly: `bundle.json` `threshold`), else 0.5.
    """

    watch: list[str | None] = field(default_factory=list)
    on: float | None = None
    off: float | None = None  # default: 0.8 * on
    smooth: int = 3

    def trackers(self, model_threshold: float | None = None) -> list[EventTracker]:
        on = next(t for t in (self.on, model_threshold, 0.5) if t is not None)
        off = self.off if self.off is not None else 0.8 * on
        return [EventTracker(w or "", on, off, self.smooth) for w in self.watch]


@dataclass
class PredictRun(Result):
    """What `predict` made: `records` (one per window, plus event records), in order, as
    `vdg predict --json` prints them; per source a summary (`source`, `span`, `windows`,
    `ended`: end, stalled, cut short, failed, no windows or interrupted; `note`);
    `skipped`: one line per source or manifest row that gave no window, and why.
    """

    records: list[dict] = field(default_factory=list)
    windows: int = 0
    dropped: int = 0
    sources: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    interrupted: bool = False
    csv: str | None = None
    plot: str | None = None
    frames: int = 0  # frames a detection model found boxes in (one record each)
    video: str | None = None  # the video written with boxes drawn (`draw`)
    # per window: source, start, end and the task's score series (for the plot)
    timeline: list = field(default_factory=list, metadata={"json": False})
    # seconds from each window's last frame arriving to its prediction (live feeds)
    latencies: list = field(default_factory=list, metadata={"json": False})

    @property
    def failed(self) -> list[str]:
        """The sources that could not be decoded, as one line each."""
        return [s["note"] for s in self.sources if s["ended"] == "failed"]

    def format(self) -> str:
        """One summary line, then a line per source that did not simply end."""
        line = f"predicted {self.windows} windows"
        if self.frames:
            line = f"found boxes in {self.frames} frames" + (f"; drew {self.video}" if self.video
                                                              else "")  # fmt: skip
        if self.dropped:
            line += f"; dropped {self.dropped} that arrived while the model was busy (--realtime)"
        if self.failed:
            line += f"; {len(self.failed)} source(s) failed: " + "; ".join(self.failed[:3])
        if self.interrupted:
            line += "; stopped (Ctrl-C)"
        lines = [line]
        for s in self.sources:
            if "latency_p95_ms" in s and len(self.sources) > 1:  # live feeds: one line each
                lines.append(_feed_line(s))
            elif s["ended"] not in ("end", "failed"):
                note = f" ({s['note']})" if s["note"] else ""
                where = Job(s["source"], "", *(s["span"] or (None, None))).where
                lines.append(f"  {where}: {s['windows']} windows, ended: {s['ended']}{note}")
        return "\n".join(lines)


def _feed_line(s: dict) -> str:
    """`  door: 118 windows, 2 dropped, latency p50 41 / p95 90 ms, ended: stalled (...)`."""
    line = f"  {s['source']}: {s['windows']} windows"
    if s["dropped"]:
        line += f", {s['dropped']} dropped"
    if s["latency_p95_ms"] is not None:
        line += f", latency p50 {s['latency_p50_ms']:g} / p95 {s['latency_p95_ms']:g} ms"
    line += f", ended: {s['ended']}"
    return line + (f" ({s['note']})" if s["note"] else "")


class Predictor:
    """A model (run folder, Bundle, `.keras` or `.tflite`) that maps windows to task
    predictions.

    `incremental`: None runs incrementally when the model splits per frame and says in
    one line (the `vdg_tf` log) when it cannot; True is the same; False always runs whole
    windows. `self.incremental` is the ring-buffer runner, or None. `trust_model`: load
    a Keras format that can run code (see `Bundle.load`).
    """

    def __init__(
        self,
        model: str | Path | Bundle,
        top: int = 3,
        incremental: bool | None = None,
        trust_model: bool = False,
    ):
        if isinstance(model, Bundle):
            from vdg_tf.models.builder import inference_model
            from vdg_tf.training.evaluate import predict_dataset

            keras_model = inference_model(model.model)
            self.bundle, self._run = model, lambda ds: predict_dataset(keras_model, ds)
        else:
            self.bundle, self._run = load_for_inference(model, trust_model)
        self.model_path = None if isinstance(model, Bundle) else Path(model)
        self.incremental = None if incremental is False else self._incremental(model)
        self.task, self.labels, self.top = self.bundle.task, self.bundle.labels, top
        cfg, tok = self.bundle.config.data, self.bundle.tokenizer

        @tf.function(reduce_retracing=True)
        def features(frames, samples, audio_mask, text):
            clip = {"frames": frames, "samples": samples, "audio_mask": audio_mask, "text": text}
            return model_inputs(fixed_features(clip, cfg, tok, mel=True), cfg)

        self._features = features

    def _incremental(self, model: str | Path | Bundle) -> IncrementalRunner | CausalRunner | None:
        """The ring-buffer runner for `model`, or None after a one-line reason (logged)."""
        tflite = not isinstance(model, Bundle) and Path(model).suffix == ".tflite"
        if self.bundle.task.per_frame:
            return None  # every frame is its own answer: nothing carries across windows
        reason = incremental_reason(model if tflite else self.bundle.model)
        if reason:
            name = Path(model).name if not isinstance(model, Bundle) else "model"
            log.info(
                "%s: incremental inference off: %s; every window runs the whole model",
                name,
                reason,
            )
            return None
        parts = LiteRTParts(model) if tflite else KerasParts(self.bundle.model)
        return make_runner(parts, self.bundle.config.data.video)

    def reset(self) -> None:
        """Forget cached frames: the next window starts a new source."""
        if self.incremental is not None:
            self.incremental.reset()

    def inputs(self, windows: list[Window], texts: list[str]) -> dict[str, np.ndarray]:
        """The model inputs of a batch of windows, exactly as training builds them."""
        out = self._features(
            tf.constant(np.stack([w.frames for w in windows])),
            tf.constant(np.stack([w.audio for w in windows])),
            tf.constant([float(w.has_audio) for w in windows], tf.float32),
            tf.constant(texts, tf.string),
        )
        return {k: v.numpy() for k, v in out.items()}

    def outputs(self, windows: list[Window], texts: list[str]) -> np.ndarray:
        """The fused outputs of a batch of windows (consecutive windows of one source
        when incremental)."""
        x = self.inputs(windows, texts)
        if self.incremental is not None:
            return self.incremental.outputs(x, windows)
        ds = tf.data.Dataset.from_tensors((x, np.zeros(len(windows), np.float32)))
        return self._run(ds)[1]

    def records(self, source: str, windows: list[Window], outputs: np.ndarray) -> list[dict]:
        """One record per window: source, start, end and the task's prediction; a
        per-frame task (detection) gives one record per sampled frame instead: source,
        `t` (the frame's sample time, seconds) and the frame's `boxes`."""
        preds = self.task.predictions(outputs, self.labels, self.top)
        if self.task.per_frame:
            video = self.bundle.config.data.video
            return [
                {"source": source, "t": round(float(t), 3), "boxes": boxes}
                for w, p in zip(windows, preds, strict=True)
                for t, boxes in zip(sample_times(w.start, w.end, video), p["frames"], strict=True)
            ]
        return [
            {"source": source, "start": round(w.start, 3), "end": round(w.end, 3), **p}
            for w, p in zip(windows, preds, strict=True)
        ]


def jobs_from(inputs: list[str], text: str = "") -> tuple[list[Job], list[str]]:
    """Video files, URLs and `-` as they are; a `.jsonl` manifest gives one job per row
    (its video, `start`/`end` and text; labels are not needed). Also the manifest's
    problems, one line each."""
    jobs, problems = [], []
    for item in inputs:
        if item.endswith(".jsonl"):
            rows, bad = read_manifest(item)
            problems += [str(p) for p in bad]
            jobs += [Job(r.video, r.text, r.start, r.end) for r in rows]
        else:
            jobs.append(Job(item, text))
    return jobs, problems


@dataclass
class _Settings:
    """How `predict` reads sources: window and stride in seconds, live or not, batch."""

    window: float
    stride: float
    text: str = ""
    stream: bool = False
    realtime: bool = False
    batch: int = PREDICT_BATCH
    timeout_s: float = 10.0
    events: Events | None = None
    segments: float | None = None  # the score threshold of segments; None: window records
    max_latency: float | None = None  # realtime: seconds a window may wait (None: the stride)


def predict(
    model: str | Path | Bundle | Predictor,
    inputs: str | list[str],
    *,
    trust_model: bool = False,
    window: float | None = None,
    stride: float | None = None,
    text: str = "",
    top: int = 3,
    stream: bool = False,
    realtime: bool = False,
    batch: int = PREDICT_BATCH,
    timeout_s: float = 10.0,
    events: Events | None = None,
    incremental: bool | None = None,
    csv: str | Path | None = None,
    plot: str | Path | None = None,
    on_record: Callable[[dict], None] | None = None,
    segments: bool = False,
    segment_threshold: float = 0.5,
    draw: str | Path | None = None,
    track: bool = False,
    box_threshold: float = 0.3,
    max_latency: float | None = None,
    sources: str | Path | None = None,
) -> PredictRun:
    """Predict on every window of every input; returns the records and a summary.

    `window` defaults to the model's audio span (`data.audio.seconds`), `stride` to half
    a window. `stream`: sources are live (a growing file, `-`, a URL): windows are
    predicted one at a time as they arrive, and a source that sends nothing for
    `timeout_s` seconds ends there with every window it had (`ended: stalled`). With
    `realtime`, windows that arrive while the model is busy are dropped (counted). A
    source that cannot be decoded, and a manifest row that holds no whole window, are
    skipped with one line (logged, and in `skipped`). With `events`, an event record
    `{source, event, start, end, peak}` follows the window that closes it. `csv` and `plot`
    write the records and a timeline PNG at the end (also after Ctrl-C). `on_record` gets
    each record as it is made. `incremental`: see `Predictor`. `segments`: in place of
    window records, each source's action segments `{source, start, end, label, score}`
    once it ends (`runtime.segments.find_segments` on the window scores, a window in a
    segment when its score is >= `segment_threshold`; the plot shades them).

    A detection model (`runtime/predict_boxes.py`): `{source, t, boxes}` per frame (`stride`
    s apart), boxes >= `box_threshold`; `track` adds track ids, `draw` writes boxes drawn.
    Live feeds (several sources with `stream`, `sources`: a YAML list of named sources, or
    `realtime`) are followed at once (`runtime/feeds.py`); `realtime` drops a window that
    cannot be answered within `max_latency` s (default: the stride), counted per feed.

    Example:
      run = vdg.predict("runs/a", ["street.mp4"], window=2.0, stride=0.5, csv="w.csv")
      cams = vdg.predict("cam.tflite", ["rtsp://a/1", "rtsp://b/1"], stream=True, realtime=True)
    """
    run = _box_run(model, inputs, trust_model, (box_threshold, track, draw, stride), on_record)
    if run is not None:
        return run
    _check_options(max_latency, sources, stream, segment_threshold if segments else None,
                   (window, stride, top, batch, timeout_s))  # fmt: skip
    inputs = [inputs] if isinstance(inputs, str | Path) else list(inputs)
    jobs, problems = jobs_from([str(i) for i in inputs], text)
    p = model if isinstance(model, Predictor) else Predictor(model, top, incremental, trust_model)
    window = window or _default_window(p)
    settings = _Settings(window, stride or window / 2, text, stream, realtime, batch, timeout_s,
                         events, segment_threshold if segments else None, max_latency)  # fmt: skip
    run = PredictRun(skipped=[str(m) for m in problems])
    for m in problems:
        log.warning("skipped %s", m)

    def emit(record: dict) -> None:
        run.records.append(record)
        if on_record is not None:
            on_record(record)

    spans = any(j.start is not None or j.end is not None for j in jobs)
    if stream and not spans and (len(jobs) > 1 or sources is not None or realtime):
        _follow(p, jobs, sources, settings, run, emit)
    else:
        _one_by_one(p, jobs, settings, run, emit)
    _write_outputs(run, csv, plot)
    return run


def _default_window(p: Predictor) -> float:
    """The model's audio span, or for a per-frame task its frames' span (1/stride frames a
    second)."""
    cfg = p.bundle.config.data
    return FRAME_WINDOW_S * cfg.video.frames if p.task.per_frame else cfg.audio.seconds


def _one_by_one(p: Predictor, jobs: list[Job], s: _Settings, run: PredictRun, emit) -> None:
    """Each job's records in turn (files, manifests, one live source); Ctrl-C stops cleanly."""
    try:
        for job in jobs:
            for record in _job_records(p, job, s, run):
                emit(record)
    except KeyboardInterrupt:
        run.interrupted = True
        log.info("stopped (Ctrl-C)")
        if s.segments is not None:  # the source it stopped in still has its segments
            for record in _interrupted_segments(run, s.segments):
                emit(record)


def _follow(p: Predictor, jobs: list[Job], sources, s: _Settings, run: PredictRun, emit) -> None:
    """Every source at once, as live feeds (`vdg_tf/runtime/feeds.py`)."""
    from vdg_tf.runtime.feeds import FeedEngine, FeedSettings, named, read_sources

    feeds = [
        replace(f, text=j.text) for f, j in zip(named([j.source for j in jobs]), jobs, strict=True)
    ]
    if sources is not None:
        feeds += read_sources(sources, s.text)
    names = [f.name for f in feeds]
    if len(set(names)) != len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise ValueError(f"sources: the name '{twice}' is given twice")
    settings = FeedSettings(s.window, s.stride, s.realtime, s.max_latency, s.batch, s.timeout_s,
                            s.events, s.segments)  # fmt: skip
    FeedEngine(p, settings, run, emit).follow(feeds)


def _box_run(model, inputs, trust_model: bool, settings, on_record) -> PredictRun | None:
    """`predict` of a detection model with (score threshold, track, draw, stride)
    `settings`; None for any other model (which refuses `draw` and `track`)."""
    from vdg_tf.runtime.predict_boxes import predict_boxes

    threshold, track, draw, stride = settings
    if isinstance(model, Predictor) or not is_box_model(model):
        if draw is not None or track:
            raise ValueError("--draw/--track: only for a detection model (boxes per frame)")
        return None
    inputs = [inputs] if isinstance(inputs, str | Path) else list(inputs)
    return predict_boxes(model, inputs, trust_model=trust_model, score_threshold=threshold,
                         track=track, draw=draw, stride=stride, on_record=on_record)  # fmt: skip


def _check_options(max_latency, sources, stream: bool, segment_threshold, settings) -> None:
    """One-line ValueErrors for the window `settings` (window, stride, top, batch, timeout)
    and the live-feed and segment options."""
    _check_settings(*settings)
    if max_latency is not None and not (isinstance(max_latency, int | float) and max_latency > 0):
        raise ValueError(f"max latency: must be a positive number of seconds, got {max_latency}")
    if sources is not None and not stream:
        raise ValueError(f"{sources}: named sources are live feeds: add --stream (stream=True)")
    if segment_threshold is not None and not 0.0 < segment_threshold < 1.0:
        raise ValueError(f"segment threshold: must be between 0 and 1, got {segment_threshold}")


def _check_settings(window, stride, top, batch, timeout_s) -> None:
    """One-line ValueErrors for settings that would silently do something else (a NaN
    stride gave one window, 0 fell back to the default, a negative top gave 4 labels)."""
    for name, value in (("window", window), ("stride", stride), ("timeout", timeout_s)):
        if value is not None and not (isinstance(value, int | float) and 0 < value < 1e300):
            raise ValueError(f"{name}: must be a positive number of seconds, got {value}")
    for name, value in (("top", top), ("batch", batch)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: must be a whole number of at least 1, got {value}")


def _job_records(p: Predictor, job: Job, s: _Settings, run: PredictRun) -> Iterator[dict]:
    """The records of one job (window records, then event records as events close), and
    its summary in `run.sources`."""
    cfg = p.bundle.config.data
    summary = {"source": job.source, "span": None if job.start is None and job.end is None
               else [job.start, job.end], "windows": 0, "ended": "end", "note": ""}  # fmt: skip
    run.sources.append(summary)
    trackers = s.events.trackers(p.task.decision_threshold(p.bundle.info)) if s.events else []
    first = len(run.timeline)
    p.reset()
    try:
        ws = read_windows(job.source, cfg.video, cfg.audio, s.window, s.stride, follow=s.stream,
                          timeout_s=s.timeout_s)  # fmt: skip
        windows = _within(ws, job)
        if s.realtime:
            windows = _latest(windows, run)
        for group in _groups(windows, 1 if s.stream else s.batch):
            summary["windows"] += len(group)
            records = _group_records(p, job, group, trackers, run)
            yield from (records if s.segments is None else _events_only(records))
    except DecodeError as e:
        summary.update(ended="failed", note=str(e))
        run.skipped.append(str(e))
        log.warning("skipped %s", e)
    except KeyboardInterrupt:
        summary["ended"] = "interrupted"
        raise
    else:
        _ended(job, ws, summary, s, run)
    for t in trackers:
        done = t.close()
        if done:
            yield {"source": job.source, **done}
    if s.segments is not None:
        yield from _segments(job.source, run.timeline[first:], s.segments)


def _interrupted_segments(run: PredictRun, threshold: float) -> list[dict]:
    """The segments of the source a Ctrl-C stopped in: its windows at the timeline's end."""
    if not run.sources or run.sources[-1]["ended"] != "interrupted":
        return []
    source, n = run.sources[-1]["source"], run.sources[-1]["windows"]
    tail = run.timeline[len(run.timeline) - n :] if n else []
    return _segments(source, [t for t in tail if t[0] == source], threshold)


def _events_only(records: Iterator[dict]) -> Iterator[dict]:
    return (r for r in records if "event" in r)


def _segments(source: str, timeline: list, threshold: float) -> list[dict]:
    """The action segments of one source's windows (`find_segments` on its score series)."""
    if not timeline:
        return []
    names = list(timeline[0][3])
    scores = np.array([[t[3][n] for n in names] for t in timeline], dtype=float)
    starts, ends = [t[1] for t in timeline], [t[2] for t in timeline]
    found = find_segments(starts, ends, scores, names, source=source, threshold=threshold)
    return [{**r, "start": round(r["start"], 3), "end": round(r["end"], 3)} for r in found]


def _group_records(p, job: Job, group: list[Window], trackers, run: PredictRun) -> Iterator[dict]:
    """The records of a batch of windows, each followed by the events it closes."""
    outputs = p.outputs(group, [job.text] * len(group))
    return window_records(p, job.source, group, outputs, trackers, run)


def window_records(
    p: Predictor, source: str, group: list[Window], outputs: np.ndarray, trackers, run: PredictRun
) -> Iterator[dict]:
    """The records of windows of one source given their outputs, each followed by the
    events it closes; counts them and adds them to the run's timeline."""
    run.windows += len(group)
    series = p.task.series(outputs, p.labels)
    for i, (w, record) in enumerate(zip(group, p.records(source, group, outputs), strict=True)):
        scores = {k: float(v[i]) for k, v in series.items()}
        run.timeline.append((source, w.start, w.end, scores))
        yield record
        for t in trackers:
            if not t.name and len(scores) == 1:
                t.name = next(iter(scores))  # e.g. "anomaly"
            done = t.feed(w.start, w.end, _watched(scores, t.name, p))
            if done:
                yield {"source": source, **done}


def _ended(job: Job, ws: Windows, summary: dict, s: _Settings, run: PredictRun) -> None:
    """Record how a source ended, and say so when it is not the plain end: a live source
    that stalled, a file cut short, a manifest row that held no whole window."""
    summary["ended"] = ws.ended or "end"  # None: a manifest row's span ended first
    summary["note"] = ws.note
    if ws.ended == "stalled":  # the summary says it
        summary["note"] = f"nothing arrived for {s.timeout_s:g} s"
    elif ws.note:
        log.warning("%s: %s", job.where, ws.note)
    if summary["windows"]:
        return
    summary["ended"] = "no windows"
    lo, hi = job.start or 0.0, job.end
    if hi is not None and hi - lo < s.window:
        why = f"its span ({hi - lo:g} s) is shorter than a window ({s.window:g} s)"
    elif ws.duration is not None and lo >= ws.duration:
        why = f"its span lies past the end of the video ({ws.duration:.2f} s)"
    else:
        why = f"it holds no whole window of {s.window:g} s"
    summary["note"] = why
    run.skipped.append(f"{job.where}: no window: {why}")
    log.warning("skipped %s: no window: %s", job.where, why)


def _write_outputs(run: PredictRun, csv: str | Path | None, plot: str | Path | None) -> None:
    """The CSV of the records and the timeline plot, each written whatever the other does."""
    from vdg_tf.runtime.report import plot_timeline

    if csv:
        run.csv = str(write_csv(run.records, csv))
    if plot:
        events = [r for r in run.records if "event" in r or is_segment(r)]
        run.plot = str(plot_timeline(run.timeline, plot, events))


def _within(windows: Iterator[Window], job: Job) -> Iterator[Window]:
    """The windows inside a manifest row's `start`/`end` span (all of them without one)."""
    lo = job.start or 0.0
    hi = job.end if job.end is not None else float("inf")
    for w in windows:
        if w.start >= hi:
            return
        if w.start >= lo and w.end <= hi + 1e-3:
            yield w


def _groups(windows: Iterator[Window], size: int) -> Iterator[list[Window]]:
    group: list[Window] = []
    for w in windows:
        group.append(w)
        if len(group) == size:
            yield group
            group = []
    if group:
        yield group


def _latest(windows: Iterator[Window], run: PredictRun) -> Iterator[Window]:
    """Decode in a thread; hand over only the newest window when the consumer is ready.

    Windows the consumer had no time for are dropped (counted), so a slow model falls
    behind by at most one window instead of an ever-growing queue.
    """
    slot: deque = deque(maxlen=1)
    ready = threading.Condition()
    done: list[BaseException | None] = []

    def produce() -> None:
        try:
            for w in windows:
                with ready:
                    if slot:
                        run.dropped += 1
                    slot.append(w)
                    ready.notify()
        except BaseException as e:  # handed to the consumer, raised there
            done.append(e)
        else:
            done.append(None)
        with ready:
            ready.notify()

    threading.Thread(target=produce, name="vdg-windows", daemon=True).start()
    while True:
        with ready:
            ready.wait_for(lambda: slot or done)
            w = slot.popleft() if slot else None
        if w is not None:
            yield w
        elif done:
            if done[0] is not None:
                raise done[0]
            return


def write_csv(records: list[dict], path: str | Path) -> Path:
    """Records as CSV: source, start, end and the task's prediction fields (lists as JSON)."""
    import csv

    from vdg_tf.files import atomic_path

    keys = list(dict.fromkeys(k for r in records for k in r))
    # a source name that is not UTF-8 (surrogate-escaped by Python) keeps its own bytes
    with (
        atomic_path(path) as tmp,
        open(tmp, "w", encoding="utf-8", newline="", errors="surrogateescape") as f,
    ):
        writer = csv.DictWriter(f, keys)
        writer.writeheader()
        for r in records:
            writer.writerow(
                {k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in r.items()}
            )
    return Path(path)


def _watched(scores: dict[str, float], name: str, p: Predictor) -> float:
    """The watched series' score of one window ('' names the task's only series)."""
    if not name:
        if len(scores) != 1:
            raise ValueError(
                f"--watch: name a label for task {p.task.name} (one of {', '.join(scores)})"
            )
        return next(iter(scores.values()))
    if name not in scores:
        raise ValueError(f"--watch: '{name}' is not an output (known: {', '.join(scores)})")
    return scores[name]

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
"""

from __future__ import annotations

import json
import sys
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf

from vdg_tf.data.pipeline import fixed_features, model_inputs
from vdg_tf.manifest import read_manifest
from vdg_tf.media.decode import DecodeError
from vdg_tf.media.windows import Window, read_windows
from vdg_tf.runtime.evaluate import load_for_inference
from vdg_tf.runtime.events import EventTracker
from vdg_tf.runtime.incremental import (
    IncrementalRunner,
    KerasParts,
    LiteRTParts,
    incremental_reason,
)


@dataclass
class Job:
    """One thing to predict on: a source, optionally a span of it, and its text."""

    source: str
    text: str = ""
    start: float | None = None
    end: float | None = None


@dataclass
class PredictStats:
    """What a prediction run saw: windows predicted, dropped (realtime), failed sources,
    and per window the task's score series (for `--plot`)."""

    windows: int = 0
    dropped: int = 0
    failed: list[str] = field(default_factory=list)
    timeline: list[tuple[str, float, float, dict[str, float]]] = field(default_factory=list)


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


class Predictor:
    """A model (run folder, `.keras` or `.tflite`) that maps windows to task predictions.

    `incremental`: None runs incrementally when the model splits per frame and says in
    one line (stderr) when it cannot; True is the same but always says why not; False
    always runs whole windows. `self.incremental` is the ring-buffer runner, or None.
    """

    def __init__(self, model: str | Path, top: int = 3, incremental: bool | None = None):
        self.bundle, self._run = load_for_inference(model)
        self.incremental = None if incremental is False else self._incremental(model)
        self.task, self.labels, self.top = self.bundle.task, self.bundle.labels, top
        cfg, tok = self.bundle.config.data, self.bundle.tokenizer

        @tf.function(reduce_retracing=True)
        def features(frames, samples, audio_mask, text):
            clip = {"frames": frames, "samples": samples, "audio_mask": audio_mask, "text": text}
            return model_inputs(fixed_features(clip, cfg, tok, mel=True), cfg)

        self._features = features

    def _incremental(self, model: str | Path) -> IncrementalRunner | None:
        """The ring-buffer runner for `model`, or None after a one-line reason on stderr."""
        tflite = Path(model).suffix == ".tflite"
        reason = incremental_reason(model if tflite else self.bundle.model)
        if reason:
            print(
                f"{Path(model).name}: incremental inference off: {reason}; every window "
                "runs the whole model",
                file=sys.stderr,
            )
            return None
        parts = LiteRTParts(model) if tflite else KerasParts(self.bundle.model)
        return IncrementalRunner(parts, self.bundle.config.data.video)

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
        """One record per window: source, start, end and the task's prediction."""
        preds = self.task.predictions(outputs, self.labels, self.top)
        return [
            {"source": source, "start": round(w.start, 3), "end": round(w.end, 3), **p}
            for w, p in zip(windows, preds, strict=True)
        ]


def jobs_from(inputs: list[str], text: str = "") -> list[Job]:
    """Video files, URLs and `-` as they are; a `.jsonl` manifest gives one job per row
    (its video, `start`/`end` and text; labels are not needed)."""
    jobs = []
    for item in inputs:
        if item.endswith(".jsonl"):
            rows, problems = read_manifest(item)
            for p in problems:
                print(f"skipped {p}", file=sys.stderr)
            jobs += [Job(r.video, r.text, r.start, r.end) for r in rows]
        else:
            jobs.append(Job(item, text))
    return jobs


def predict(
    model: str | Path | Predictor,
    inputs: list[str],
    window: float | None = None,
    stride: float | None = None,
    text: str = "",
    top: int = 3,
    stream: bool = False,
    realtime: bool = False,
    batch: int = 16,
    timeout_s: float = 10.0,
    stats: PredictStats | None = None,
    events: Events | None = None,
    incremental: bool | None = None,
) -> Iterator[dict]:
    """Prediction records, one per window of every input, in order.

    `window` defaults to the model's audio span (`data.audio.seconds`), `stride` to half
    a window. `stream`: sources are live (a growing file, `-`, a URL): windows are
    predicted one at a time as they arrive; with `realtime`, windows that arrive while the
    model is busy are dropped and counted in `stats.dropped`. A source that cannot be
    decoded is skipped with a one-line message and listed in `stats.failed`. With
    `events`, an event record `{source, event, start, end, peak}` follows the window that
    closes it (and each source's open events come at its end). `incremental`: see
    `Predictor` (None: incremental where the model splits, else whole windows).

    Example:
      for record in predict("runs/a", ["street.mp4"], window=2.0, stride=0.5):
          print(record["start"], record["top"][0])
    """
    p = model if isinstance(model, Predictor) else Predictor(model, top, incremental)
    cfg = p.bundle.config.data
    window = window or cfg.audio.seconds
    stride = stride or window / 2
    stats = stats if stats is not None else PredictStats()
    for job in jobs_from(inputs, text):
        windows = read_windows(
            job.source, cfg.video, cfg.audio, window, stride, follow=stream, timeout_s=timeout_s
        )
        windows = _within(windows, job)
        if realtime:
            windows = _latest(windows, stats)
        trackers = events.trackers(p.bundle.info.get("threshold")) if events else []
        p.reset()
        try:
            for group in _groups(windows, 1 if stream else batch):
                outputs = p.outputs(group, [job.text] * len(group))
                stats.windows += len(group)
                series = p.task.series(outputs, p.labels)
                for i, (w, record) in enumerate(
                    zip(group, p.records(job.source, group, outputs), strict=True)
                ):
                    scores = {k: float(v[i]) for k, v in series.items()}
                    stats.timeline.append((job.source, w.start, w.end, scores))
                    yield record
                    for t in trackers:
                        if not t.name and len(scores) == 1:
                            t.name = next(iter(scores))  # e.g. "anomaly"
                        done = t.feed(w.start, w.end, _watched(scores, t.name, p))
                        if done:
                            yield {"source": job.source, **done}
        except DecodeError as e:
            stats.failed.append(str(e))
            print(f"skipped {e}", file=sys.stderr)
        for t in trackers:
            done = t.close()
            if done:
                yield {"source": job.source, **done}


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


def _latest(windows: Iterator[Window], stats: PredictStats) -> Iterator[Window]:
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
                        stats.dropped += 1
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
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
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

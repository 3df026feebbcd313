"""Many live feeds at once in one process: `vdg predict MODEL SRC1 SRC2 ... --stream`.

The model is loaded and warmed (both batch shapes traced) before any source is read. Each
source is read into windows by its own decode worker process (`vdg_tf.media.feeds`); a
reader thread per feed puts its windows on that feed's backlog, and the model thread takes
the oldest windows of every backlog, up to `batch`, into one model call: one features call,
and for an incremental model one `encode_frame` call for the new frames of every feed and
one `head` call (`incremental.ring_outputs`, a ring buffer per feed); a whole-window
`.tflite` runs them in one invocation when its batch axis is dynamic.

Real time (`realtime`): a window is kept while it can still be answered within
`max_latency` seconds of its last frame arriving (default: the stride) and dropped past
that, counted in its feed's summary with its start time; a feed's newest window is kept
until its own deadline passes. Without `realtime` nothing is dropped: a feed whose
backlog is full stops being read, so the source waits (a file) or its pipe fills.

Every record and event names its feed (`source`: the name given in `--sources`, else the
source as given). A feed that stalls, ends or whose decoder dies ends alone, with every
window it had; its summary says how (`ended`), and holds its window count, drops and
latency (p50/p95 ms from a window's last frame arriving to its prediction).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vdg_tf.media.convert import fit_audio
from vdg_tf.media.feeds import DECODE_NICE, FeedJob, FeedProcess
from vdg_tf.media.windows import Window
from vdg_tf.runtime.incremental import IncrementalRunner, ring_outputs
from vdg_tf.runtime.stream_state import CausalRunner, make_runner

log = logging.getLogger(__name__)

READY_WAIT_S = 120.0  # the longest `on_ready` waits for every worker to start


@dataclass(frozen=True)
class Source:
    """One feed: the name its records carry, where it comes from, the text it is read with."""

    name: str
    source: str
    text: str = ""


def read_sources(path: str | Path, text: str = "") -> list[Source]:
    """The feeds of a YAML list of named sources (`- name: door` / `source: rtsp://...`,
    optional `text`); a bad entry is one line naming the file, the entry and the field."""
    from vdg_tf.config import load_yaml

    data = load_yaml(path, "sources")
    if not isinstance(data, list) or not data:
        raise ValueError(f"{path}: expected a YAML list of sources (- name: ..., source: ...)")
    out, seen = [], set()
    for i, item in enumerate(data, 1):
        where = f"{path}: source {i}"
        if not isinstance(item, dict):
            raise ValueError(f"{where}: expected a mapping with name and source")
        unknown = set(item) - {"name", "source", "text"}
        if unknown:
            raise ValueError(
                f"{where}: unknown key {sorted(unknown)[0]} (known: name, source, text)"
            )
        for key in ("name", "source"):
            if not isinstance(item.get(key), str) or not item[key].strip():
                raise ValueError(f"{where}: '{key}' must be a non-empty string")
        if item["name"] in seen:
            raise ValueError(f"{where}: name '{item['name']}' is used twice")
        seen.add(item["name"])
        out.append(Source(item["name"], item["source"], str(item.get("text", text) or "")))
    return out


def named(inputs: list[str], text: str = "") -> list[Source]:
    """Sources given on the command line, each named as given (a repeat gets `#2`...)."""
    out, count = [], {}
    for item in inputs:
        count[item] = count.get(item, 0) + 1
        out.append(Source(item if count[item] == 1 else f"{item}#{count[item]}", item, text))
    return out


@dataclass
class FeedSettings:
    """How feeds are followed: window and stride (s), real time and its latency budget (s),
    the largest model batch, the stall timeout, events and segments (see `predict`)."""

    window: float
    stride: float
    realtime: bool = False
    max_latency: float | None = None  # None: the stride
    batch: int = 16
    timeout_s: float = 10.0
    events: object = None  # predict.Events
    segments: float | None = None
    follow: bool = True
    decode_nice: int = DECODE_NICE  # how much nicer the decoders run than this process


class _Feed:
    """One feed's state in the model process: its backlog, ring buffer, trackers, summary."""

    def __init__(self, src: Source, runner, trackers: list):
        self.src, self.runner, self.trackers = src, runner, trackers
        self.backlog: deque[Window] = deque()
        self.summary = {"source": src.name, "span": None, "windows": 0, "ended": "", "note": "",
                        "dropped": 0, "drops": [], "latency_p50_ms": None,
                        "latency_p95_ms": None}  # fmt: skip
        if src.source != src.name:
            self.summary["input"] = src.source
        self.latencies: list[float] = []
        self.said: tuple | None = None  # the worker's last message: ("end", ...) or ("error", m)
        self.ready = self.closed = False
        self.proc: FeedProcess | None = None


class _BatchModel:
    """Windows of many feeds -> outputs in one model call (see the module docstring)."""

    def __init__(self, p):
        self.p, self.litert, self.keras = p, None, None
        path = getattr(p, "model_path", None)
        if p.incremental is not None:
            return
        if path is not None and Path(path).suffix == ".tflite":
            from vdg_tf.export.litert import LiteRTModel

            self.litert = LiteRTModel(path)
        elif p.bundle.model is not None:  # one traced call a batch, not an eager pass
            import tensorflow as tf

            from vdg_tf.models.builder import inference_model

            model = inference_model(p.bundle.model)
            self.keras = tf.function(lambda x: model(x, training=False), reduce_retracing=True)

    def runner(self) -> IncrementalRunner | CausalRunner | None:
        inc = self.p.incremental
        return None if inc is None else make_runner(inc.parts, inc.spec)

    def outputs(self, groups: list[tuple[_Feed, list[Window]]]) -> np.ndarray:
        windows = [w for _, ws in groups for w in ws]
        texts = [f.src.text for f, ws in groups for _ in ws]
        if self.p.incremental is None and self.litert is None and self.keras is None:
            return self.p.outputs(windows, texts)
        x = self.p.inputs(windows, texts)
        if self.keras is not None:
            from vdg_tf.training.evaluate import fused_probs

            return fused_probs(self.keras(x))
        if self.litert is not None:
            return self.litert.predict_batch({k: v for k, v in x.items()
                                              if k in self.litert.input_details})  # fmt: skip
        if all(isinstance(f.runner, IncrementalRunner) for f, _ in groups):
            return ring_outputs(self.p.incremental.parts, x, [(f.runner, ws) for f, ws in groups])
        return _per_feed(x, groups)

    def warm(self, window: float) -> float:
        """Run blank windows at batch 1 and 2 (both shapes traced); seconds of a batch-1 call."""
        cfg = self.p.bundle.config.data
        frames = np.zeros((cfg.video.frames, cfg.video.size, cfg.video.size, 3), np.uint8)
        blank = Window(0, 0.0, window, frames, fit_audio(np.zeros(0, np.float32), cfg.audio), False)
        feed = _Feed(Source("warm-up", "warm-up"), self.runner(), [])
        self.outputs([(feed, [blank, blank])])
        t = time.monotonic()
        self.outputs([(_Feed(feed.src, self.runner(), []), [blank])])
        return time.monotonic() - t


def _per_feed(x: dict[str, np.ndarray], groups: list) -> np.ndarray:
    """Outputs of stateful (causal) runners: each feed's windows through its own state."""
    outs, i = [], 0
    for feed, windows in groups:
        part = {k: v[i : i + len(windows)] for k, v in x.items()}
        outs.append(feed.runner.outputs(part, windows))
        i += len(windows)
    return np.concatenate(outs)


class FeedEngine:
    """Follows feeds with one model; `follow` runs until every feed has ended (or Ctrl-C).

    Args:
        p: the `Predictor`.
        s: the settings.
        run: the `PredictRun` records, summaries and counts go to.
        emit: called with each record (window or event) as it is made.
    """

    def __init__(self, p, s: FeedSettings, run, emit: Callable[[dict], None]):
        self.p, self.s, self.run, self.emit = p, s, run, emit
        self.model = _BatchModel(p)
        self.cond = threading.Condition()
        self.feeds: dict[str, _Feed] = {}
        self.est_s = 0.0  # seconds of the last model call: what answering a window takes
        self.calls: list[float] = []  # seconds of every model call (the benchmark's profile)
        self.budget = s.max_latency if s.max_latency is not None else s.stride
        self.stopping = False

    def follow(self, sources: list[Source], on_ready: Callable[[], None] | None = None) -> None:
        """Warm the model, start a worker per source, predict until every feed ended.
        `on_ready` is called once every worker runs (a benchmark starts its feeds there)."""
        self.est_s = self.model.warm(self.s.window)
        threshold = self.p.task.decision_threshold(self.p.bundle.info)
        for src in sources:
            trackers = self.s.events.trackers(threshold) if self.s.events else []
            feed = _Feed(src, self.model.runner(), trackers)
            self.feeds[src.name] = feed
            self.run.sources.append(feed.summary)
        cfg = self.p.bundle.config.data
        try:
            for feed in self.feeds.values():
                job = FeedJob(feed.src.source, cfg.video, cfg.audio, self.s.window,
                              self.s.stride, self.s.follow, self.s.timeout_s,
                              self.s.decode_nice)  # fmt: skip
                try:
                    feed.proc = FeedProcess(feed.src.name, job, self._on_message)
                except OSError as e:
                    self._on_message(None, ("error", f"{feed.src.source}: cannot start: {e}"), feed)
            if on_ready is not None:
                with self.cond:
                    self.cond.wait_for(lambda: all(f.ready or f.said for f in self.feeds.values()),
                                       READY_WAIT_S)  # fmt: skip
                on_ready()
            self._loop()
        except KeyboardInterrupt:
            self.run.interrupted = True
            log.info("stopped (Ctrl-C)")
            for feed in self.feeds.values():
                if not feed.closed:
                    feed.said, feed.closed = ("interrupted",), True
                    feed.backlog.clear()
                    self._close(feed)
        finally:
            with self.cond:
                self.stopping = True
                self.cond.notify_all()
            for feed in self.feeds.values():
                if feed.proc is not None:
                    feed.proc.stop()

    def _on_message(self, proc: FeedProcess | None, message: tuple, feed: _Feed | None = None):
        """A worker's message (reader thread): a window joins its feed's backlog."""
        feed = feed or self.feeds[proc.name]
        with self.cond:
            kind = message[0]
            if kind == "ready":
                feed.ready = True
            elif kind == "window":
                if self.s.realtime:
                    self._expire(feed, time.monotonic())
                else:  # back-pressure: the worker (and its source) waits while the backlog is full
                    self.cond.wait_for(
                        lambda: len(feed.backlog) < 2 * self.s.batch or self.stopping
                    )
                feed.backlog.append(message[1])
            else:
                feed.said = message
            self.cond.notify_all()

    def _loop(self) -> None:
        feeds = list(self.feeds.values())
        while True:
            with self.cond:
                self.cond.wait_for(
                    lambda: any(f.backlog or (f.said and not f.closed) for f in feeds), 1.0
                )
                groups = self._take(time.monotonic())
                ending = [f for f in feeds if f.said and not f.backlog and not f.closed]
                for f in ending:
                    f.closed = True
                self.cond.notify_all()  # readers waiting on a full backlog
                if not groups and not ending and all(f.closed for f in feeds):
                    return
            if groups:
                self._predict(groups)
            for f in ending:
                self._close(f)

    def _expire(self, feed: _Feed, now: float) -> None:
        """Drop the windows that can no longer be answered within the budget: past it
        already, or (all but the newest) past it once a model call more has run."""
        while feed.backlog:
            age = now - feed.backlog[0].arrived
            if age <= self.budget and (len(feed.backlog) == 1 or age + self.est_s <= self.budget):
                return
            w = feed.backlog.popleft()
            feed.summary["dropped"] += 1
            feed.summary["drops"].append(round(w.start, 3))
            self.run.dropped += 1

    def _take(self, now: float) -> list[tuple[_Feed, list[Window]]]:
        """The oldest windows of all backlogs, up to `batch`, grouped by feed in order."""
        if self.s.realtime:
            for feed in self.feeds.values():
                self._expire(feed, now)
        waiting = sorted(
            (w.arrived, n, i, feed)
            for n, feed in enumerate(self.feeds.values())
            for i, w in enumerate(feed.backlog)
        )[: self.s.batch]
        take: dict[int, tuple[_Feed, int]] = {}
        for _, n, _, feed in waiting:
            take[n] = (feed, take.get(n, (feed, 0))[1] + 1)
        return [(feed, [feed.backlog.popleft() for _ in range(k)]) for feed, k in take.values()]

    def _predict(self, groups: list[tuple[_Feed, list[Window]]]) -> None:
        from vdg_tf.runtime.predict import window_records

        t = time.monotonic()
        out = self.model.outputs(groups)
        done = time.monotonic()
        self.est_s = 0.5 * self.est_s + 0.5 * (done - t)
        self.calls.append(done - t)
        row = 0
        for feed, ws in groups:
            outputs, row = out[row : row + len(ws)], row + len(ws)
            feed.latencies += [done - w.arrived for w in ws]
            feed.summary["windows"] += len(ws)
            records = window_records(self.p, feed.src.name, ws, outputs, feed.trackers, self.run)
            for r in records:
                if self.s.segments is None or "event" in r:
                    self.emit(r)

    def _close(self, feed: _Feed) -> None:
        """A feed ended: its summary, the events still open, its segments."""
        from vdg_tf.runtime.predict import _segments

        s, (kind, *rest) = feed.summary, feed.said
        if kind == "end":
            s["ended"], s["note"] = rest[0], rest[1]
            if rest[0] == "stalled":
                s["note"] = f"nothing arrived for {self.s.timeout_s:g} s"
            elif rest[1]:
                log.warning("%s: %s", feed.src.name, rest[1])
        elif kind == "error":
            s["ended"], s["note"] = "failed", rest[0]
            self.run.skipped.append(rest[0])
            log.warning("%s: ended: %s", feed.src.name, rest[0])
        else:
            s["ended"] = "interrupted"
        if kind == "end" and not s["windows"]:
            s["ended"] = "no windows"
            s["note"] = f"it holds no whole window of {self.s.window:g} s"
            self.run.skipped.append(f"{feed.src.name}: no window: {s['note']}")
        if feed.latencies:
            ms = np.percentile(np.array(feed.latencies) * 1000, [50, 95])
            s["latency_p50_ms"], s["latency_p95_ms"] = (
                round(float(ms[0]), 1),
                round(float(ms[1]), 1),
            )
            self.run.latencies += feed.latencies
        for t in feed.trackers:
            done = t.close()
            if done:
                self.emit({"source": feed.src.name, **done})
        if self.s.segments is not None:
            mine = [t for t in self.run.timeline if t[0] == feed.src.name]
            for r in _segments(feed.src.name, mine, self.s.segments):
                self.emit(r)

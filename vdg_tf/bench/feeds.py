"""`vdg benchmark feeds MODEL VIDEO`: how many live feeds one process follows in real time.

VIDEO is remuxed once to MPEG-TS (looped to the length asked, no re-encoding) and played
as N live feeds: a writer thread writes each feed's bytes into its own pipe as their time
comes (each feed at the video's own frame rate, the feeds' starts spread over one stride,
as unsynchronised cameras are), and `vdg predict`'s live-feed engine
(`vdg_tf/runtime/feeds.py`, `--stream --realtime`) follows the pipes, each decoded in its
own worker process. The writer starts once every worker runs and the model is warm.

Per N: windows predicted and dropped, latency p50/p95 (a window's last frame arriving to
its prediction; and from the writer sending it, which also counts a decoder that fell
behind) and the CPU used (this process, its writer thread included, and the
decode workers), in cores. `max_realtime_feeds` is the most feeds with no window dropped
and p95 latency (both kinds) under the stride; `search` finds it by doubling, then bisecting.
"""

from __future__ import annotations

import contextlib
import heapq
import io
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import av

from vdg_tf.media.feeds import DECODE_NICE
from vdg_tf.media.wire import widen
from vdg_tf.results import Result
from vdg_tf.runtime.feeds import FeedEngine, FeedSettings, named
from vdg_tf.runtime.predict import Predictor, PredictRun


def looped_ts(video: str | Path, seconds: float) -> tuple[bytes, list[tuple[float, int]], float]:
    """`video` as MPEG-TS bytes at least `seconds` long (looped, packets copied), when each
    byte is due (`(seconds, bytes by then)`, in order) and the video's frame rate."""
    with av.open(str(video)) as inp:
        streams = [s for s in inp.streams if s.type in ("video", "audio")]
        vs = next(s for s in streams if s.type == "video")
        fps = float(vs.average_rate or 25)
        packets = [p for p in inp.demux(streams) if p.dts is not None and p.pts is not None]
        # one loop's length: past every packet of every stream, so times only grow
        length = max(float((p.pts + (p.duration or 0)) * p.time_base) for p in packets)
        length = max(length, max(float(p.pts * p.time_base) for p in packets) + 1 / fps)
        buf = io.BytesIO()
        with av.open(buf, "w", format="mpegts") as out:
            mapping = {s.index: out.add_stream_from_template(s) for s in streams}
            for k in range(int(seconds // length) + 1):
                for p in packets:
                    shift = int(round(k * length / p.time_base))
                    copy = av.Packet(bytes(p))
                    copy.pts, copy.dts, copy.time_base = p.pts + shift, p.dts + shift, p.time_base
                    copy.is_keyframe = p.is_keyframe
                    copy.stream = mapping[p.stream.index]
                    out.mux(copy)
    data = buf.getvalue()
    return data, due_times(data), fps


def due_times(ts: bytes) -> list[tuple[float, int]]:
    """When each byte of an MPEG-TS is due when played live: a packet's bytes by its time."""
    marks: list[tuple[float, int]] = []
    with av.open(io.BytesIO(ts), format="mpegts") as c:
        t0 = None
        for p in c.demux():
            if p.pos is None or p.pos < 0 or p.pts is None:
                continue
            t = float(p.pts * p.time_base)
            t0 = t if t0 is None else min(t0, t)
            marks.append((t, p.pos + p.size))
    marks = [(t - t0, n) for t, n in marks]
    out, most = [], 0
    for t, n in sorted(marks):  # bytes never go back: a due mark covers all before it
        most = max(most, n)
        out.append((t, most))
    out.append((out[-1][0] + 0.04, len(ts)))
    return out


class Player:
    """Writes one MPEG-TS into `feeds` pipes in real time, from one thread; feed i starts
    `i * spread / feeds` seconds late and plays `seconds` of it, then its pipe closes.
    `sources`: the pipes' read ends as `/dev/fd/N` (what `vdg predict` reads)."""

    def __init__(self, ts: bytes, due: list[tuple[float, int]], feeds: int, seconds: float,
                 spread: float):  # fmt: skip
        self.ts, self.due, self.seconds = ts, [d for d in due if d[0] <= seconds], seconds
        self.phases = [i * spread / feeds for i in range(feeds)]
        self.pipes = [os.pipe() for _ in range(feeds)]
        for r, _ in self.pipes:
            widen(r)
        self.sources = [f"/dev/fd/{r}" for r, _ in self.pipes]
        self.written = 0
        self.t0: float | None = None  # when playing started (time.monotonic())
        self._thread = threading.Thread(target=self._play, daemon=True, name="vdg-feeds-player")

    def start(self) -> None:
        self._thread.start()

    def _play(self) -> None:
        self.t0 = t0 = time.monotonic()
        queue = [(phase + self.due[0][0], i, 0) for i, phase in enumerate(self.phases)]
        sent = [0] * len(self.pipes)
        while queue:
            due, i, k = heapq.heappop(queue)
            time.sleep(max(0.0, t0 + due - time.monotonic()))
            end = self.due[k][1]
            try:
                os.write(self.pipes[i][1], self.ts[sent[i] : end])
            except OSError:  # the feed's reader is gone: that feed has ended
                continue
            self.written += end - sent[i]
            sent[i] = end
            if k + 1 < len(self.due):
                heapq.heappush(queue, (self.phases[i] + self.due[k + 1][0], i, k + 1))
            else:
                os.close(self.pipes[i][1])
                self.pipes[i] = (self.pipes[i][0], -1)

    def close(self) -> None:
        self._thread.join(self.seconds + 60)
        for r, w in self.pipes:
            for fd in (r, w):
                if fd >= 0:
                    with contextlib.suppress(OSError):
                        os.close(fd)


def _proc_cpu_s(pids: list[int]) -> float:
    """CPU seconds so far of running processes (Linux /proc; 0 for one that is gone)."""
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _cpu_s() -> tuple[float, float]:
    """CPU seconds so far of this process, and of its children that have ended."""
    t = os.times()
    return t.user + t.system, t.children_user + t.children_system


def _quantiles(seconds: list[float]) -> tuple[float | None, float | None]:
    """p50 and p95 of `seconds`, in ms (None, None for none)."""
    if not seconds:
        return None, None
    v = sorted(seconds)
    return tuple(round(1000 * v[min(int(q * len(v)), len(v) - 1)], 1) for q in (0.5, 0.95))


def run_feeds(p: Predictor, ts, due, feeds: int, seconds: float, window: float, stride: float,
              fps: float, max_latency: float | None = None, batch: int = 16,
              decode_nice: int = DECODE_NICE) -> dict:  # fmt: skip
    """One trial: `feeds` live feeds of the MPEG-TS for `seconds`; its figures."""
    player = Player(ts, due, feeds, seconds, stride)
    run, cpu, t0 = PredictRun(), [(0.0, 0.0)], [0.0]
    settings = FeedSettings(window, stride, True, max_latency, batch, timeout_s=5.0,
                            decode_nice=decode_nice)  # fmt: skip

    made: list[tuple[str, float, float]] = []  # (feed, window end, when predicted)

    def keep(r: dict) -> None:
        if "event" not in r:
            made.append((r["source"], r["end"], time.monotonic()))

    engine = FeedEngine(p, settings, run, keep)

    def started() -> None:  # the workers' start-up (imports) is not the feeds' cost
        own, kids = _cpu_s()
        pids = [f.proc.proc.pid for f in engine.feeds.values() if f.proc is not None]
        cpu[0], t0[0] = (own, kids + _proc_cpu_s(pids)), time.monotonic()
        player.start()

    try:
        engine.follow(named(player.sources), started)
    finally:
        player.close()
    wall = time.monotonic() - t0[0]
    (own0, kids0), (own1, kids1) = cpu[0], _cpu_s()
    own, kids = own1 - own0, kids1 - kids0
    p50, p95 = _quantiles(run.latencies)
    # end to end: from when the writer sent a window's last frame (its time in the feed)
    index = {name: i for i, name in enumerate(player.sources)}
    late = [at - (player.t0 + player.phases[index[name]] + end - 1 / fps) for name, end, at in made]
    e50, e95 = _quantiles(late if player.t0 is not None else [])
    return {
        "feeds": feeds,
        "windows": run.windows,
        "dropped": run.dropped,
        "latency_p50_ms": p50,
        "latency_p95_ms": p95,
        "sent_to_predicted_p50_ms": e50,  # includes any wait before the decoder read it
        "sent_to_predicted_p95_ms": e95,
        "cpu_cores": round((own + kids) / wall, 2) if wall > 0 else None,
        "cpu_cores_model": round(own / wall, 2) if wall > 0 else None,  # + the writer thread
        "cpu_cores_decode": round(kids / wall, 2) if wall > 0 else None,
        # CPU a window costs, decode included: the feeds the machine's cores could follow
        # if this process had them to itself is cores / (2 windows/s x this)
        "cpu_ms_per_window": round(1000 * (own + kids) / max(run.windows, 1), 2),
        "failed": len(run.failed),
        # the profile of a miss: model call times, and the windows dropped by start time
        "model_call_ms_p50": _quantiles(engine.calls)[0],
        "model_call_ms_max": round(1000 * max(engine.calls), 1) if engine.calls else None,
        "drops_by_window_start": dict(sorted(Counter(
            str(t) for s in run.sources for t in s["drops"]).items(), key=lambda kv: float(kv[0]))),
        "realtime": run.dropped == 0 and not run.failed and p95 is not None
        and max(p95, e95 or 0.0) < 1000 * stride,
    }  # fmt: skip


@dataclass
class FeedsBenchmark(Result):
    """Per feed count (`runs`): windows, dropped, latency p50/p95 ms, CPU cores, whether it
    kept up (`realtime`); `max_realtime_feeds` when searched (`--max`)."""

    model: str
    video: str
    window: float
    stride: float
    seconds: float
    fps: float
    decode_nice: int = DECODE_NICE
    runs: list[dict] = field(default_factory=list)
    max_realtime_feeds: int | None = None
    # the feeds this machine's cores could follow at the CPU a window cost here (median
    # over the runs): an estimate from CPU time, steady where other jobs share the cores,
    # where `max_realtime_feeds` (measured) is not
    cpu_bound_feeds: int | None = None

    def estimate(self) -> None:
        """Set `cpu_bound_feeds` from the runs' CPU ms a window."""
        costs = sorted(r["cpu_ms_per_window"] for r in self.runs if r["windows"])
        if costs:
            per_feed_s = costs[len(costs) // 2] / 1000 / self.stride  # CPU s a feed-second
            self.cpu_bound_feeds = int(len(os.sched_getaffinity(0)) / per_feed_s)

    def format(self) -> str:
        head = (f"{Path(self.video).name} at {self.fps:g} fps as live feeds, {self.seconds:g} s "
                f"each; window {self.window:g} s every {self.stride:g} s; {self.model}")  # fmt: skip
        lines = [head, "feeds  windows  dropped  p50 ms  p95 ms  cpu cores  real time"]
        for r in sorted(self.runs, key=lambda r: r["feeds"]):
            lines.append(
                f"{r['feeds']:>5}  {r['windows']:>7}  {r['dropped']:>7}  "
                f"{r['latency_p50_ms'] or '-':>6}  {r['latency_p95_ms'] or '-':>6}  "
                f"{r['cpu_cores']:>9}  {'yes' if r['realtime'] else 'no'}"
            )
        if self.max_realtime_feeds is not None:
            lines.append(f"max_realtime_feeds: {self.max_realtime_feeds}")
        if self.cpu_bound_feeds is not None:
            lines.append(f"cpu_bound_feeds (estimate from CPU ms a window): {self.cpu_bound_feeds}")
        return "\n".join(lines)


def run_feeds_benchmark(
    model: str | Path,
    video: str | Path,
    *,
    feeds: int | None = None,
    search: bool = False,
    seconds: float = 20.0,
    window: float | None = None,
    stride: float = 0.5,
    max_latency: float | None = None,
    start: int = 8,
    limit: int = 128,
    decode_nice: int = DECODE_NICE,
    trust_model: bool = False,
) -> FeedsBenchmark:
    """Play `video` as `feeds` live feeds (default 2) for `seconds` each, or with `search`
    find `max_realtime_feeds` (doubling from `start`, then bisecting, up to `limit`).

    Example:
      r = run_feeds_benchmark("small_int8.tflite", "street.mp4", search=True, seconds=30)
      r.max_realtime_feeds
    """
    if seconds <= 0 or stride <= 0 or (feeds is not None and feeds < 1):
        raise ValueError("benchmark feeds: --feeds, --seconds and --stride must be positive")
    if not Path(video).is_file():
        raise FileNotFoundError(f"{video}: no such video file")
    p = Predictor(model, trust_model=trust_model)
    window = window or p.bundle.config.data.audio.seconds
    ts, due, fps = looped_ts(video, seconds + window)
    r = FeedsBenchmark(str(model), str(video), window, stride, seconds, fps, decode_nice)

    def trial(n: int) -> bool:
        r.runs.append(run_feeds(p, ts, due, n, seconds, window, stride, fps, max_latency,
                                decode_nice=decode_nice))  # fmt: skip
        return r.runs[-1]["realtime"]

    if not search:
        trial(feeds or 2)
        r.estimate()
        return r
    good, bad, n = 0, None, max(1, feeds or start)
    while bad is None and n <= limit:
        good, bad, n = (n, None, n * 2) if trial(n) else (good, n, n)
    while bad is not None and bad - good > 1:
        mid = (good + bad) // 2
        good, bad = (mid, bad) if trial(mid) else (good, mid)
    r.max_realtime_feeds = good
    r.estimate()
    return r

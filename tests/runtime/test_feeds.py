"""Many live feeds at once (`vdg predict ... --stream` with several sources): three pipes
fed in real time by writer threads, one of which stalls; named sources from YAML through
the CLI, one of which cannot be read; bad source lists are one-line errors."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from tests.helpers import vdg
from tests.runtime.conftest import remux, render_long_video
from tests.runtime.test_incremental import train_streamable
from vdg_tf.bench.feeds import due_times
from vdg_tf.runtime.feeds import read_sources
from vdg_tf.runtime.predict import predict


@pytest.fixture(scope="module")
def streamable(sample_data, tmp_path_factory):
    return train_streamable(sample_data, tmp_path_factory.mktemp("streamable"))


@pytest.fixture(scope="module")
def live_ts(tmp_path_factory):
    """6 s of three sample-class parts as MPEG-TS (96x96, 12 fps, H.264 + AAC)."""
    folder = tmp_path_factory.mktemp("feeds")
    render_long_video(folder / "six.mp4", classes=(1, 6, 3), renders=1, seed=4)
    remux(folder / "six.mp4", folder / "six.ts")
    return folder / "six.ts"


def write_live(fd: int, data: bytes, until: float | None = None) -> None:
    """Write `data` into the pipe as a live camera sends it (each packet at its time);
    with `until`, stop after that many seconds of video and leave the pipe open."""
    t0, sent = time.monotonic(), 0
    for t, n in due_times(data):
        if until is not None and t > until:
            return  # a camera that froze: nothing more, no end either
        time.sleep(max(0.0, t0 + t - time.monotonic()))
        os.write(fd, data[sent:n])
        sent = n
    os.close(fd)


def test_three_live_pipes_one_stalls_the_others_go_on(streamable, live_ts, tmp_path):
    data = live_ts.read_bytes()
    pipes = {name: os.pipe() for name in ("door", "yard", "gate")}
    cams = tmp_path / "cams.yaml"
    cams.write_text("".join(f"- name: {n}\n  source: /dev/fd/{r}\n" for n, (r, _) in pipes.items()))
    writers = [
        threading.Thread(target=write_live, args=(w, data, 2.5 if n == "gate" else None))
        for n, (_, w) in pipes.items()
    ]
    for t in writers:
        t.start()
    try:
        run = predict(streamable.out, [], sources=cams, stream=True, realtime=True,
                      max_latency=120.0, window=2.0, stride=1.0, timeout_s=1.5)  # fmt: skip
    finally:
        for t in writers:
            t.join(30)
        os.close(pipes["gate"][1])
        for r, _ in pipes.values():
            os.close(r)
    by = {s["source"]: s for s in run.sources}
    starts = {n: [r["start"] for r in run.records if r["source"] == n] for n in pipes}
    for n in ("door", "yard"):  # whole 6 s: windows start at 0, 1, 2, 3, 4
        assert starts[n] == [0.0, 1.0, 2.0, 3.0, 4.0], n
        assert by[n]["ended"] == "end" and by[n]["windows"] == 5 and by[n]["dropped"] == 0
        assert 0 < by[n]["latency_p50_ms"] <= by[n]["latency_p95_ms"]
    gate = by["gate"]  # 2.5 s then silence: its whole windows, then it ends alone
    assert gate["ended"] == "stalled" and gate["note"] == "nothing arrived for 1.5 s"
    assert 1 <= gate["windows"] < 5 and starts["gate"] == [float(i) for i in range(gate["windows"])]
    assert gate["input"].startswith("/dev/fd/")
    assert run.windows == 10 + gate["windows"] and run.dropped == 0
    r = run.records[0]
    assert set(r) == {"source", "start", "end", "top"}
    assert "gate" in run.format() and "latency p50" in run.format()


def test_named_sources_through_the_cli_one_cannot_be_read(streamable, live_ts, tmp_path, capfd):
    cams = tmp_path / "cams.yaml"
    cams.write_text(
        f"- name: shop\n  source: {live_ts}\n- name: back\n  source: {tmp_path}/no.ts\n"
    )
    rc, out, err = vdg(capfd, "predict", streamable.out, "--stream", "--sources", cams, "--json",
                       "--window", "2", "--stride", "1", "--timeout", "0.5")  # fmt: skip
    assert rc == 0, err[-2000:]
    lines = [json.loads(line) for line in out.splitlines()]
    records, summary = lines[:-1], lines[-1]["summary"]
    assert [r["start"] for r in records] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert all(r["source"] == "shop" for r in records)
    shop, back = summary["sources"]
    assert shop["source"] == "shop" and shop["windows"] == 5 and shop["ended"] == "stalled"
    assert shop["latency_p95_ms"] is not None and shop["dropped"] == 0 and shop["drops"] == []
    assert back["ended"] == "failed" and back["note"].endswith("no.ts: file not found")
    assert summary["windows"] == 5 and summary["skipped"] == [back["note"]]


@pytest.mark.parametrize(
    "text, problem",
    [
        ("door: rtsp://x\n", "expected a YAML list of sources"),
        ("- name: door\n", "source 1: 'source' must be a non-empty string"),
        ("- {name: a, source: x}\n- {name: a, source: y}\n", "source 2: name 'a' is used twice"),
        ("- {name: a, source: x, url: y}\n", "source 1: unknown key url"),
    ],
)
def test_a_bad_source_list_is_one_line(tmp_path, text, problem):
    path = tmp_path / "cams.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=problem) as e:
        read_sources(path)
    assert str(e.value).startswith(str(path)) and "\n" not in str(e.value)


def test_decoders_run_nicer_than_the_model_process(live_ts):
    """A feed's decoder yields the CPU to the model thread (it has a stride of slack)."""
    from vdg_tf.config import AudioSpec, VideoSpec
    from vdg_tf.media.feeds import DECODE_NICE, FeedJob, FeedProcess

    said, ready = [], threading.Event()

    def on_message(proc, message):
        if message[0] == "ready":
            said.append(os.getpriority(os.PRIO_PROCESS, proc.proc.pid))
            ready.set()

    job = FeedJob(str(live_ts), VideoSpec(), AudioSpec(), 2.0, 1.0, follow=False)
    proc = FeedProcess("cam", job, on_message)
    try:
        assert ready.wait(60)
    finally:
        proc.stop()
    assert said == [min(19, os.getpriority(os.PRIO_PROCESS, 0) + DECODE_NICE)]

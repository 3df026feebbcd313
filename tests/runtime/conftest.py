"""A long real video made of sample-class parts, its MPEG-TS copy for streaming tests, a
truncated faststart copy, an HTTP source that stalls, and the `vdg_tf` log of a test."""

from __future__ import annotations

import contextlib
import http.server
import logging
import threading

import av
import numpy as np
import pytest

from vdg_tf.data.sample import class_cues, render_audio, render_caption, render_frames, write_clip

FPS, RATE, SIZE = 12, 16000, 96
PART_CLASSES = (0, 5, 2, 7)  # classes of the consecutive parts
RENDERS_PER_PART, RENDER_S = 3, 2.0  # each part: 3 renders of 2 s, like training clips


def render_long_video(path, classes=PART_CLASSES, renders=RENDERS_PER_PART, seed=7) -> list[dict]:
    """Write parts of known classes one after another; returns each part's span, label
    and a caption with its class's word."""
    rng = np.random.default_rng(seed)
    frames, audio, parts, t = [], [], [], 0.0
    n = int(RENDER_S * FPS)
    for k in classes:
        direction, pitch, word = class_cues(k)
        for _ in range(renders):
            frames.append(render_frames(rng, direction, n, SIZE, SIZE))
            audio.append(render_audio(rng, pitch, RENDER_S, RATE))
        end = t + renders * RENDER_S
        parts.append({"start": t, "end": end, "label": f"{direction}-{pitch}-{word}",
                      "text": render_caption(rng, word)})  # fmt: skip
        t = end
    write_clip(path, np.concatenate(frames), FPS, np.concatenate(audio), RATE)
    return parts


def remux(src, dst, fmt: str = "mpegts") -> None:
    """Copy `src`'s streams into another container (no re-encoding): a streamable copy."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", format=fmt) as out:
        mapping = {
            s.index: out.add_stream_from_template(s)
            for s in inp.streams
            if s.type in ("video", "audio")
        }
        for packet in inp.demux(list(inp.streams)):
            if packet.dts is None or packet.stream.index not in mapping:
                continue
            packet.stream = mapping[packet.stream.index]
            out.mux(packet)


@pytest.fixture(scope="session")
def long_video(tmp_path_factory):
    folder = tmp_path_factory.mktemp("long")
    path = folder / "long.mp4"
    parts = render_long_video(path)
    ts = folder / "long.ts"
    remux(path, ts)
    return {"mp4": path, "ts": ts, "parts": parts}


@pytest.fixture(scope="session")
def strong_run(tmp_path_factory):
    """A tiny model trained long enough to name the sample classes reliably (the shared
    `trained_run` is kept short and sits near 0.6 accuracy)."""
    from tests.helpers import tiny_config
    from vdg_tf.data.sample import make_sample_data
    from vdg_tf.training import train

    data = make_sample_data(tmp_path_factory.mktemp("strong_data"), clips=160, seed=11)
    out = tmp_path_factory.mktemp("strong_run")
    return train(
        tiny_config(16), data["manifest_train"], out, val_data=data["manifest_eval"], progress=False
    )


def faststart_copy(src, dst) -> None:
    """`src` remuxed as a faststart mp4 (the index first, as web players want it)."""
    with (
        av.open(str(src)) as inp,
        av.open(str(dst), "w", format="mp4", options={"movflags": "faststart"}) as out,
    ):
        mapping = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        for packet in inp.demux(list(inp.streams)):
            if packet.dts is None:
                continue
            packet.stream = mapping[packet.stream.index]
            out.mux(packet)


@pytest.fixture(scope="session")
def cut_faststart(long_video, tmp_path_factory):
    """The long video as a faststart mp4 cut at 45% of its bytes, as an interrupted
    download leaves it: the index still states 24 s, the data stops near 10 s."""
    folder = tmp_path_factory.mktemp("cut")
    whole, cut = folder / "whole.mp4", folder / "cut.mp4"
    faststart_copy(long_video["mp4"], whole)
    data = whole.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.45)])
    return cut


@contextlib.contextmanager
def stalling_server(data: bytes):
    """An HTTP server on 127.0.0.1 (a free port) that sends `data` and then keeps the
    connection open without sending more, as a camera that froze does; yields the URL.
    The connection closes when the block ends."""
    done = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "video/mp2t")
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
            done.wait(120)  # hold the connection open, sending nothing

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/live.ts"
    finally:
        done.set()
        server.shutdown()
        server.server_close()


@pytest.fixture
def vdg_log():
    """The messages the `vdg_tf` loggers write at INFO and above during the test."""
    messages: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            messages.append(record.getMessage())

    log = logging.getLogger("vdg_tf")
    handler, level = Keep(logging.INFO), log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    yield messages
    log.removeHandler(handler)
    log.setLevel(level)

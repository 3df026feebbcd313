"""A long real video made of sample-class parts, and its MPEG-TS copy for streaming tests."""

from __future__ import annotations

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

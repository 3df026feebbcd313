"""Windows over a whole video or a stream: the same frames and audio a training clip of
that span gets, in one pass, from files, MPEG-TS, growing files and with flat memory."""

import subprocess
import sys
import threading
import time
import tracemalloc

import av
import numpy as np
import pytest

from tests.runtime.conftest import render_long_video, stalling_server
from vdg_tf.config import AudioSpec, VideoSpec
from vdg_tf.media.decode import DecodeError, decode_clip
from vdg_tf.media.windows import FollowFile, read_windows

VIDEO, AUDIO = VideoSpec(frames=4, size=32), AudioSpec()


def windows(source, window=2.0, stride=1.0, **kw):
    return list(read_windows(str(source), VIDEO, AUDIO, window, stride, **kw))


def test_each_window_equals_the_clip_decoded_alone(long_video):
    ws = windows(long_video["mp4"])
    assert [w.start for w in ws] == [float(i) for i in range(23)] and ws[-1].end == 24.0
    for w in ws[::5] + ws[-1:]:
        clip = decode_clip(str(long_video["mp4"]), VIDEO, AUDIO, w.start, w.end)
        np.testing.assert_array_equal(w.frames, clip.frames)
        np.testing.assert_array_equal(w.audio, clip.audio)
        assert w.has_audio


def test_mpegts_copy_gives_the_same_windows(long_video):
    a, b = windows(long_video["mp4"]), windows(long_video["ts"])
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.frames, y.frames)
        np.testing.assert_allclose(x.audio, y.audio, atol=1e-6)


def test_a_source_shorter_than_a_window_is_one_window(sample_data):
    import json
    from pathlib import Path

    row = json.loads(Path(sample_data["manifest_eval"]).read_text().splitlines()[0])
    path = Path(sample_data["manifest_eval"]).parent / row["video"]
    (w,) = windows(path, window=10.0)
    clip = decode_clip(str(path), VIDEO, AUDIO)
    np.testing.assert_array_equal(w.frames, clip.frames)
    np.testing.assert_array_equal(w.audio, clip.audio)


def test_a_growing_file_is_followed_until_it_stalls(long_video, tmp_path):
    """A writer appends the MPEG-TS in real-time-sized chunks; windows come as it grows."""
    data = long_video["ts"].read_bytes()
    growing = tmp_path / "live.ts"
    growing.write_bytes(b"")
    seen_while_writing = []

    def writer():
        chunk = len(data) // 40
        with open(growing, "ab") as f:
            for i in range(0, len(data), chunk):
                f.write(data[i : i + chunk])
                f.flush()
                time.sleep(0.03)

    thread = threading.Thread(target=writer)
    thread.start()
    got = []
    for w in read_windows(str(growing), VIDEO, AUDIO, 2.0, 1.0, follow=True, timeout_s=1.0):
        got.append(w)
        seen_while_writing.append(thread.is_alive())
    thread.join()
    assert len(got) == len(windows(long_video["ts"]))
    assert any(seen_while_writing)  # windows arrived before the writer finished


def test_a_truncated_stream_ends_with_the_windows_it_had(long_video, tmp_path):
    cut = tmp_path / "cut.ts"
    data = long_video["ts"].read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    got = windows(cut, follow=True, timeout_s=0.3)
    assert 8 <= len(got) <= 12 and all(w.end <= 13.0 for w in got)


def test_memory_stays_flat_over_a_longer_video(tmp_path):
    """Peak traced memory for a 4x longer video stays within 1.5x (windows are not kept)."""

    def peak(path):
        tracemalloc.start()
        for _ in read_windows(str(path), VIDEO, AUDIO, 2.0, 1.0):
            pass
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    short, long = tmp_path / "short.mp4", tmp_path / "long.mp4"
    render_long_video(short, classes=(0, 1), renders=3)
    render_long_video(long, classes=(0, 1, 2, 3, 4, 5, 6, 7), renders=3)
    peak(short)  # warm caches
    assert peak(long) < 1.5 * peak(short)


def test_bad_sources_name_themselves(tmp_path):
    with pytest.raises(DecodeError, match="nope.mp4: file not found"):
        windows(tmp_path / "nope.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00" * 4096)
    with pytest.raises(DecodeError, match="junk.mp4"):
        windows(junk)
    with pytest.raises(ValueError, match="window: must be a positive number of seconds"):
        windows(junk, window=0)
    for stride in (float("nan"), float("inf"), 0.0, -1.0):
        with pytest.raises(ValueError, match="stride: must be a positive number of seconds"):
            windows(junk, stride=stride)


def half_stream(long_video, tmp_path):
    """The first half of the MPEG-TS bytes, and the same bytes as a finished file."""
    data = long_video["ts"].read_bytes()
    half = data[: len(data) // 2]
    path = tmp_path / "half.ts"
    path.write_bytes(half)
    return half, path


def test_stdin_that_stalls_ends_with_every_window_it_had(long_video, tmp_path):
    """A pipe that sends half a stream and stays open: `--timeout` after the last byte the
    windows end, all of those the bytes hold (they used to wait for EOF, forever)."""
    half, path = half_stream(long_video, tmp_path)
    code = (
        "from vdg_tf.config import AudioSpec, VideoSpec\n"
        "from vdg_tf.media.windows import read_windows\n"
        "ws = read_windows('-', VideoSpec(frames=4, size=32), AudioSpec(), 2.0, 1.0, "
        "follow=True, timeout_s=1.0)\n"
        "print(len(list(ws)), ws.ended)\n"
    )
    out = tmp_path / "out.txt"
    with open(out, "w") as stdout:
        proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=stdout)
        try:
            proc.stdin.write(half)
            proc.stdin.flush()  # and the pipe stays open: the writer stalls
            proc.wait(timeout=120)  # no timing figure: a hang guard
        finally:
            proc.kill()
            proc.stdin.close()
    assert out.read_text().split() == [str(len(windows(path))), "stalled"]


def test_an_http_source_that_stalls_keeps_every_window(long_video, tmp_path):
    half, path = half_stream(long_video, tmp_path)
    with stalling_server(half) as url:
        ws = read_windows(url, VIDEO, AUDIO, 2.0, 1.0, follow=True, timeout_s=1.0)
        got = list(ws)
    assert ws.ended == "stalled"
    want = windows(path)
    assert [w.start for w in got] == [w.start for w in want] and len(got) >= 10
    np.testing.assert_array_equal(got[-1].frames, want[-1].frames)


def test_a_growing_file_waits_one_timeout_after_it_stops_growing(long_video):
    """FFmpeg reads past the end several times; each read used to wait the whole timeout
    again (a 5 s timeout took 20 s). The end is final: one wait in all."""
    reader = FollowFile(long_video["ts"], stall_s=0.5, poll_s=0.05)
    with av.open(reader) as container:
        packets = sum(1 for _ in container.demux())
    assert packets > 100 and reader.stalled
    assert reader.idle_s == pytest.approx(0.5, abs=0.051)  # simulated seconds: polls counted
    ws = read_windows(str(long_video["ts"]), VIDEO, AUDIO, 2.0, 1.0, follow=True, timeout_s=0.3)
    assert len(list(ws)) == 23 and ws.ended == "stalled"


def test_a_truncated_faststart_mp4_says_it_ended_early(cut_faststart, long_video):
    ws = read_windows(str(cut_faststart), VIDEO, AUDIO, 2.0, 1.0)
    got = list(ws)
    assert 5 <= len(got) < 23 and ws.ended == "cut short"
    assert "ends early" in ws.note and "of the 24.0 s it states" in ws.note
    whole = read_windows(str(long_video["mp4"]), VIDEO, AUDIO, 2.0, 1.0)
    assert len(list(whole)) == 23 and whole.ended == "end" and whole.note == ""


def test_an_image_is_not_a_video(tmp_path):
    from PIL import Image

    png = tmp_path / "photo.png"
    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(png)
    with pytest.raises(DecodeError, match=r"photo.png: a still image \(png_pipe\), not a video"):
        windows(png)
    with pytest.raises(DecodeError, match="photo.png: a still image"):
        decode_clip(str(png), VIDEO, AUDIO)


def test_phone_rotation_is_applied_to_windows(tmp_path):
    from tests.media.test_decode import write_rotation_pair

    rotated, upright = write_rotation_pair(tmp_path)
    a, b = windows(rotated, window=1.0), windows(upright, window=1.0)
    assert len(a) == len(b) > 0
    for x, y in zip(a, b, strict=True):
        assert np.abs(x.frames.astype(int) - y.frames.astype(int)).mean() < 8

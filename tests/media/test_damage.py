"""Damaged and unusual footage: packets that fail are skipped and counted, as players do;
streams without a stated duration are measured; a window past the end is refused."""

from pathlib import Path

import av
import numpy as np
import pytest

from vdg_tf.config import AudioSpec, DataConfig, VideoSpec
from vdg_tf.data.pipeline import SkipLog, decoded_dataset
from vdg_tf.data.sample import write_clip
from vdg_tf.manifest import read_manifest, write_manifest
from vdg_tf.media.decode import DecodeError, decode_clip

VS, AS = VideoSpec(frames=8, size=32), AudioSpec(seconds=1.0)
FRAMES, FPS = 16, 8


def _frames(seed: int) -> np.ndarray:
    """A moving square on a background that brightens frame by frame, with noise (so the
    encoder spends bytes on every frame and a damaged byte lands in a frame's data)."""
    rng = np.random.default_rng(seed)
    out = rng.integers(0, 40, (FRAMES, 96, 96, 3), dtype=np.uint8)
    for t in range(FRAMES):
        out[t] += np.uint8(t * 12)
        out[t, 20 + 3 * t : 40 + 3 * t, 30:50] = 255
    return out


def _audio() -> np.ndarray:
    t = np.arange(int(16000 * FRAMES / FPS)) / 16000
    return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def damage(data: bytes, kind: str, seed: int) -> bytes:
    """`data` with seeded damage past the container header: 12 flipped bytes, a zeroed run
    of 1.5 KB, or the file cut short at 50-90% of its length."""
    rng = np.random.default_rng(seed)
    b = bytearray(data)
    lo, hi = min(2048, len(b) // 4), len(b) - 2048
    if kind == "flip":
        for i in rng.integers(lo, hi, 12):
            b[int(i)] ^= int(rng.integers(1, 256))
    elif kind == "zero":
        at = int(rng.integers(lo, hi - 1536))
        b[at : at + 1536] = bytes(1536)
    elif kind == "truncate":
        b = b[: int(len(b) * rng.uniform(0.5, 0.9))]
    else:
        raise ValueError(kind)
    return bytes(b)


def plain_pyav_frames(path: Path) -> int:
    """Video frames a plain PyAV loop gets when it skips the packets that fail."""
    frames = 0
    try:
        with av.open(str(path)) as container:
            for packet in container.demux(container.streams.video[0]):
                try:
                    frames += len(packet.decode())
                except av.FFmpegError:
                    continue
    except av.FFmpegError:
        return frames
    return frames


@pytest.fixture(scope="module")
def damaged(tmp_path_factory):
    """18 damaged clips: byte flips and zeroed runs in mp4, truncation of mp4 and mkv."""
    root = tmp_path_factory.mktemp("damaged")
    out = []
    for suffix in (".mp4", ".mkv"):
        clean = root / f"clean{suffix}"
        write_clip(clean, _frames(len(suffix)), FPS, _audio())
        data = clean.read_bytes()
        kinds = ("flip", "zero", "truncate") if suffix == ".mp4" else ("truncate",)
        for kind in kinds:
            for seed in range(6 if suffix == ".mp4" else 6):
                path = root / f"{kind}{seed}{suffix}"
                path.write_bytes(damage(data, kind, seed))
                out.append(path)
    return out


def test_clips_a_plain_pyav_loop_mostly_decodes_are_kept(damaged):
    mostly = [p for p in damaged if plain_pyav_frames(p) >= 0.75 * FRAMES]
    assert len(mostly) >= 10, "the damage generator should leave most flips/zeroes usable"
    kept, bad = [], 0
    for path in mostly:
        try:
            clip = decode_clip(str(path), VS, AS, threads=1)
        except DecodeError as e:
            pytest.fail(f"a mostly decodable clip was refused: {e}")
        assert clip.frames.shape == (8, 32, 32, 3)
        kept.append(path)
        bad += clip.bad_packets
    assert bad > 0, "some of the kept clips had packets that failed and were skipped"
    # refusing any damage (the behaviour before) loses the clips that had bad packets
    refused = 0
    for path in mostly:
        try:
            decode_clip(str(path), VS, AS, threads=1, max_bad_fraction=0.0)
        except DecodeError as e:
            assert f"{path.name}: damaged: " in str(e)
            refused += 1
    assert refused > 0


def test_a_clip_with_too_many_bad_packets_is_refused_with_the_count(tmp_path):
    clean = tmp_path / "c.mp4"
    write_clip(clean, _frames(0), FPS, _audio())
    data = bytearray(clean.read_bytes())
    lo, hi = data.find(b"mdat") + 64, data.find(b"moov")  # the packets, not the index
    rng = np.random.default_rng(1)
    for i in rng.integers(lo, hi, 300):
        data[int(i)] ^= 0xFF
    (tmp_path / "wrecked.mp4").write_bytes(bytes(data))
    with pytest.raises(DecodeError, match=r"wrecked.mp4: (damaged: \d+ of \d+ packets|no dec)"):
        decode_clip(str(tmp_path / "wrecked.mp4"), VS, AS, max_bad_fraction=0.05)


def test_the_skip_summary_counts_clips_kept_damaged(damaged, tmp_path):
    usable = [p for p in damaged if plain_pyav_frames(p) >= 0.75 * FRAMES][:6]
    write_manifest(tmp_path / "m.jsonl", [{"video": str(p), "label": "a"} for p in usable])
    rows, _ = read_manifest(tmp_path / "m.jsonl")
    cfg = DataConfig(video=VideoSpec(frames=4, size=32), audio=AS)
    skips = SkipLog()
    clips = list(decoded_dataset(rows, cfg, ["a"], skips=skips).as_numpy_iterator())
    assert len(clips) == len(usable) and skips.count == 0
    assert skips.damaged_count > 0
    assert f"kept {skips.damaged_count} damaged clips" in skips.summary(len(rows))


def _raw_stream(path: Path, fmt: str, codec: str, options: dict | None = None) -> np.ndarray:
    """A stream with no stated duration: 36 frames at 12 fps whose brightness grows."""
    frames = np.repeat(np.arange(0, 36 * 7, 7, dtype=np.uint8), 64 * 64 * 3).reshape(36, 64, 64, 3)
    with av.open(str(path), "w", format=fmt, options=options or {}) as out:
        vs = out.add_stream(codec, rate=12)
        vs.width = vs.height = 64
        vs.pix_fmt = "yuv420p"
        for f in frames:
            out.mux(vs.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        out.mux(vs.encode())
    return frames


@pytest.mark.parametrize(
    "name, fmt, codec, options",
    [("raw.h264", "h264", "libx264", None), ("live.webm", "webm", "libvpx", {"live": "1"})],
)
def test_streams_without_a_duration_are_sampled_over_the_whole_clip(
    tmp_path, name, fmt, codec, options
):
    """Before, the window ran to 1e9 s and every frame was the last one."""
    path = tmp_path / name
    _raw_stream(path, fmt, codec, options)
    with av.open(str(path)) as c:
        assert c.duration is None and not c.streams.video[0].duration  # what makes it hard
    clip = decode_clip(str(path), VideoSpec(frames=6, size=16), AS)
    brightness = clip.frames.reshape(6, -1).mean(axis=1)
    assert np.all(np.diff(brightness) > 20), brightness  # six different frames, in order
    assert abs(clip.duration - 3.0) < 0.2  # 36 frames at 12 fps


def test_a_start_past_the_end_is_refused_not_filled_with_the_last_frame(tmp_path):
    write_clip(tmp_path / "c.mp4", _frames(0), FPS, _audio())  # 2 s
    with pytest.raises(DecodeError, match="start 5 s is past the end of the clip"):
        decode_clip(str(tmp_path / "c.mp4"), VS, AS, start=5.0)
    _raw_stream(tmp_path / "raw.h264", "h264", "libx264")  # 3 s, no stated duration
    with pytest.raises(DecodeError, match="start 10 s is past the end of the clip"):
        decode_clip(str(tmp_path / "raw.h264"), VS, AS, start=10.0)
    with pytest.raises(DecodeError, match="start 10 s is past the end of the clip"):
        decode_clip(str(tmp_path / "raw.h264"), VS, AS, start=10.0, end=12.0)  # not probed


def test_a_video_cut_short_is_not_filled_with_copies_of_its_last_frame(tmp_path):
    """A truncated mkv still opens and demuxes to its cut; sampled over the stated 2 s,
    half the frames would repeat the last one: refused, naming where it stops."""
    write_clip(tmp_path / "c.mkv", _frames(0), FPS, _audio())
    data = (tmp_path / "c.mkv").read_bytes()
    (tmp_path / "cut.mkv").write_bytes(data[: int(len(data) * 0.45)])
    with pytest.raises(DecodeError, match=r"cut.mkv: damaged: the video stops at 0\.\d+ s"):
        decode_clip(str(tmp_path / "cut.mkv"), VS, AS)

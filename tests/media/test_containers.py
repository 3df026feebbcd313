"""Decoding across containers and codecs, separate audio files, and seeking in long files."""

import numpy as np
import pytest

from vdg_tf.config import AudioSpec, VideoSpec
from vdg_tf.data.sample import render_audio, render_frames, write_audio, write_clip
from vdg_tf.media.decode import decode_clip

VS, AS = VideoSpec(frames=6, size=64), AudioSpec(seconds=1.0)
IDX = [2, 6, 10, 14, 18, 22]  # frames at the centres of 6 segments of 24 frames


@pytest.fixture(scope="module")
def media():
    rng = np.random.default_rng(5)
    return render_frames(rng, "left", 24, 64), render_audio(rng, "low", 2.0, 48000)


@pytest.mark.parametrize(
    "suffix, vcodec, acodec, rate",
    [(".mp4", "h264", "aac", 44100), (".webm", "libvpx-vp9", "libopus", 48000), (".mkv", "mpeg4", "flac", 48000),
     (".mov", "h264", "libmp3lame", 44100)],
)  # fmt: skip
def test_containers_decode_to_the_same_clip(tmp_path, media, suffix, vcodec, acodec, rate):
    frames, audio = media
    path = tmp_path / f"clip{suffix}"
    write_clip(path, frames, 12, audio, rate, vcodec, acodec)
    clip = decode_clip(str(path), VS, AS)
    assert clip.has_audio and clip.frames.shape == (6, 64, 64, 3)
    assert np.abs(clip.frames.astype(float) - frames[IDX]).mean() < 12
    # resampled to 16 kHz: the 200-350 Hz tone dominates the spectrum
    spectrum = np.abs(np.fft.rfft(clip.audio))
    peak_hz = spectrum.argmax() * AS.sample_rate / len(clip.audio)
    assert 180 < peak_hz < 380


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".mp3", ".m4a"])
def test_separate_audio_files(tmp_path, media, suffix):
    frames, audio = media
    write_clip(tmp_path / "v.mp4", frames, 12, None)
    write_audio(tmp_path / f"a{suffix}", audio, 48000)
    clip = decode_clip(str(tmp_path / "v.mp4"), VS, AS, audio_path=str(tmp_path / f"a{suffix}"))
    assert clip.has_audio and np.abs(clip.audio).max() > 0.1


def test_window_deep_in_a_long_file_seeks_to_the_right_frames(tmp_path):
    """Frame k of a 20 s file is filled with grey level 2k; a 15-16 s window must see k in 180..191."""
    fps, n = 12, 240
    frames = np.repeat(
        np.repeat((np.arange(n) * 255 // n).astype(np.uint8)[:, None, None, None], 32, 1), 32, 2
    )
    frames = np.repeat(frames, 3, axis=3)
    write_clip(tmp_path / "long.mp4", frames, fps, None)
    clip = decode_clip(
        str(tmp_path / "long.mp4"), VideoSpec(frames=4, size=32), AS, start=15.0, end=16.0
    )
    levels = clip.frames.reshape(4, -1).mean(1)
    expected = np.array([181, 184, 187, 190]) * 255 // n
    np.testing.assert_allclose(levels, expected, atol=3)
    # single-threaded, as in the pipeline, skipping the frames no target needs
    one = decode_clip(
        str(tmp_path / "long.mp4"), VideoSpec(frames=4, size=32), AS, 15.0, 16.0, threads=1
    )
    np.testing.assert_array_equal(one.frames, clip.frames)


@pytest.mark.parametrize(
    "suffix, vcodec", [(".mp4", "h264"), (".webm", "libvpx-vp9"), (".mkv", "mpeg4")]
)
@pytest.mark.parametrize("spec", [VS, VideoSpec(frames=4, size=64, fps=6.0)])
def test_skipping_unneeded_frames_keeps_the_sampled_frames(tmp_path, media, suffix, vcodec, spec):
    frames, audio = media
    path = str(tmp_path / f"clip{suffix}")
    acodec = {".mp4": "aac", ".webm": "libopus", ".mkv": "flac"}[suffix]
    write_clip(path, frames, 12, audio, 48000, vcodec, acodec)
    full = decode_clip(path, spec, AS, threads=1, skip_unneeded=False)
    skipped = decode_clip(path, spec, AS, threads=1)
    np.testing.assert_array_equal(full.frames, skipped.frames)
    np.testing.assert_array_equal(full.audio, skipped.audio)


def test_h264_frames_between_targets_are_not_decoded(tmp_path):
    """x264's non-reference B-frames that no target picks never reach the output."""
    import av

    from vdg_tf.media.decode import FrameSkipper, sample_times

    # 96x96, the demo's size: at 64x64 x264 (core 165) writes no B-frames at all, even
    # with b-adapt=0, so there would be nothing to skip
    write_clip(tmp_path / "clip.mp4", render_frames(np.random.default_rng(5), "left", 24, 96), 12)
    with av.open(str(tmp_path / "clip.mp4")) as c:
        kinds = [int(f.pict_type) for f in c.decode(video=0)]
    assert kinds.count(int(av.video.frame.PictureType.B)) >= 8, kinds

    def frames_out(skip: bool) -> int:
        with av.open(str(tmp_path / "clip.mp4")) as c:
            vs = c.streams.video[0]
            vs.codec_context.thread_count = 1
            skipper = FrameSkipper(vs, sample_times(0.0, 2.0, VideoSpec(frames=3)))
            out = 0
            for packet in c.demux(vs):  # the last, empty packet flushes the decoder
                if skip:
                    skipper.before(packet)
                out += len(packet.decode())
            return out

    assert frames_out(skip=False) == 24 and frames_out(skip=True) < 24


@pytest.mark.parametrize("video_at, audio_at", [(10.0, 10.0), (11.0, 10.0)])
def test_times_count_from_the_clock_start_of_a_recording_that_starts_late(
    tmp_path, video_at, audio_at
):
    """A recording cut from a live stream starts its clock anywhere (here 10 s): `start`/`end`
    count from its first timestamp, as players and `ffmpeg -ss` count (video that starts 1 s
    after the audio is 1 s into the clock), so its window 3-4 s holds the frames the same
    file with its clock at 0 holds there."""
    import av

    fps, n = 12, 72
    frames = np.repeat((np.arange(n) * 255 // n).astype(np.uint8)[:, None, None, None], 32, 1)
    frames = np.repeat(np.repeat(frames, 32, 2), 3, axis=3)
    audio = render_audio(np.random.default_rng(0), "low", 7.0, 48000)
    write_clip(tmp_path / "grey.mp4", frames, fps, audio, 48000)
    with av.open(str(tmp_path / "grey.mp4")) as inp, av.open(str(tmp_path / "late.ts"), "w") as out:
        mapping = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        for packet in inp.demux():
            if packet.dts is None:
                continue
            at = video_at if packet.stream.type == "video" else audio_at
            shift = int(at / packet.time_base)
            packet.pts, packet.dts = packet.pts + shift, packet.dts + shift
            packet.stream = mapping[packet.stream.index]
            out.mux(packet)
    lead = video_at - audio_at  # where the video starts on the file's own clock
    spec = VideoSpec(frames=4, size=32)
    mp4 = decode_clip(str(tmp_path / "grey.mp4"), spec, AS, start=3.0 - lead, end=4.0 - lead)
    late = decode_clip(str(tmp_path / "late.ts"), spec, AS, start=3.0, end=4.0)
    np.testing.assert_array_equal(late.frames, mp4.frames)
    assert late.duration == pytest.approx(1.0) and late.has_audio
    whole = decode_clip(str(tmp_path / "late.ts"), spec, AS)  # no bounds: the whole file
    assert whole.duration == pytest.approx(n / fps + lead, abs=0.15)


@pytest.mark.parametrize("gop", [12, 1000])
def test_a_window_deep_in_mpeg_ts_holds_the_frames_of_the_indexed_file(tmp_path, gop):
    """MPEG-TS has no index: it is seeked 5 s before a window and decoded from the next
    keyframe (a 1 s GOP), or, when that keyframe comes after the window (one keyframe in
    the file), decoded from the start; both give the frames the indexed mp4 gives."""
    import av

    fps, n = 12, 360
    levels = (np.arange(n) * 255 // n).astype(np.uint8)
    with av.open(str(tmp_path / "ramp.mp4"), "w") as out:
        vs = out.add_stream("h264", rate=fps)
        vs.width = vs.height = 32
        vs.pix_fmt = "yuv420p"
        vs.codec_context.gop_size = gop
        vs.options = {"sc_threshold": "0", "keyint_min": str(gop)}
        for level in levels:
            img = np.full((32, 32, 3), level, np.uint8)
            for packet in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
    with av.open(str(tmp_path / "ramp.mp4")) as inp, av.open(str(tmp_path / "ramp.ts"), "w") as out:
        stream = out.add_stream_from_template(inp.streams.video[0])
        keys = 0
        for packet in inp.demux():
            if packet.dts is None:
                continue
            keys += packet.is_keyframe
            packet.stream = stream
            out.mux(packet)
    assert keys == (1 if gop > n else n // gop)
    spec = VideoSpec(frames=4, size=32)
    mp4 = decode_clip(str(tmp_path / "ramp.mp4"), spec, AS, start=22.0, end=23.0)
    ts = decode_clip(str(tmp_path / "ramp.ts"), spec, AS, start=22.0, end=23.0, threads=1)
    np.testing.assert_array_equal(ts.frames, mp4.frames)
    want = (np.array([265, 268, 271, 274]) * 255 // n).astype(float)  # frames 264-275
    np.testing.assert_allclose(ts.frames.reshape(4, -1).mean(1), want, atol=3)

"""PyAV decoding of real files: shapes, ranges, windows, missing audio, bad files."""

import numpy as np
import pytest

from vdg_tf.config import AudioSpec, VideoSpec
from vdg_tf.data.sample import render_audio, render_frames, write_audio, write_clip, write_wav
from vdg_tf.media.decode import DecodeError, decode_clip, sample_times

VS, AS = VideoSpec(frames=6, size=32), AudioSpec(seconds=1.0)


@pytest.fixture(scope="module")
def clip_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(0)
    frames = render_frames(rng, "right", 24, 64)  # 2 s at 12 fps
    audio = render_audio(rng, "high", 2.0, 16000)
    write_clip(d / "av.mp4", frames, 12, audio)
    write_clip(d / "silent.mp4", frames, 12, None)
    write_wav(d / "tone.wav", audio)
    (d / "empty.mp4").write_bytes(b"")
    (d / "junk.mp4").write_bytes(b"this is not a video file" * 100)
    whole = (d / "av.mp4").read_bytes()
    (d / "truncated.mp4").write_bytes(whole[: len(whole) // 2])  # a download cut short
    # the sample entry's codec tag renamed: a codec this FFmpeg has no decoder for
    (d / "unknown_codec.mp4").write_bytes(whole.replace(b"avc1", b"zzzz"))
    write_audio(d / "audio_only.m4a", audio, 16000)
    return d


def test_decode_shapes_and_ranges(clip_files):
    clip = decode_clip(str(clip_files / "av.mp4"), VS, AS)
    assert clip.frames.shape == (6, 32, 32, 3) and clip.frames.dtype == np.uint8
    assert clip.audio.shape == (16000,) and clip.audio.dtype == np.float32
    assert clip.has_audio and 0.1 < np.abs(clip.audio).max() <= 1.0
    assert clip.duration == pytest.approx(2.0, abs=0.1)


def test_sampled_frames_are_the_frames_at_the_target_times(clip_files):
    """At full size, decoded frames match the rendered ones at floor(t * fps), up to H.264 loss."""
    clip = decode_clip(str(clip_files / "av.mp4"), VideoSpec(frames=6, size=64), AS)
    rendered = render_frames(np.random.default_rng(0), "right", 24, 64).astype(float)
    idx = [2, 6, 10, 14, 18, 22]
    err = np.abs(clip.frames.astype(float) - rendered[idx]).mean()
    shifted = np.abs(clip.frames.astype(float) - rendered[[i + 1 for i in idx]]).mean()
    assert err < 8 and err < shifted


def test_no_audio_track_gives_silence_and_mask(clip_files):
    clip = decode_clip(str(clip_files / "silent.mp4"), VS, AS)
    assert not clip.has_audio
    assert np.all(clip.audio == 0)


def test_separate_wav_replaces_the_track(clip_files):
    clip = decode_clip(
        str(clip_files / "silent.mp4"), VS, AS, audio_path=str(clip_files / "tone.wav")
    )
    assert clip.has_audio and np.abs(clip.audio).max() > 0.1


def test_window_decodes_only_its_part(clip_files):
    clip = decode_clip(str(clip_files / "av.mp4"), VS, AS, start=1.0, end=1.5)
    assert clip.duration == pytest.approx(0.5, abs=0.1)
    assert np.all(clip.audio[9000:] == 0)  # 0.5 s of audio, then padding


def test_uniform_times_cover_the_clip():
    t = sample_times(0.0, 2.0, VideoSpec(frames=4))
    np.testing.assert_allclose(t, [0.25, 0.75, 1.25, 1.75])


@pytest.mark.parametrize(
    "name, problem",
    [
        ("missing.mp4", "not found"),
        ("empty.mp4", "empty"),
        ("junk.mp4", "cannot decode"),
        ("truncated.mp4", "cannot decode"),
        ("unknown_codec.mp4", "unknown or unsupported video codec"),
        ("audio_only.m4a", "no video stream"),
    ],
)
def test_bad_files_raise_naming_the_file(clip_files, name, problem):
    with pytest.raises(DecodeError, match=problem) as e:
        decode_clip(str(clip_files / name), VS, AS)
    assert name in str(e.value) and "\n" not in str(e.value)


def write_rotation_pair(folder) -> tuple:
    """Two 2 s videos that show the same picture: `rotated.mp4` stores landscape frames
    (top half white) with a 90 degree display rotation, as a phone held upright does;
    `upright.mp4` stores the frames already turned (left half white), with no rotation."""
    import av

    landscape = np.zeros((48, 64, 3), np.uint8)
    landscape[:24] = 255
    paths = []
    for name, img, degrees in (("rotated", landscape, 90), ("upright", np.rot90(landscape), 0)):
        path = folder / f"{name}.mp4"
        with av.open(str(path), "w") as out:
            stream = out.add_stream("libx264", rate=12)
            stream.height, stream.width = img.shape[:2]
            stream.pix_fmt = "yuv420p"
            if degrees:
                stream.set_display_rotation(degrees)
            frame = np.ascontiguousarray(img)
            for _ in range(24):
                out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            out.mux(stream.encode())
        paths.append(path)
    return tuple(paths)


def test_display_rotation_turns_phone_video_upright(tmp_path):
    """Training and predict see what a player shows, not the sideways stored frames."""
    rotated, upright = write_rotation_pair(tmp_path)
    spec = VideoSpec(frames=4, size=32)
    a = decode_clip(str(rotated), spec, AudioSpec()).frames.astype(int)
    b = decode_clip(str(upright), spec, AudioSpec()).frames.astype(int)
    assert b[:, :, :16].mean() > 200 and b[:, :, 16:].mean() < 50  # left half white
    assert np.abs(a - b).mean() < 8

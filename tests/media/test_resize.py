"""`video.resize`: `crop` fills the square from the centre; `pad` letterboxes the whole frame."""

import numpy as np

from vdg_tf.config import AudioSpec, VideoSpec
from vdg_tf.data.sample import write_clip
from vdg_tf.media.decode import decode_clip


def test_pad_letterboxes_a_wide_clip_and_crop_fills_the_square(tmp_path):
    frames = np.full((12, 48, 96, 3), 200, np.uint8)  # a bright 2:1 frame
    path = tmp_path / "wide.mp4"
    write_clip(path, frames, 12)
    pad = decode_clip(str(path), VideoSpec(frames=2, size=32, resize="pad"), AudioSpec()).frames
    crop = decode_clip(str(path), VideoSpec(frames=2, size=32, resize="crop"), AudioSpec()).frames
    assert pad.shape == crop.shape == (2, 32, 32, 3)
    rows = pad.mean(axis=(0, 2, 3))
    assert rows[:7].max() == 0 and rows[-7:].max() == 0  # black bars above and below
    assert rows[10:22].min() > 150  # the picture, whole width, in the middle
    assert crop.min() > 150  # no bars

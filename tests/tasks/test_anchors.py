"""The anchor layout and the SSD box coder the detection head, loss and export share."""

from __future__ import annotations

import numpy as np
import pytest

from vdg_tf.tasks.anchors import AnchorSpec, anchor_boxes, corners, decode, encode, iou


def test_anchor_count_and_order_follow_the_conv_layout():
    spec = AnchorSpec(image_size=(96, 128), strides=(16, 32), sizes=(24, 48))
    anchors = anchor_boxes(spec)
    assert anchors.shape == ((6 * 8 + 3 * 4) * 3, 4)
    # first cell of level 0: centre (8, 8) px of a 96x128 frame, three ratios
    np.testing.assert_allclose(anchors[0, :2], [8 / 96, 8 / 128])
    np.testing.assert_allclose(anchors[1, 3] / anchors[1, 2], 2.0 * 96 / 128, rtol=1e-5)
    # the next cell moves along x, not y
    np.testing.assert_allclose(anchors[3, :2], [8 / 96, 24 / 128])


def test_encode_then_decode_gives_the_box_back():
    anchors = anchor_boxes(AnchorSpec(image_size=(64, 64), strides=(32,), sizes=(32,)))
    boxes = np.tile([[0.1, 0.2, 0.5, 0.7]], (len(anchors), 1))
    np.testing.assert_allclose(decode(encode(boxes, anchors), anchors), boxes, atol=1e-5)
    # an anchor encodes to zeros against itself
    np.testing.assert_allclose(encode(corners(anchors), anchors), 0, atol=1e-5)


def test_iou_of_known_boxes():
    got = iou(np.array([[0, 0, 0.5, 0.5]]), np.array([[0, 0, 0.5, 0.5], [0.25, 0, 0.75, 0.5]]))
    np.testing.assert_allclose(got, [[1.0, 1 / 3]], rtol=1e-5)


def test_spec_round_trips_and_refuses_mismatched_levels():
    spec = AnchorSpec(image_size=(96, 128))
    assert AnchorSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ValueError, match="2 strides but 1 sizes"):
        AnchorSpec(image_size=(96, 128), strides=(8, 16), sizes=(16,))

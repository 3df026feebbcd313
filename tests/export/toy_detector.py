"""A tiny hand-built detection model that follows the detection contract, for export and
runtime tests: a `frame_detector` sub-model (frame [B, 32, 32, 3] in [0, 1] -> box
encodings [B, 64, 4], sigmoid class scores [B, 64, 2]) inside a video model
([B, T, 32, 32, 3] -> [B, T, 64, 4], [B, T, 64, 2]).

Its class score at each 4x4-pixel cell follows the cell's red (class 0) and blue (class 1)
brightness, and its box encodings are zero (each box is its anchor), so a frame with a red
square gives a red box where the square is: real behaviour a test can predict by hand.
"""

from __future__ import annotations

import numpy as np
import tf_keras as keras

from vdg_tf.tasks.anchors import AnchorSpec, anchor_boxes

SIZE = 32
LABELS = ["red", "blue"]
SPEC = AnchorSpec(image_size=(SIZE, SIZE), strides=(4,), sizes=(8.0,), aspect_ratios=(1.0,))
ANCHORS = anchor_boxes(SPEC)  # [64, 4]: one 8x8-pixel anchor per 4x4 cell


def frame_detector() -> keras.Model:
    """Frame -> (box encodings, class scores) with fixed, readable weights."""
    frame = keras.Input((SIZE, SIZE, 3), name="frame")
    cells = keras.layers.AveragePooling2D(4, name="cells")(frame)  # [B, 8, 8, 3]
    scores = keras.layers.Conv2D(2, 1, activation="sigmoid", name="class_conv")(cells)
    boxes = keras.layers.Conv2D(4, 1, name="box_conv")(cells)
    model = keras.Model(
        frame,
        [keras.layers.Reshape((64, 4))(boxes), keras.layers.Reshape((64, 2))(scores)],
        name="frame_detector",
    )
    # red minus the rest -> class 0; blue minus the rest -> class 1
    kernel = np.array([[12.0, -6.0], [-6.0, -6.0], [-6.0, 12.0]], np.float32)[None, None]
    model.get_layer("class_conv").set_weights([kernel, np.full(2, -4.0, np.float32)])
    model.get_layer("box_conv").set_weights([np.zeros((1, 1, 3, 4), np.float32), np.zeros(4)])
    return model


def video_model(frames: int = 2) -> keras.Model:
    """video [B, T, 32, 32, 3] -> box_encodings [B, T, 64, 4], class_scores [B, T, 64, 2]:
    the frame detector on every frame (time folded into the batch)."""
    import tensorflow as tf

    det = frame_detector()
    video = keras.Input((frames, SIZE, SIZE, 3), name="video")
    flat = keras.layers.Lambda(lambda v: tf.reshape(v, [-1, SIZE, SIZE, 3]))(video)
    enc, scores = det(flat)
    unfold = keras.layers.Lambda(lambda x: tf.reshape(x[0], [-1, frames, 64, x[1]]))
    outputs = {"box_encodings": unfold([enc, 4]), "class_scores": unfold([scores, 2])}
    return keras.Model(video, outputs, name="toy")


def square_frame(color: int, x: int, y: int, side: int = 8, size: int = SIZE) -> np.ndarray:
    """A dark uint8 frame [size, size, 3] with one bright square of channel `color`."""
    frame = np.full((size, size, 3), 20, np.uint8)
    frame[y : y + side, x : x + side, color] = 240
    return frame

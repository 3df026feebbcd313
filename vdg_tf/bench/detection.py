"""Per-frame cost of a detection run in Keras: the frame detector, and the box decoding.

What a frame costs on this CPU, side by side in one run: `frame_detector` on one frame
(batch 1, what a live feed runs), per frame at batch 8 (what evaluation runs), and
`boxes_from_outputs` (decode + per-class NMS in NumPy) on the same frame's outputs, so
the ratio says whether the Python post-processing matters beside the network. The
int8 LiteRT figures belong to the export (`vdg export` and its verification).

Example:
  row = bench_detection("runs/det")
  row["keras_ms_per_frame_batch1"], row["decode_to_model_ratio"]
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np


def _best_ms(fn, runs: int) -> float:
    """The fastest of `runs` timed calls of `fn` after one warm-up call, in ms (the
    least disturbed by the other work on a shared machine)."""
    fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * min(times)


def bench_detection(model: str | Path, runs: int = 20, seed: int = 0) -> dict:
    """Latency figures of the run folder `model` (a detection run) on random frames."""
    import tensorflow as tf

    from vdg_tf.bundle import Bundle
    from vdg_tf.tasks.anchors import anchor_boxes
    from vdg_tf.tasks.detection import anchor_spec_of, boxes_from_outputs

    bundle = Bundle.load(model)
    detector = bundle.model.get_layer("frame_detector")
    size = bundle.config.data.video.size
    rng = np.random.default_rng(seed)
    one = tf.constant(rng.random((1, size, size, 3), np.float32))
    eight = tf.constant(rng.random((8, size, size, 3), np.float32))
    call = tf.function(lambda x: detector(x, training=False))
    batch1 = _best_ms(lambda: [t.numpy() for t in call(one)], runs)
    batch8 = _best_ms(lambda: [t.numpy() for t in call(eight)], max(3, runs // 4)) / 8
    enc, scores = (t.numpy()[0] for t in call(one))
    anchors = anchor_boxes(anchor_spec_of(bundle))
    decode = _best_ms(lambda: boxes_from_outputs(enc, scores, anchors, bundle.labels), runs)
    return {
        "model": str(model),
        "frame_size": size,
        "anchors": len(anchors),
        "labels": len(bundle.labels),
        "params": int(detector.count_params()),
        "keras_ms_per_frame_batch1": round(batch1, 2),
        "keras_ms_per_frame_batch8": round(batch8, 2),
        "decode_nms_ms": round(decode, 3),
        "batch8_to_batch1_ratio": round(batch8 / batch1, 3),
        "decode_to_model_ratio": round(decode / batch1, 4),
    }

"""Every task's head goes through QAT and the full-int8 converter and runs in LiteRT
(the ordinal thresholds are a custom layer; one-class anomaly has a sigmoid head)."""

import numpy as np
import pytest
import tf_keras as keras

from tests.helpers import random_inputs, tiny_config
from vdg_tf.compression import quantize_aware
from vdg_tf.data.features import log_mel_frames
from vdg_tf.export import ExportConfig, LiteRTModel, convert
from vdg_tf.models import build_classifier, inference_model

CASES = {  # task: (label count, normal labels, output width)
    "ordinal": (5, None, 4),
    "anomaly": (1, ("normal",), 1),  # one normal label: the tampered-or-not head
    "regression": (0, None, 1),
    "multilabel": (4, None, 4),
}


@pytest.mark.slow
@pytest.mark.parametrize("task", sorted(CASES))
def test_task_head_quantizes_converts_and_runs(task, tmp_path):
    labels, normal, width = CASES[task]
    cfg = tiny_config()
    cfg.data.task = task
    if normal:
        cfg.data.normal_labels = normal
    # a fixed initialisation: an unseeded untrained head can sit on a ReLU's edge, where
    # any rounding flips its only nonzero feature and no output range is left to compare in
    keras.utils.set_random_seed(0)
    model = build_classifier(cfg, labels, 50, log_mel_frames(cfg.data.audio))
    qat = inference_model(quantize_aware(model, False).model)
    samples = [random_inputs(qat, 1, seed) for seed in range(8)]
    path = tmp_path / "m.tflite"
    path.write_bytes(convert(qat, ExportConfig("edge-int8", lambda: iter(samples))))
    lite = LiteRTModel(path)
    x = random_inputs(qat, 3, seed=9)
    got, want = lite.predict_batch(x), np.asarray(qat(x))
    assert got.shape == want.shape == (3, width) and np.all(np.isfinite(got))
    # int8 keeps the float QAT model's outputs to within a few quantization steps of the
    # range calibration saw (an untrained regression head can give ~0 for every input, so
    # the checked batch alone has no range); a sigmoid's int8 output moves in steps of 1/256
    seen = np.concatenate([np.asarray(qat(s)) for s in samples] + [want])
    span = float(np.ptp(seen)) or 1.0
    assert np.max(np.abs(got - want)) <= 0.25 * span + 4 / 256, (got, want)


TOLERANCE = {  # max |tflite - keras| as a fraction of the outputs' scale, per target
    "float32": 1e-4,
    "gpu-fp16": 0.02,
    "cpu-dynamic": 0.2,
    "edge-int8": 0.3,
    "int8-fallback": 0.3,
    "edge-int4": 0.5,
}


@pytest.mark.slow
@pytest.mark.parametrize("task", sorted(CASES))
def test_every_export_target_converts_every_task_head(task, tmp_path):
    """Each target of the table (`export/targets.py`) converts each task's float head and
    runs in LiteRT near the Keras outputs (int8 without QAT: a looser bound)."""
    from vdg_tf.export.targets import TARGETS

    assert set(TARGETS) <= set(TOLERANCE), "a new target needs its tolerance here"
    labels, normal, width = CASES[task]
    cfg = tiny_config()
    cfg.data.task = task
    if normal:
        cfg.data.normal_labels = normal
    model = inference_model(build_classifier(cfg, labels, 50, log_mel_frames(cfg.data.audio)))
    samples = [random_inputs(model, 1, seed) for seed in range(8)]
    x = random_inputs(model, 3, seed=9)
    want = np.asarray(model(x))
    scale = max(float(np.ptp(want)), float(np.max(np.abs(want)))) or 1.0  # untrained: close
    for name, target in TARGETS.items():
        rep = (lambda: iter(samples)) if target.calibrated else None
        path = tmp_path / f"{name}.tflite"
        path.write_bytes(convert(model, ExportConfig(name, rep)))
        got = LiteRTModel(path).predict_batch(x)
        assert got.shape == (3, width), name
        assert np.max(np.abs(got - want)) <= TOLERANCE[name] * scale + 1e-4, (name, got, want)

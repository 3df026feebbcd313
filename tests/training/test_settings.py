"""Training settings do what they say, checked at fixed steps and on built models (no
training runs): schedules, warmup, the fusion loss's weights, label smoothing, strategies."""

import pytest
import tensorflow as tf
import tf_keras as keras

from tests.helpers import tiny_config
from vdg_tf.data.features import log_mel_frames
from vdg_tf.models import build_classifier
from vdg_tf.tasks import get_task
from vdg_tf.training.devices import STRATEGIES, distribution_strategy, use_mixed_precision
from vdg_tf.training.schedules import SCHEDULES, make_schedule
from vdg_tf.training.trainer import compile_classifier


def lr(schedule, step):
    return float(schedule(step)) if callable(schedule) else float(schedule)


def test_cosine_warms_up_then_decays_to_its_floor():
    s = make_schedule("cosine", 1.0, steps_per_epoch=10, epochs=10, warmup_epochs=1)
    assert lr(s, 0) == pytest.approx(0.1) and lr(s, 9) == pytest.approx(1.0)
    assert lr(s, 10) == pytest.approx(1.0)  # warmup ends at the peak
    assert lr(s, 55) == pytest.approx(0.02 + 0.98 * 0.5, abs=1e-6)  # half way: the mid value
    assert lr(s, 100) == pytest.approx(0.02) and lr(s, 10_000) == pytest.approx(0.02)


def test_step_and_inverse_time_and_constant():
    step = make_schedule("step", 1.0, steps_per_epoch=10, epochs=10)
    assert [lr(step, t) for t in (0, 49, 51, 74, 76, 99)] == pytest.approx(
        [1.0, 1.0, 0.1, 0.1, 0.01, 0.01]
    )
    inv = make_schedule("inverse_time", 1.0, steps_per_epoch=10, epochs=10)
    assert [lr(inv, t) for t in (0, 10, 30)] == pytest.approx([1.0, 0.5, 0.25])
    assert lr(make_schedule("constant", 0.3, 10, 10), 500) == pytest.approx(0.3)
    assert set(SCHEDULES) == {"cosine", "inverse_time", "step", "constant"}
    with pytest.raises(ValueError, match="train.schedule: unknown 'linear'"):
        make_schedule("linear", 1.0, 10, 10)


def compiled(**train):
    cfg = tiny_config()
    for k, v in train.items():
        setattr(cfg.train, k, v)
    model = build_classifier(cfg, 4, 50, log_mel_frames(cfg.data.audio))
    compile_classifier(model, cfg, steps_per_epoch=5)
    return model


def test_aux_weight_weighs_each_modality_head_in_the_fusion_loss():
    model = compiled(aux_weight=0.25)
    weights = model.compiled_loss._loss_weights
    assert weights == {"fused": 1.0, "video_head": 0.25, "audio_head": 0.25, "text_head": 0.25}


def test_label_smoothing_changes_the_loss_of_a_confident_right_answer():
    y, p = tf.constant([2]), tf.constant([[0.0, 0.0, 1.0, 0.0]]) + 1e-7
    plain = float(tf.reduce_mean(get_task("classification").loss(0.0)(y, p)))
    smooth = float(tf.reduce_mean(get_task("classification").loss(0.1)(y, p)))
    assert plain < 1e-3 and smooth > 0.5  # the smoothed target spreads 0.1 over 4 classes


def test_strategy_names_and_precision_on_this_cpu():
    assert set(STRATEGIES) == {"auto", "default", "mirrored", "multi_worker"}
    assert distribution_strategy("default") is tf.distribute.get_strategy()
    assert isinstance(distribution_strategy("mirrored"), tf.distribute.MirroredStrategy)
    with pytest.raises(ValueError, match="train.strategy: unknown 'tpu'"):
        distribution_strategy("tpu")
    assert use_mixed_precision("auto") is bool(tf.config.list_physical_devices("GPU"))
    assert use_mixed_precision("on") and not use_mixed_precision("off")
    assert keras.mixed_precision.global_policy().name == "float32"

"""int4-aware fine-tuning: kernels land on edge-int4's grid, so the int4 file matches Keras."""

import numpy as np
import pytest

from tests.helpers import tiny_config
from vdg_tf.compression.quantize_int4 import Int4QATConfig, int4_layer, int4_qat
from vdg_tf.data.sources import dataset_from
from vdg_tf.export import ExportConfig, convert
from vdg_tf.export.verify import agreement, predict_tflite
from vdg_tf.files import atomic_write_bytes
from vdg_tf.models import build_classifier, inference_model
from vdg_tf.tasks import get_task
from vdg_tf.training.trainer import compile_classifier, with_head_targets

pytestmark = pytest.mark.slow  # a fine-tuning epoch and two int4 exports (~70 s on 2 cores)


@pytest.fixture(scope="module")
def snapped(trained_run, sample_data):
    """The trained tiny model after one epoch of int4-aware fine-tuning (pruned half first,
    so that keeping zeros is visible)."""
    model = trained_run.model
    weights = model.get_weights()
    for layer in model.layers:
        if int4_layer(layer):  # zero the smaller half of every int4 kernel
            k, *rest = layer.get_weights()
            k = np.where(np.abs(k) < np.median(np.abs(k)), 0.0, k)
            layer.set_weights([k, *rest])
    pruned = [w.copy() for w in model.get_weights()]
    model.set_weights(weights)  # the session fixture stays as it was
    base = build_classifier(
        tiny_config(), len(trained_run.labels), trained_run.tokenizer.vocab_size,
        model.input["audio"].shape[1],
    )  # fmt: skip
    base.set_weights(pruned)
    train_ds = dataset_from(
        sample_data["manifest_train"],
        tiny_config().data,
        trained_run.labels,
        trained_run.tokenizer,
        training=True,
    )
    fit = with_head_targets(train_ds, model.output_names)
    out = int4_qat(
        base, fit, Int4QATConfig(epochs=1), lambda m, s: compile_classifier(m, tiny_config(), s)
    )
    return base, out


def test_int4_kernels_sit_on_the_export_grid_and_keep_pruned_zeros(snapped):
    base, out = snapped
    checked = 0
    for layer in out.layers:
        if not int4_layer(layer):
            continue
        k = layer.get_weights()[0]
        flat = k.reshape(-1, k.shape[-1])
        scale = np.abs(flat).max(0) / 7  # ai-edge-quantizer's symmetric int4 scale
        levels = flat / np.where(scale > 0, scale, 1)
        np.testing.assert_allclose(levels, np.rint(levels), atol=1e-3, err_msg=layer.name)
        assert np.abs(levels).max() <= 7 + 1e-3
        zeros = base.get_layer(layer.name).get_weights()[0] == 0
        assert (k[zeros] == 0).all(), layer.name
        checked += 1
    assert checked >= 5


def test_int4_file_of_an_int4_aware_model_matches_it(snapped, trained_run, eval_ds, tmp_path):
    """The export's int4 rounding is lossless on the snapped model; on a plain model
    (post-training int4) it is not, which is what the fine-tuning is for."""
    _, out = snapped
    task = get_task("classification")
    diffs = {}
    for name, model in (("aware", out), ("post_training", trained_run.model)):
        path = atomic_write_bytes(
            tmp_path / f"{name}.tflite", convert(inference_model(model), ExportConfig("edge-int4"))
        )
        _, lite = predict_tflite(path, eval_ds)
        keras_probs = np.concatenate(
            [inference_model(model).predict(x, verbose=0) for x, _ in eval_ds]
        )
        diffs[name] = agreement(keras_probs, lite, task)
    # measured: aware max |diff| 0.0025 (the int8 depthwise kernels), post-training 0.061
    assert diffs["aware"]["max_abs_diff"] < 0.02, diffs
    assert diffs["aware"]["max_abs_diff"] < diffs["post_training"]["max_abs_diff"] / 4, diffs
    assert diffs["aware"]["top1_agreement"] >= 15 / 16, diffs

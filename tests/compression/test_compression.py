"""Pruning reaches its target sparsity; PQAT keeps the zeros; the float-layer list is honest."""

import numpy as np
import pytest

from tests.helpers import tiny_config
from vdg_tf.compression import (
    PruneConfig,
    QATConfig,
    is_m_by_n_sparse,
    overall_sparsity,
    prune,
    qat,
    sparsity_by_branch,
    sparsity_table,
)
from vdg_tf.config import Config
from vdg_tf.data.pipeline import make_dataset
from vdg_tf.manifest import read_manifest
from vdg_tf.training.trainer import compile_classifier, with_head_targets

PRUNE = PruneConfig(0.5, epochs=2, min_weights=256)


@pytest.fixture(scope="module")
def pruned_and_qat(trained_run, sample_data):
    cfg: Config = tiny_config()
    rows, _ = read_manifest(sample_data["manifest_train"])
    ds = make_dataset(rows, cfg.data, trained_run.labels, trained_run.tokenizer, training=True)
    fit_ds = with_head_targets(ds, trained_run.model.output_names)
    before = [w.copy() for w in trained_run.model.get_weights()]
    pruned = prune(
        trained_run.model,
        fit_ds,
        PRUNE,
        lambda m, s: compile_classifier(m, cfg, s),
    )
    assert all(
        np.array_equal(b, a) for b, a in zip(before, trained_run.model.get_weights(), strict=True)
    )
    result = qat(
        pruned,
        fit_ds,
        QATConfig(epochs=1, preserve_sparsity=True),
        lambda m, s: compile_classifier(m, cfg, s),
    )
    return pruned, result


def test_sparsity_within_one_point_of_target(pruned_and_qat):
    pruned, _ = pruned_and_qat
    assert abs(overall_sparsity(pruned, PRUNE) - 0.5) <= 0.01
    table = sparsity_table(pruned)
    assert abs(table["video_motion_conv"] - 0.5) <= 0.01
    assert table["fused"] == 0.0  # output heads are left dense by policy


def test_pqat_keeps_pruned_zeros(pruned_and_qat):
    pruned, result = pruned_and_qat
    for layer in result.model.layers:
        inner = getattr(layer, "layer", None)
        if inner is None or inner.name not in ("fusion_dense", "video_motion_conv", "text_conv1"):
            continue
        (kernel,) = [w.numpy() for w in layer.weights if w.name.endswith("/kernel:0")]
        ref = pruned.get_layer(inner.name).get_weights()[0]
        assert np.all(kernel[ref == 0] == 0), inner.name


def test_float_layers_are_listed(pruned_and_qat):
    _, result = pruned_and_qat
    assert "text_embed (Embedding)" in result.float_layers
    assert not any("Conv2D" in name or "Dense" in name for name in result.float_layers)


@pytest.fixture(scope="module")
def fit_ds(trained_run, sample_data):
    cfg: Config = tiny_config()
    rows, _ = read_manifest(sample_data["manifest_train"])
    ds = make_dataset(rows, cfg.data, trained_run.labels, trained_run.tokenizer, training=True)
    return with_head_targets(ds, trained_run.model.output_names)


def _prune(trained_run, fit_ds, pc):
    return prune(
        trained_run.model, fit_ds, pc, lambda m, s: compile_classifier(m, tiny_config(), s)
    )


def test_branch_targets_reach_their_own_sparsity(trained_run, fit_ds):
    pc = PruneConfig(0.5, epochs=1, min_weights=256, targets={"video": 0.75, "text": 0.0})
    pruned = _prune(trained_run, fit_ds, pc)
    by_branch = sparsity_by_branch(pruned, pc)
    assert abs(by_branch["video"] - 0.75) <= 0.01 and abs(by_branch["*"] - 0.5) <= 0.01
    assert "text" not in by_branch and sparsity_table(pruned)["text_conv2"] == 0.0


def test_two_of_four_structured_sparsity(trained_run, fit_ds):
    pc = PruneConfig(epochs=1, min_weights=256, m_by_n=(2, 4))
    pruned = _prune(trained_run, fit_ds, pc)
    kernel = pruned.get_layer("fusion_dense").get_weights()[0]
    assert is_m_by_n_sparse(kernel, (2, 4)) and not is_m_by_n_sparse(
        trained_run.model.get_layer("fusion_dense").get_weights()[0], (2, 4)
    )
    assert abs(float(np.mean(kernel == 0)) - 0.5) <= 0.01

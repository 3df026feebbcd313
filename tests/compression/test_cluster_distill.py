"""Clustering keeps <= N distinct values per kernel; distillation moves a student towards its teacher."""

import dataclasses

import numpy as np
import pytest

from tests.helpers import tiny_config
from vdg_tf.bundle import save_model
from vdg_tf.compression.cluster import ClusterConfig, cluster, distinct_values
from vdg_tf.compression.distill import DistillConfig, distill
from vdg_tf.data.features import log_mel_frames
from vdg_tf.data.sources import dataset_from
from vdg_tf.models import build_classifier, inference_model
from vdg_tf.training.trainer import compile_classifier, with_head_targets


@pytest.fixture(scope="module")
def train_ds(trained_run, sample_data):
    return dataset_from(
        sample_data["manifest_train"],
        tiny_config().data,
        trained_run.labels,
        trained_run.tokenizer,
        training=True,
    )


def test_clustered_kernels_hold_at_most_n_values(trained_run, train_ds):
    cfg = ClusterConfig(clusters=8, epochs=1, preserve_sparsity=False, min_weights=256)
    fit = with_head_targets(train_ds, trained_run.model.output_names)
    steps = []

    def compile_fn(m, s):
        steps.append(s)
        compile_classifier(m, tiny_config(), s)

    clustered = cluster(trained_run.model, fit, cfg, compile_fn)
    assert steps == [sum(1 for _ in fit)]  # a filtered stream's epoch, counted (was 1)
    counts = distinct_values(clustered, cfg)
    assert counts and all(n <= 8 for n in counts.values()), counts
    assert (
        distinct_values(trained_run.model, cfg)["video_motion_conv"] > 8
    )  # the original is untouched


def test_distilled_student_agrees_more_with_its_teacher(trained_run, train_ds, sample_data):
    small = tiny_config()
    small = dataclasses.replace(
        small, model=dataclasses.replace(small.model, width=8, fused_dim=16)
    )
    student = build_classifier(
        small,
        len(trained_run.labels),
        trained_run.tokenizer.vocab_size,
        log_mel_frames(small.data.audio),
    )
    eval_ds = dataset_from(
        sample_data["manifest_train"], small.data, trained_run.labels, trained_run.tokenizer
    )
    teacher = inference_model(trained_run.model)

    def agreement():
        hits = n = 0
        for x, _ in eval_ds:
            hits += int(
                np.sum(
                    teacher(x).numpy().argmax(-1) == inference_model(student)(x).numpy().argmax(-1)
                )
            )
            n += len(x["text"])
        return hits / n

    before = agreement()
    distill(student, trained_run.model, train_ds, DistillConfig(epochs=6))
    assert agreement() > before


@pytest.mark.slow
def test_pcqat_keeps_clusters_and_zeros(trained_run, train_ds, tmp_path):
    """prune -> sparsity-preserving clustering -> PCQAT: kernels keep <= N values and their zeros."""
    from vdg_tf.compression import PruneConfig, QATConfig, load_qat, prune, qat

    def compile_fn(m, s):
        compile_classifier(m, tiny_config(), s)

    fit = with_head_targets(train_ds, trained_run.model.output_names)
    pruned = prune(trained_run.model, fit, PruneConfig(0.5, epochs=1, min_weights=256), compile_fn)
    cfg = ClusterConfig(clusters=8, epochs=1, preserve_sparsity=True, min_weights=256)
    clustered = cluster(pruned, fit, cfg, compile_fn)
    result = qat(
        clustered, fit, QATConfig(1, preserve_sparsity=True, preserve_clusters=True), compile_fn
    )
    ref = clustered.get_layer("fusion_dense").get_weights()[0]
    assert np.mean(ref == 0) >= 0.45 and np.unique(ref).size <= 9
    (layer,) = [
        lay for lay in result.model.layers if getattr(lay, "layer", lay).name == "fusion_dense"
    ]
    (kernel,) = [w.numpy() for w in layer.weights if w.name.endswith("/kernel:0")]
    assert np.all(kernel[ref == 0] == 0)
    # centroids plus zero; the straight-through update leaves float noise below 1e-4, so
    # values closer than that are one centroid (rounding could split a pair across a digit)
    values = np.unique(kernel)
    centroids = 1 + int(np.sum(np.diff(values) > 1e-4))
    assert centroids <= 9, values
    save_model(result.model, tmp_path / "pcqat.h5")  # what `vdg run` resumes from
    back = load_qat(clustered, tmp_path / "pcqat.h5", QATConfig(preserve_clusters=True))
    for a, b in zip(back.get_weights(), result.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)

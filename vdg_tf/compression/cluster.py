"""Weight clustering with tfmot: each selected kernel keeps at most `clusters` distinct values.

Clustered weights compress well (gzip) and, with `preserve_sparsity`, a pruned model keeps
its zeros (sparsity-preserving clustering). Selection follows the pruning policy: output
heads and tiny layers are left alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as keras

from vdg_tf.compression.fitting import fine_tune
from vdg_tf.compression.prune import PruneConfig, selected_for_pruning

clustering = tfmot.clustering.keras


@dataclass
class ClusterConfig:
    """Clusters per kernel, fine-tune epochs, and whether pruned zeros stay zero."""

    # tfmot needs more than 2 with `preserve_sparsity` (zeros take a cluster), more than 1
    # without: 3 is the floor that works either way
    clusters: int = field(default=16, metadata={"min": 3})
    epochs: int = field(default=2, metadata={"min": 1})
    preserve_sparsity: bool = True
    min_weights: int = field(default=1024, metadata={"min": 0})
    skip: tuple[str, ...] = field(default=PruneConfig.skip, metadata={"unique": True})


def _selected(layer: keras.layers.Layer, cfg: ClusterConfig) -> bool:
    if isinstance(layer, keras.layers.Embedding):  # clustering an int-fed table is not supported
        return False
    return selected_for_pruning(layer, PruneConfig(min_weights=cfg.min_weights, skip=cfg.skip))


def wrap_for_clustering(model: keras.Model, cfg: ClusterConfig) -> keras.Model:
    """A copy of `model` with the selected layers wrapped by `cluster_weights`."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    params = {
        "number_of_clusters": cfg.clusters,
        "cluster_centroids_init": clustering.CentroidInitialization.KMEANS_PLUS_PLUS,
        "preserve_sparsity": cfg.preserve_sparsity,
    }

    def clone(layer):
        return clustering.cluster_weights(layer, **params) if _selected(layer, cfg) else layer

    return keras.models.clone_model(copy, clone_function=clone)


def cluster(
    model: keras.Model,
    train_ds: tf.data.Dataset,
    cfg: ClusterConfig,
    compile_fn: Callable[[keras.Model, int], None],
    verbose: int = 0,
    steps_per_epoch: int | None = None,
    callbacks: list | None = None,
) -> keras.Model:
    """Cluster, fine-tune and strip; returns a plain model whose kernels hold <= `clusters` values.

    `steps_per_epoch`: batches an epoch when `train_ds` is an endless stream.
    """
    wrapped = wrap_for_clustering(model, cfg)
    fine_tune(wrapped, train_ds, cfg.epochs, compile_fn, verbose, steps_per_epoch, callbacks)
    return clustering.strip_clustering(wrapped)


def distinct_values(model: keras.Model, cfg: ClusterConfig) -> dict[str, int]:
    """Distinct kernel values of each clustered layer (<= clusters, +1 for kept zeros)."""
    return {
        layer.name: int(np.unique(layer.get_weights()[0]).size)
        for layer in model.layers
        if _selected(layer, cfg)
    }

"""The vectorized per-channel clustering used by (P)CQAT against tfmot's channel loop."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras
from tensorflow_model_optimization.python.core.clustering.keras import clustering_algorithm
from tensorflow_model_optimization.python.core.clustering.keras.cluster_config import (
    GradientAggregation,
)
from tensorflow_model_optimization.python.core.quantization.keras.collab_opts.cluster_preserve import (
    cluster_preserve_quantize_registry as cqat_registry,
)

from vdg_tf.compression.cluster_preserve import (
    ClusterPreserveRegistry,
    VectorizedPerChannelClustering,
)


def _kernel_and_centroids(channels: int, k: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    centroids = rng.normal(size=(channels, k)).astype(np.float32)
    kernel = rng.normal(size=(3, 3, 5, channels)).astype(np.float32)
    return kernel, centroids


@pytest.mark.parametrize("aggregation", [GradientAggregation.SUM, GradientAggregation.AVG])
def test_vectorized_clustering_matches_tfmot_values_and_gradients(aggregation):
    kernel, centroids = _kernel_and_centroids(channels=6)
    results = []
    for cls in (clustering_algorithm.ClusteringAlgorithmPerChannel, VectorizedPerChannelClustering):
        c = tf.Variable(centroids)
        w = tf.Variable(kernel)
        impl = cls(c, aggregation, "channels_last")
        with tf.GradientTape() as tape:
            idx = impl.get_pulling_indices(w)
            out = impl.get_clustered_weight(idx, w)
            weights = tf.reshape(tf.range(tf.size(out), dtype=tf.float32), out.shape) / 100.0
            loss = tf.reduce_sum(out * weights)
        grads = tape.gradient(loss, [c, w])
        results.append([idx.numpy(), out.numpy(), *(g.numpy() for g in grads)])
    for ref, got in zip(*results, strict=True):
        np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-6)
    # every output value is one of its own channel's centroids
    out = results[1][1]
    for ch in range(out.shape[-1]):
        assert set(np.unique(out[..., ch])) <= set(centroids[ch])


def test_vectorized_clustering_traces_to_the_same_graph_at_any_width():
    def ops(channels: int) -> int:
        kernel, centroids = _kernel_and_centroids(channels)
        impl = VectorizedPerChannelClustering(
            tf.Variable(centroids), GradientAggregation.SUM, "channels_last"
        )
        w = tf.Variable(kernel)
        fn = tf.function(lambda: impl.get_clustered_weight(impl.get_pulling_indices(w), w))
        return len(fn.get_concrete_function().graph.get_operations())

    assert ops(8) == ops(64)  # tfmot's loop adds ops per output channel


def test_every_clustered_conv_gets_its_own_fixed_quantizer():
    registry = ClusterPreserveRegistry(preserve_sparsity=True)
    convs = [keras.layers.Conv2D(8, 3), keras.layers.Conv2D(8, 1)]
    for layer in convs:
        layer.build((None, 8, 8, 4))
    quantizers = [registry.get_quantize_config(layer).weight_quantizer for layer in convs]
    assert quantizers[0] is not quantizers[1]
    for q in quantizers:
        assert isinstance(q, cqat_registry.ClusterPreserveDefault8BitConvWeightsQuantizer)
        assert q.preserve_sparsity
    depthwise = keras.layers.DepthwiseConv2D(3)
    depthwise.build((None, 8, 8, 4))
    assert registry.get_quantize_config(depthwise) is not None  # no cluster preserve, no error

"""Cluster-preserving QAT (CQAT, and PCQAT with sparsity): tfmot's scheme with three fixes.

tfmot 0.8.1's registry claims every weightless layer, hands one weight quantizer to every
layer, and, for a Conv2D kernel whose channels each hold the same few values (any
clustered kernel), loops over output channels in Python inside the training step: one
slice, argmin and gather per channel, so a MobileNetV2 step traces to tens of thousands
of ops (PCQAT on the `small` preset ran 33 minutes without finishing an epoch while
memory grew to 16.7 GB). Here the per-channel lookup is one broadcast argmin and one
batched gather, with the same values and gradients.
"""

from __future__ import annotations

import tensorflow as tf
from tensorflow_model_optimization.python.core.clustering.keras import clustering_algorithm
from tensorflow_model_optimization.python.core.clustering.keras.cluster_config import (
    GradientAggregation,
)
from tensorflow_model_optimization.python.core.quantization.keras.collab_opts.cluster_preserve import (
    cluster_preserve_quantize_registry as cqat_registry,
)
from tensorflow_model_optimization.python.core.quantization.keras.collab_opts.cluster_preserve import (
    default_8bit_cluster_preserve_quantize_scheme as cqat_scheme,
)
from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
    default_8bit_quantize_registry,
)

_REGISTRY = default_8bit_quantize_registry.Default8BitQuantizeRegistry()


class VectorizedPerChannelClustering(clustering_algorithm.ClusteringAlgorithmPerChannel):
    """tfmot's per-channel clustering (centroids `[channels, k]`) without a per-channel loop."""

    def _channel_axis(self, rank: int) -> int:
        return 1 if self.data_format == "channels_first" else rank - 1

    def get_pulling_indices(self, weight):
        """Index of the nearest of its channel's centroids, for every weight."""
        axis = self._channel_axis(len(weight.shape))
        w = tf.experimental.numpy.moveaxis(weight, axis, -1)  # [..., C]
        dist = tf.abs(tf.expand_dims(w, -1) - self.cluster_centroids)  # [..., C, k]
        return tf.experimental.numpy.moveaxis(tf.argmin(dist, axis=-1), -1, axis)

    def get_clustered_weight(self, pulling_indices, original_weight):
        """Each weight replaced by its centroid; gradients as tfmot's (straight-through)."""
        axis = self._channel_axis(len(original_weight.shape))
        idx = tf.experimental.numpy.moveaxis(pulling_indices, axis, 0)  # [C, ...]
        shape = tf.shape(idx)
        idx = tf.reshape(idx, [shape[0], -1])
        centroids = self.cluster_centroids
        if self.cluster_gradient_aggregation == GradientAggregation.AVG:
            k = tf.shape(centroids)[-1]
            sizes = tf.reduce_sum(tf.one_hot(idx, k, dtype=centroids.dtype), axis=1)
            centroids = self.average_centroids_gradient_by_cluster_size(
                centroids, tf.stop_gradient(sizes)
            )
        elif self.cluster_gradient_aggregation != GradientAggregation.SUM:
            raise ValueError(
                f"cluster_gradient_aggregation: {self.cluster_gradient_aggregation} not supported"
            )
        gathered = tf.reshape(tf.gather(centroids, idx, batch_dims=1), shape)
        clustered = tf.experimental.numpy.moveaxis(gathered, 0, axis)
        return self.add_gradient_to_original_weight(clustered, tf.identity(original_weight))


class _VectorizedBuild:
    """Quantizer mixin: swap tfmot's per-channel clustering for the vectorized one at build."""

    def build(self, tensor_shape, name, layer):
        result = super().build(tensor_shape, name, layer)
        impl = result.get(cqat_registry.CLUSTERING_IMPL)
        if type(impl) is clustering_algorithm.ClusteringAlgorithmPerChannel:
            result[cqat_registry.CLUSTERING_IMPL] = VectorizedPerChannelClustering(
                impl.cluster_centroids, impl.cluster_gradient_aggregation, impl.data_format
            )
        return result


class ConvWeightsQuantizer(
    _VectorizedBuild, cqat_registry.ClusterPreserveDefault8BitConvWeightsQuantizer
):
    """tfmot's (P)CQAT Conv2D weight quantizer with vectorized per-channel clustering."""


class WeightsQuantizer(_VectorizedBuild, cqat_registry.ClusterPreserveDefault8BitWeightsQuantizer):
    """tfmot's (P)CQAT weight quantizer (Dense, depthwise) with vectorized clustering."""


# tfmot's quantizer classes -> the fixed ones
_FIXED = {
    cqat_registry.ClusterPreserveDefault8BitConvWeightsQuantizer: ConvWeightsQuantizer,
    cqat_registry.ClusterPreserveDefault8BitWeightsQuantizer: WeightsQuantizer,
}


class ClusterPreserveRegistry(cqat_registry.Default8bitClusterPreserveQuantizeRegistry):
    """tfmot's registry, asking the 8-bit registry too before claiming a layer, with a fixed
    weight quantizer of its own for every layer (a shared one turns `preserve_sparsity` off
    for all layers as soon as one, a dense output head, has no zeros)."""

    def __init__(self, preserve_sparsity: bool):
        super().__init__(preserve_sparsity)
        self.preserve_sparsity = preserve_sparsity

    @classmethod
    def supports(cls, layer):
        return super().supports(layer) and _REGISTRY.supports(layer)

    def get_quantize_config(self, layer):
        config = super().get_quantize_config(layer)
        fixed = _FIXED.get(type(getattr(config, "weight_quantizer", None)))
        if fixed is not None:
            config.weight_quantizer = fixed(self.preserve_sparsity)
        return config


class ClusterPreserveScheme(cqat_scheme.Default8BitClusterPreserveQuantizeScheme):
    """Default 8-bit (P)CQAT scheme with the registry fixed as above."""

    def get_quantize_registry(self):
        return ClusterPreserveRegistry(self.preserve_sparsity)

"""Compression: magnitude pruning and quantization-aware training (tfmot)."""

from vdg_tf.compression.prune import PruneConfig, overall_sparsity, prune, sparsity_table
from vdg_tf.compression.quantize import QATConfig, QATResult, qat, quantize_aware

__all__ = [
    "PruneConfig",
    "QATConfig",
    "QATResult",
    "overall_sparsity",
    "prune",
    "qat",
    "quantize_aware",
    "sparsity_table",
]

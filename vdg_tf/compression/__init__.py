"""Compression: magnitude pruning and quantization-aware training (tfmot)."""

from vdg_tf.compression.prune import (
    PruneConfig,
    is_m_by_n_sparse,
    overall_sparsity,
    prune,
    sparsity_by_branch,
    sparsity_table,
)
from vdg_tf.compression.quantize import QATConfig, QATResult, load_qat, qat, quantize_aware

__all__ = [
    "PruneConfig",
    "QATConfig",
    "QATResult",
    "is_m_by_n_sparse",
    "overall_sparsity",
    "prune",
    "qat",
    "load_qat",
    "quantize_aware",
    "sparsity_by_branch",
    "sparsity_table",
]

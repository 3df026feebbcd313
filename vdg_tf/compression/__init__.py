"""Compression: magnitude pruning, quantization-aware training (int8, and int4-aware for
edge-int4), clustering and distillation (tfmot)."""

from vdg_tf.compression.prune import (
    PruneConfig,
    is_m_by_n_sparse,
    overall_sparsity,
    prune,
    sparsity_by_branch,
    sparsity_table,
)
from vdg_tf.compression.quantize import QATConfig, QATResult, load_qat, qat, quantize_aware
from vdg_tf.compression.quantize_int4 import Int4QATConfig, int4_aware, int4_qat

__all__ = [
    "Int4QATConfig",
    "PruneConfig",
    "QATConfig",
    "QATResult",
    "int4_aware",
    "int4_qat",
    "is_m_by_n_sparse",
    "overall_sparsity",
    "prune",
    "qat",
    "load_qat",
    "quantize_aware",
    "sparsity_by_branch",
    "sparsity_table",
]

"""Fusion of per-modality features [B, D_m] into one vector, chosen by name in `FUSIONS`.

Features arrive already multiplied by their modality mask. A missing modality adds zeros
to `serial`; `parallel`, `hybrid`, `gated` and `attention` renormalise their weights over
the modalities present; `lowrank` replaces a missing factor by its learned bias.

| name | combines | weights |
| --- | --- | --- |
| serial | concatenation + Dense | - |
| parallel | mean of projections | equal |
| hybrid | weighted sum of projections | fixed (`fusion_weights`) or learned softmax |
| gated | weighted sum of projections | per sample, from all features (a gate) |
| attention | weighted sum of projections | per sample, each modality scores itself |
| lowrank | product of rank-r projections (low-rank tensor fusion, Liu et al. 2018) | - |

Only `serial` (Dense + Concatenate) is fully int8 under QAT; the others keep their small
custom layers (`vdg_tf/models/layers/modality_pooling.py`) float, listed in the QAT report,
while their Dense projections are int8.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import tf_keras as keras

from vdg_tf.models.encoders.blocks import regularizer
from vdg_tf.models.layers import MaskedMean, MaskedWeightedSum


def serial_fusion(features: dict, masks: dict, dim: int, l2: float = 0.0, **_):
    """Concatenate the features, then a Dense layer mixes them.

    One modality alone is not concatenated: a one-input Concatenate does not survive
    `clone_model` (its config reads back as a single tensor), which QAT relies on.
    """
    feats = list(features.values())
    x = keras.layers.Concatenate(name="fusion_concat")(feats) if len(feats) > 1 else feats[0]
    # ReLU inside the Dense: see encoders/text.py on tfmot and separate ReLU layers
    return keras.layers.Dense(
        dim, activation="relu", kernel_regularizer=regularizer(l2), name="fusion_dense"
    )(x)


def parallel_fusion(features: dict, masks: dict, dim: int, l2: float = 0.0, **_):
    """Project each modality to `dim`, then the mean over present modalities."""
    projected = _projections(features, dim, l2)
    projected = [
        keras.layers.Multiply(name=f"fusion_mask_{m}")([p, masks[m]])
        for m, p in zip(features, projected, strict=True)
    ]
    total = keras.layers.Add(name="fusion_sum")(projected) if len(projected) > 1 else projected[0]
    count = (
        keras.layers.Add(name="fusion_count")(list(masks.values()))
        if len(masks) > 1
        else next(iter(masks.values()))
    )
    x = MaskedMean(name="fusion_mean")([total, count])
    return keras.layers.ReLU(name="fusion_relu")(x)


def _projections(features: dict, dim: int, l2: float) -> list:
    return [
        keras.layers.Dense(dim, kernel_regularizer=regularizer(l2), name=f"fusion_proj_{m}")(f)
        for m, f in features.items()
    ]


def _stacked(projected: list, masks: dict):
    """[B, M, D] features and [B, M] masks, modalities in the same order."""
    rows = [
        keras.layers.Reshape((1, int(p.shape[-1])), name=f"fusion_row_{i}")(p)
        for i, p in enumerate(projected)
    ]
    feats = (
        keras.layers.Concatenate(axis=1, name="fusion_stack")(rows) if len(rows) > 1 else rows[0]
    )
    mask = (
        keras.layers.Concatenate(name="fusion_masks")(list(masks.values()))
        if len(masks) > 1
        else next(iter(masks.values()))
    )
    return feats, mask


def hybrid_fusion(
    features: dict,
    masks: dict,
    dim: int,
    l2: float = 0.0,
    weights: Sequence[float] | None = None,
    **_,
):
    """Weighted sum of projected features: fixed alpha/beta/gamma, or learned softmax weights."""
    feats, mask = _stacked(_projections(features, dim, l2), masks)
    x = MaskedWeightedSum(weights, name="fusion_weighted")([feats, mask])
    return keras.layers.ReLU(name="fusion_relu")(x)


def gated_fusion(features: dict, masks: dict, dim: int, l2: float = 0.0, **_):
    """A gate reads all features and weighs each modality per sample (masked softmax)."""
    gate_in = keras.layers.Concatenate(name="fusion_gate_in")(list(features.values()))
    scores = keras.layers.Dense(len(features), name="fusion_gate")(gate_in)
    feats, mask = _stacked(_projections(features, dim, l2), masks)
    x = MaskedWeightedSum(per_sample=True, name="fusion_weighted")([feats, mask, scores])
    return keras.layers.ReLU(name="fusion_relu")(x)


def attention_fusion(features: dict, masks: dict, dim: int, l2: float = 0.0, **_):
    """Each projected modality scores itself (shared tanh attention); masked softmax over them."""
    projected = _projections(features, dim, l2)
    score = keras.layers.Dense(1, activation="tanh", name="fusion_attention")
    scores = [score(p) for p in projected]
    scores = (
        keras.layers.Concatenate(name="fusion_scores")(scores) if len(scores) > 1 else scores[0]
    )
    feats, mask = _stacked(projected, masks)
    x = MaskedWeightedSum(per_sample=True, name="fusion_weighted")([feats, mask, scores])
    return keras.layers.ReLU(name="fusion_relu")(x)


def lowrank_fusion(features: dict, masks: dict, dim: int, l2: float = 0.0, rank: int = 4, **_):
    """Low-rank multimodal fusion: prod_m (W_m [h_m; 1]) in rank r factors, summed over r.

    The Dense bias plays the appended 1, so a masked (zero) modality contributes its
    learned bias instead of zeroing the product.
    """
    factors = [
        keras.layers.Reshape((rank, dim), name=f"fusion_factor_{m}")(
            keras.layers.Dense(rank * dim, kernel_regularizer=regularizer(l2), name=f"fusion_lmf_{m}")(f)
        )
        for m, f in features.items()
    ]  # fmt: skip
    x = keras.layers.Multiply(name="fusion_product")(factors) if len(factors) > 1 else factors[0]
    x = keras.layers.GlobalAveragePooling1D(name="fusion_rank_sum")(x)
    return keras.layers.ReLU(name="fusion_relu")(x)


FUSIONS: dict[str, Callable] = {
    "serial": serial_fusion,
    "parallel": parallel_fusion,
    "hybrid": hybrid_fusion,
    "gated": gated_fusion,
    "attention": attention_fusion,
    "lowrank": lowrank_fusion,
}


def get_fusion(name: str) -> Callable:
    """The fusion builder called `name`; an unknown name lists the known ones."""
    if name not in FUSIONS:
        raise ValueError(f"model.fusion: unknown '{name}' (known: {', '.join(FUSIONS)})")
    return FUSIONS[name]

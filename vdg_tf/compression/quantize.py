"""Quantization-aware training with tfmot's default 8-bit scheme, and the float-layer policy.

Policy: every layer the default 8-bit registry supports is annotated; the rest (Embedding
on int ids, Multiply, custom layers) stay float in the QAT graph and are listed in
`float_layers`; the TFLite converter then quantizes them post-training from the
representative dataset (Embedding -> int8 gather, Multiply -> int8 mul).
With `preserve_sparsity`, pruning-preserving QAT (PQAT) keeps pruned zeros at zero; with
`preserve_clusters` too, PCQAT keeps a clustered model's few values per kernel (and zeros).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as keras
from tensorflow_model_optimization.python.core.quantization.keras.collab_opts.prune_preserve import (
    default_8bit_prune_preserve_quantize_scheme as pqat_scheme,
)
from tensorflow_model_optimization.python.core.quantization.keras.collab_opts.prune_preserve import (
    prune_preserve_quantize_registry as pqat_registry,
)
from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
    default_8bit_quantize_registry,
)

from vdg_tf.compression.cluster_preserve import ClusterPreserveScheme
from vdg_tf.compression.fitting import fine_tune
from vdg_tf.models.layers import CausalFrameStack, FoldFrames, UnfoldFrames

quant = tfmot.quantization.keras

_REGISTRY = default_8bit_quantize_registry.Default8BitQuantizeRegistry()


@keras.saving.register_keras_serializable(package="vdg_tf")
class NoOpQuantizeConfig(quant.QuantizeConfig):
    """QuantizeConfig of a layer that only moves values (a reshape): nothing to quantize.

    Annotating such a layer keeps it inside the quantized graph, so the convolutions on
    either side stay int8 and the layer is not listed as left float.
    """

    def get_weights_and_quantizers(self, layer):
        return []

    def get_activations_and_quantizers(self, layer):
        return []

    def set_quantize_weights(self, layer, quantize_weights):
        pass

    def set_quantize_activations(self, layer, quantize_activations):
        pass

    def get_output_quantizers(self, layer):
        return []

    def get_config(self):
        return {}


# custom layers that move values without changing them: annotated with NoOpQuantizeConfig
PASS_THROUGH = (FoldFrames, UnfoldFrames, CausalFrameStack)


class _PrunePreserveRegistry(pqat_registry.Default8bitPrunePreserveQuantizeRegistry):
    """tfmot 0.8.1's PQAT registry claims layers (Multiply, Embedding) that the 8-bit registry
    it delegates to has no config for, and quantize_apply then raises; ask both."""

    def supports(self, layer):
        return super().supports(layer) and _REGISTRY.supports(layer)


class PrunePreserveScheme(pqat_scheme.Default8BitPrunePreserveQuantizeScheme):
    """Default 8-bit PQAT scheme with the registry fixed as above."""

    def get_quantize_registry(self):
        return _PrunePreserveRegistry()


@dataclass
class QATConfig:
    """Fine-tune epochs under fake quantization.

    `preserve_sparsity` selects PQAT; `preserve_clusters` (after a cluster stage) selects
    CQAT, or PCQAT with `preserve_sparsity`.
    """

    epochs: int = field(default=3, metadata={"min": 1})
    preserve_sparsity: bool = True
    preserve_clusters: bool = False


def quantize_scheme(preserve_sparsity: bool, preserve_clusters: bool = False):
    """tfmot's scheme for plain QAT (None: the default), PQAT, CQAT or PCQAT."""
    if preserve_clusters:
        return ClusterPreserveScheme(preserve_sparsity)
    return PrunePreserveScheme() if preserve_sparsity else None


@dataclass
class QATResult:
    model: keras.Model
    float_layers: list[str] = field(default_factory=list)


def annotate(model: keras.Model) -> tuple[keras.Model, list[str]]:
    """Clone with supported layers annotated; returns (annotated model, layers left float)."""
    left_float: list[str] = []

    def clone(layer):
        copy = layer.__class__.from_config(layer.get_config())
        # BatchNormalization is folded into the conv before it by tfmot's transforms
        if _REGISTRY.supports(layer) or isinstance(layer, keras.layers.BatchNormalization):
            return quant.quantize_annotate_layer(copy)
        if isinstance(layer, PASS_THROUGH):
            return quant.quantize_annotate_layer(copy, NoOpQuantizeConfig())
        if not isinstance(layer, keras.layers.Dropout):
            left_float.append(f"{layer.name} ({layer.__class__.__name__})")
        return copy

    annotated = keras.models.clone_model(model, clone_function=clone)
    annotated.set_weights(model.get_weights())
    return annotated, left_float


def quantize_aware(
    model: keras.Model, preserve_sparsity: bool = False, preserve_clusters: bool = False
) -> QATResult:
    """The fake-quantized model ready for fine-tuning (weights copied from `model`).

    tfmot refuses a model nested in another, so a model that runs a per-frame sub-model
    (detection's `frame_detector`) has that sub-model quantized and put back in its place,
    under its own name (what an export looks it up by)."""
    inner = _frame_model(model)
    if inner is not None:
        result = quantize_aware(inner, preserve_sparsity, preserve_clusters)
        result.model._name = inner.name  # noqa: SLF001 (the contract's layer name)
        return QATResult(_with_layer(model, inner.name, result.model), result.float_layers)
    annotated, left_float = annotate(model)
    with quant.quantize_scope({"NoOpQuantizeConfig": NoOpQuantizeConfig}):
        scheme = quantize_scheme(preserve_sparsity, preserve_clusters)
        qmodel = (
            quant.quantize_apply(annotated, scheme) if scheme else quant.quantize_apply(annotated)
        )
    return QATResult(qmodel, left_float)


def _frame_model(model: keras.Model) -> keras.Model | None:
    """The one nested functional sub-model of `model` (detection's `frame_detector`), or
    None when there is none."""
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    return nested[0] if len(nested) == 1 else None


def _with_layer(model: keras.Model, name: str, replacement: keras.Model) -> keras.Model:
    """A clone of `model` with its layer `name` replaced by `replacement` (other layers
    cloned with their weights)."""

    def clone(layer):
        if layer.name == name:
            return replacement
        copy = layer.__class__.from_config(layer.get_config())
        if layer.weights:
            copy.build(layer.input_shape)
            copy.set_weights(layer.get_weights())
        return copy

    return keras.models.clone_model(model, clone_function=clone)


def qat(
    model: keras.Model,
    train_ds: tf.data.Dataset,
    cfg: QATConfig,
    compile_fn: Callable[[keras.Model, int], None],
    validation_ds: tf.data.Dataset | None = None,
    verbose: int = 0,
    steps_per_epoch: int | None = None,
    callbacks: list | None = None,
) -> QATResult:
    """Quantization-aware fine-tuning of `model`; returns the QAT model and its float layers.

    `steps_per_epoch`: batches an epoch when `train_ds` is an endless stream.
    """
    result = quantize_aware(model, cfg.preserve_sparsity, cfg.preserve_clusters)
    fine_tune(
        result.model, train_ds, cfg.epochs, compile_fn, verbose, steps_per_epoch, callbacks,
        validation_ds,
    )  # fmt: skip
    return result


def load_qat(base: keras.Model, path: str | Path, cfg: QATConfig) -> keras.Model:
    """A QAT model saved by `vdg run`, rebuilt on `base` (the model QAT started from).

    (P)CQAT quantizers create their cluster variables from the weights they wrap, so a
    saved (P)CQAT model only reloads onto a clone built from the same clustered model.
    """
    model = quantize_aware(base, cfg.preserve_sparsity, cfg.preserve_clusters).model
    model.load_weights(str(path))
    return model

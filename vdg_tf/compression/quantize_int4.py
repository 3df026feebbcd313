"""int4-aware fine-tuning for the `edge-int4` target: weights trained on the grid they ship on.

`edge-int4` stores CONV_2D and FULLY_CONNECTED kernels as int4 with ai-edge-quantizer's
weight-only recipe: symmetric, per output channel, scale = max|w| / 7, so each channel
holds the 15 values k * max|w| / 7 (k = -7..7) and compute stays float. This stage
fine-tunes with exactly that rounding on the Conv2D and Dense kernels (tfmot's
`LastValueQuantizer(num_bits=4, per_axis=True, symmetric=True, narrow_range=True)`, a
straight-through estimator) and nothing else: activations stay float as on the device,
depthwise kernels (int8 in the export) and the text Embedding (float) are untouched.

The result is a plain float model whose kernels already sit on that grid (`snap`), so it
saves as `.keras`, evaluates in Keras as the int4 file will, and the export's int4
rounding is lossless: the converter folds BatchNormalization into the conv by a per-
channel scale, which scales the per-channel grid with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as keras
from tensorflow_model_optimization.python.core.quantization.keras import quantize_wrapper
from tensorflow_model_optimization.python.core.quantization.keras.collab_opts.prune_preserve import (
    prune_preserve_quantize_registry as pqat_registry,
)

from vdg_tf.compression.fitting import fine_tune

quant = tfmot.quantization.keras

# (num_bits, per_axis, symmetric, narrow_range): ai-edge-quantizer's int4 weight-only grid
INT4_GRID = (4, True, True, True)


@dataclass
class Int4QATConfig:
    """Fine-tune epochs with int4 weight rounding; `preserve_sparsity` keeps pruned zeros."""

    epochs: int = field(default=2, metadata={"min": 1})
    preserve_sparsity: bool = True


def int4_layer(layer: keras.layers.Layer) -> bool:
    """Whether `edge-int4` stores this layer's kernel as int4 (Conv2D and Dense, not depthwise)."""
    if isinstance(layer, keras.layers.DepthwiseConv2D | keras.layers.Conv2DTranspose):
        return False
    return isinstance(layer, keras.layers.Conv2D | keras.layers.Dense)


@keras.saving.register_keras_serializable(package="vdg_tf")
class Int4WeightQuantizeConfig(quant.QuantizeConfig):
    """Round the kernel to the int4 grid in the forward pass; activations untouched."""

    def __init__(self, preserve_sparsity: bool = False):
        self.preserve_sparsity = preserve_sparsity

    def _quantizer(self):
        if self.preserve_sparsity:
            return pqat_registry.PrunePreserveDefaultWeightsQuantizer(*INT4_GRID)
        return quant.quantizers.LastValueQuantizer(*INT4_GRID)

    def get_weights_and_quantizers(self, layer):
        return [(layer.kernel, self._quantizer())]

    def get_activations_and_quantizers(self, layer):
        return []

    def set_quantize_weights(self, layer, quantize_weights):
        layer.kernel = quantize_weights[0]

    def set_quantize_activations(self, layer, quantize_activations):
        pass

    def get_output_quantizers(self, layer):
        return []

    def get_config(self):
        return {"preserve_sparsity": self.preserve_sparsity}


class _KeepLayout(quant.QuantizeLayoutTransform):
    """No graph rewrites: the 8-bit scheme's (BN folding patterns, input quantizers) would
    quantize activations, which an int4 weight-only file keeps float."""

    def apply(self, model, layer_quantize_map):
        return model, layer_quantize_map


class _NothingElse(quant.QuantizeRegistry):
    """Every quantized layer carries its own config; nothing else is quantized."""

    def get_quantize_config(self, layer):
        raise ValueError(f"{layer.name}: no int4 config")

    def supports(self, layer):
        return False


class Int4WeightScheme(quant.QuantizeScheme):
    """tfmot scheme for int4 weight-only fake quantization (configs set per layer)."""

    def get_layout_transformer(self):
        return _KeepLayout()

    def get_quantize_registry(self):
        return _NothingElse()


def int4_aware(model: keras.Model, preserve_sparsity: bool = True) -> keras.Model:
    """A copy of `model` whose Conv2D and Dense kernels are rounded to the int4 grid in use."""

    def clone(layer):
        copy = layer.__class__.from_config(layer.get_config())
        if int4_layer(layer):
            return quant.quantize_annotate_layer(copy, Int4WeightQuantizeConfig(preserve_sparsity))
        return copy

    annotated = keras.models.clone_model(model, clone_function=clone)
    annotated.set_weights(model.get_weights())
    with quant.quantize_scope({"Int4WeightQuantizeConfig": Int4WeightQuantizeConfig}):
        return quant.quantize_apply(annotated, Int4WeightScheme())


def snap(qat_model: keras.Model, base: keras.Model) -> keras.Model:
    """A plain copy of `base` with `qat_model`'s weights, each int4 kernel rounded as in use.

    `base` is the model `int4_aware` started from (for its architecture only).
    """
    out = keras.models.clone_model(base)
    for layer in qat_model.layers:
        if isinstance(layer, quantize_wrapper.QuantizeWrapper):
            out.get_layer(layer.layer.name).set_weights(_rounded_weights(layer, out))
        elif layer.weights:
            out.get_layer(layer.name).set_weights(layer.get_weights())
    return out


def _rounded_weights(wrapper, out: keras.Model) -> list:
    """The wrapped layer's weights in the plain layer's order, its kernel rounded."""
    values = {_leaf(w.name): w.numpy() for w in wrapper.weights}
    for weight, quantizer, qvars in wrapper._weight_vars:
        # training=True: the range from the kernel as it is now, not as the last step saw
        # it, so each channel's largest value sits on the grid's end
        values[_leaf(weight.name)] = quantizer(
            tf.identity(weight), training=True, weights=qvars
        ).numpy()
    return [values[_leaf(w.name)] for w in out.get_layer(wrapper.layer.name).weights]


def _leaf(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def int4_qat(
    model: keras.Model,
    train_ds: tf.data.Dataset,
    cfg: Int4QATConfig,
    compile_fn: Callable[[keras.Model, int], None],
    verbose: int = 0,
    steps_per_epoch: int | None = None,
    callbacks: list | None = None,
) -> keras.Model:
    """Fine-tune `model` under int4 weight rounding; returns the snapped plain float model.

    `steps_per_epoch`: batches an epoch when `train_ds` is an endless stream.
    """
    qmodel = int4_aware(model, cfg.preserve_sparsity)
    fine_tune(qmodel, train_ds, cfg.epochs, compile_fn, verbose, steps_per_epoch, callbacks)
    return snap(qmodel, model)

"""Building blocks every encoder shares, all in tfmot's default 8-bit QAT set.

Conv2D/DepthwiseConv2D + BatchNormalization + ReLU is the pattern tfmot folds for QAT
and TFLite fuses at conversion, so encoders use nothing else for their heavy parts.
"""

from __future__ import annotations

import tf_keras as keras

# Small datasets give few steps per run; Keras' 0.99 leaves moving statistics far from
# the data after a few hundred steps, which wrecks evaluation-mode accuracy.
BN_MOMENTUM = 0.9


def regularizer(l2: float | tuple[float, float]) -> keras.regularizers.Regularizer | None:
    """Kernel regularizer: an L2 factor, or an `(l1, l2)` pair (`model.l1` set)."""
    if isinstance(l2, tuple):
        l1, l2 = l2
        return keras.regularizers.L1L2(l1, l2) if (l1 or l2) else None
    return keras.regularizers.L2(l2) if l2 else None


def conv_bn_relu(
    x, filters: int, kernel, strides=1, padding="same", l2: float = 0.0, name: str = "", dilation=1
):
    """Conv2D (no bias) -> BatchNorm -> ReLU."""
    x = keras.layers.Conv2D(
        filters,
        kernel,
        strides=strides,
        padding=padding,
        use_bias=False,
        dilation_rate=dilation,
        kernel_regularizer=regularizer(l2),
        name=f"{name}_conv",
    )(x)
    x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def separable_block(x, filters: int, strides=2, l2: float = 0.0, name: str = ""):
    """MobileNet block: depthwise 3x3 -> BN -> ReLU -> pointwise 1x1 -> BN -> ReLU."""
    x = keras.layers.DepthwiseConv2D(
        3, strides=strides, padding="same", use_bias=False, name=f"{name}_dw"
    )(x)
    x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_dw_bn")(x)
    x = keras.layers.ReLU(name=f"{name}_dw_relu")(x)
    return conv_bn_relu(x, filters, 1, l2=l2, name=f"{name}_pw")

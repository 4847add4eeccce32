"""The one network shape the study's precision variants share.

:func:`build_model` turns a checked :class:`~stages.lib.training.variants.Variant`
into the network of the reference article, "Binary Neural Network Part 2" by
Mohamad Moawad (its two networks follow Larq's MNIST example, "Introduction
to BNNs with Larq", which shows only the 1-bit one):

    Conv(32, 3x3) -> MaxPool -> BN -> Conv(64, 3x3) -> MaxPool -> BN ->
    Conv(64, 3x3) -> BN -> Flatten -> Dense(64) -> BN -> Dense(10)
    [-> BN] -> softmax

A variant's width multiplies the hidden layers' channels and units
(:func:`hidden_units`); at width 1 the network is the article's, layer for
layer, so a seed trains the same weights.
"""

from __future__ import annotations

import math
from typing import Any

import stages  # noqa: F401  (selects Keras 2 before TensorFlow loads)
import tensorflow as tf
import larq as lq
from stages.lib.training.variants import QuantizerSpec, Variant

# Larq's quantized variables are opaque to AutoGraph, which says so at length
# on every model; the fallback it takes is the right one.
tf.get_logger().setLevel("ERROR")
tf.autograph.set_verbosity(0)


def quantizer_names() -> list[str]:
    """The string aliases the installed Larq registers for its quantizers."""
    return sorted(
        name
        for name, obj in tf.keras.utils.get_custom_objects().items()
        if name.islower() and isinstance(obj, type) and issubclass(obj, lq.quantizers.Quantizer)
    )


def constraint_names() -> list[str]:
    """Keras's built-in constraints and those the installed Larq registers."""
    keras_builtins = ["max_norm", "min_max_norm", "non_neg", "unit_norm"]
    larq_names = [
        name
        for name, obj in tf.keras.utils.get_custom_objects().items()
        if name.islower() and isinstance(obj, type) and issubclass(obj, tf.keras.constraints.Constraint)
    ]
    return sorted(set(keras_builtins + larq_names))


def _keras_identifier(spec: QuantizerSpec) -> QuantizerSpec:
    if isinstance(spec, dict):
        config = {k: v for k, v in spec.items() if k != "name"}
        return {"class_name": spec["name"], "config": config}
    return spec


def make_quantizer(spec: QuantizerSpec):
    return lq.quantizers.get(_keras_identifier(spec))


# The article's channels (conv1, conv2, conv3) and dense units (dense1).
ARTICLE_UNITS = (32, 64, 64, 64)


def hidden_units(width: float) -> tuple[int, ...]:
    """The hidden layers' channels and units at ``width``: the article's
    times the width, rounded half up, at least one."""
    return tuple(max(1, math.floor(units * width + 0.5)) for units in ARTICLE_UNITS)


def build_model(variant: Variant, batchnorm_momentum: float = 0.99):
    """The article's network with ``variant``'s quantizers, uncompiled;
    ``batchnorm_momentum`` is the recipe's (Keras's default, 0.99, in the
    article's)."""
    def quantized(kernel_quantizer: QuantizerSpec, input_quantizer: QuantizerSpec) -> dict[str, Any]:
        return dict(
            kernel_quantizer=make_quantizer(kernel_quantizer),
            input_quantizer=make_quantizer(input_quantizer),
            kernel_constraint=variant.kernel_constraint if kernel_quantizer is not None else None,
            use_bias=variant.use_bias,
        )

    hidden = quantized(variant.kernel_quantizer, variant.input_quantizer)

    def bn(name: str):
        return tf.keras.layers.BatchNormalization(momentum=batchnorm_momentum, scale=variant.batchnorm_scale,
                                                  name=name)

    conv1, conv2, conv3, dense1 = hidden_units(variant.width)
    layers = [
        tf.keras.Input(shape=(28, 28, 1), name="image"),
        lq.layers.QuantConv2D(
            conv1, (3, 3), activation=variant.activation, name="conv1",
            **quantized(variant.first_kernel_quantizer, variant.first_input_quantizer),
        ),
        tf.keras.layers.MaxPooling2D((2, 2), name="pool1"),
        bn("bn1"),
        lq.layers.QuantConv2D(conv2, (3, 3), activation=variant.activation, name="conv2", **hidden),
        tf.keras.layers.MaxPooling2D((2, 2), name="pool2"),
        bn("bn2"),
        lq.layers.QuantConv2D(conv3, (3, 3), activation=variant.activation, name="conv3", **hidden),
        bn("bn3"),
        tf.keras.layers.Flatten(name="flatten"),
        lq.layers.QuantDense(dense1, activation=variant.activation, name="dense1", **hidden),
        bn("bn4"),
        lq.layers.QuantDense(
            10, name="dense2", **quantized(variant.last_kernel_quantizer, variant.last_input_quantizer)
        ),
    ]
    if variant.final_batchnorm:
        layers.append(bn("bn5"))
    layers.append(tf.keras.layers.Activation("softmax", name="softmax"))
    # built without AutoGraph: building calls every layer on a symbolic
    # input, and AutoGraph would first convert Larq's and tf_keras's call
    # functions (about 5 s a network; the same layers and initial weights)
    return tf.autograph.experimental.do_not_convert(tf.keras.Sequential)(layers, name=variant.name)

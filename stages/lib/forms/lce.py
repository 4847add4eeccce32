"""Model surgery and conversion for Larq Compute Engine (LCE).

LCE bitpacks binary convolutions only: a binary ``QuantDense`` would stay a
float matrix in the ``.tflite`` file. So before conversion each binary dense
layer is rewritten as the 1x1 binary convolution it equals (the flattened
features become a 1x1 image with as many channels; the trained kernel is
reshaped, not retrained), which LCE does bitpack. Ternary quantizers are
rewritten too, in a form LCE does not mistake for binarization. Other
quantized variants (k-bit DoReFa, binary weights with float activations)
convert as float graphs: LCE has no kernels for them, and the file stores
their weights as 32-bit floats (:mod:`stages.lib.forms.graph` shows it).
"""

from __future__ import annotations

from typing import Any

import numpy as np

import stages  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from stages.lib.common import StudyError
from stages.lib.forms.export import saved_model
from stages.lib.settings.deploy import SECTION, DeploySettings


def accept(settings: DeploySettings, source: str):
    """LCE's rule for a converted model (see :data:`stages.lib.forms.deployed.Accept`):
    the option sets under which it disagrees with Keras on at most
    ``max_disagreement_pct`` of the test images are timed; with none, the
    conversion is refused in one line."""

    def rule(checks: dict[str, dict[str, float]], keras_accuracy: float) -> tuple[list[str], dict[str, Any]]:
        agreeing = [name for name, check in checks.items()
                    if 100 * (1 - check["agreement"]) <= settings.max_disagreement_pct + 1e-9]
        if not agreeing:
            worst = min(check["agreement"] for check in checks.values())
            raise StudyError(
                f"the converted {source} disagrees with Keras on {100 * (1 - worst):.2f}% of test images under "
                f"every interpreter option set (at most {SECTION}.max_disagreement_pct = "
                f"{settings.max_disagreement_pct:g}% allowed)")
        return agreeing, {}

    return rule


# TensorFlow and Larq load where a conversion needs them, not on import:
# `check` reads this module's settings and should start in about a second.


def _is_binary_dense(layer) -> bool:
    import larq as lq

    return isinstance(layer, lq.layers.QuantDense) and getattr(layer.kernel_quantizer, "precision", None) == 1


def ternary_without_sign(quantizer):
    """``quantizer`` in a form LCE's converter reads right. LCE takes every
    ``tf.sign`` for a binarization (sign(0) = +1), but Larq's ``ste_tern``
    is a sign of signs whose zero is the ternary 0, so converted as it is the
    zeros would become +1. The comparison form computes exactly the same
    values (x >= t: +1, x <= -t: -1, else 0) without ``tf.sign``. Other
    quantizers come back as they are."""
    import larq as lq
    import tensorflow as tf

    if not isinstance(quantizer, lq.quantizers.SteTern):
        return quantizer
    threshold_value, weight_networks = quantizer.threshold_value, quantizer.ternary_weight_networks

    def ternarize(x):
        if weight_networks:
            threshold = 0.7 * tf.reduce_sum(tf.abs(x)) / tf.cast(tf.size(x), x.dtype)
        else:
            threshold = threshold_value
        return tf.cast(x >= threshold, x.dtype) - tf.cast(x <= -threshold, x.dtype)

    return ternarize


def _has_ternary(layer) -> bool:
    import larq as lq

    return any(isinstance(getattr(layer, name, None), lq.quantizers.SteTern)
               for name in ("input_quantizer", "kernel_quantizer"))


def lce_ready(model):
    """An equivalent model that LCE converts faithfully and compactly:

    - every binary ``QuantDense`` becomes a 1x1 ``QuantConv2D`` with the same
      (reshaped) weights, which LCE bitpacks; Flatten becomes a reshape to a
      1x1 image, other layers act on the last axis as before, and a final
      flatten restores the output shape;
    - every ternary quantizer takes the form :func:`ternary_without_sign`.

    Models with neither come back unchanged."""
    import larq as lq
    import tensorflow as tf

    binary_dense = any(_is_binary_dense(layer) for layer in model.layers)
    if not binary_dense and not any(_has_ternary(layer) for layer in model.layers):
        return model
    layers = [tf.keras.Input(shape=model.input_shape[1:], name="image")]
    copied = []
    for layer in model.layers:
        config = layer.get_config()
        for name in ("input_quantizer", "kernel_quantizer"):
            if isinstance(getattr(layer, name, None), lq.quantizers.SteTern):
                config[name] = ternary_without_sign(getattr(layer, name))
        if binary_dense and isinstance(layer, tf.keras.layers.Flatten):
            new = tf.keras.layers.Reshape((1, 1, int(np.prod(layer.input_shape[1:]))), name=layer.name)
        elif _is_binary_dense(layer):
            new = lq.layers.QuantConv2D(
                config["units"], (1, 1), name=layer.name,
                activation=config["activation"], use_bias=config["use_bias"],
                input_quantizer=lq.quantizers.get(config["input_quantizer"]),
                kernel_quantizer=lq.quantizers.get(config["kernel_quantizer"]),
                kernel_constraint=config["kernel_constraint"],
            )
        else:
            if binary_dense and isinstance(layer, tf.keras.layers.BatchNormalization):
                # Keras stores the resolved axis (1 for a flat input); the
                # features now sit on the last axis of a 1x1 image.
                last = len(layer.input_shape) - 1
                if list(np.atleast_1d(config["axis"])) == [last]:
                    config["axis"] = -1
            new = layer.__class__.from_config(config)
        layers.append(new)
        copied.append((layer, new))
    if binary_dense:
        layers.append(tf.keras.layers.Flatten(name="output"))
    converted = tf.keras.Sequential(layers, name=f"{model.name}_lce")
    for old, new in copied:
        weights = old.get_weights()
        if _is_binary_dense(old):
            weights[0] = weights[0].reshape(1, 1, *weights[0].shape)
        new.set_weights(weights)
    return converted


def convert(model) -> bytes:
    """The ``.tflite`` flatbuffer LCE makes of :func:`lce_ready` ``(model)``."""
    import larq_compute_engine as lce

    with saved_model(lce_ready(model)) as directory:
        return lce.convert_saved_model(directory)

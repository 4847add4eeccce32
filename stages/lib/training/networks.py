"""The study's precision variants and the one network shape they share.

A variant is a named entry under ``variants`` in ``params.yaml``; its keys say
how each layer is quantized. :func:`variant_from_params` checks every key
against what Larq and Keras know, so a bad name fails before any training;
:func:`build_model` turns a checked :class:`Variant` into the network of the
reference article, "Binary Neural Network Part 2" by Mohamad Moawad (its
two networks follow Larq's MNIST example, "Introduction to BNNs with Larq",
which shows only the 1-bit one):

    Conv(32, 3x3) -> MaxPool -> BN -> Conv(64, 3x3) -> MaxPool -> BN ->
    Conv(64, 3x3) -> BN -> Flatten -> Dense(64) -> BN -> Dense(10)
    [-> BN] -> softmax
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import stages  # noqa: F401  (selects Keras 2 before TensorFlow loads)
import tensorflow as tf
import larq as lq
from stages.lib.common import StudyError
from stages.lib.params import check_name, is_int, is_number
from stages.lib.training.recipes import DEFAULT_RECIPE

# Larq's quantized variables are opaque to AutoGraph, which says so at length
# on every model; the fallback it takes is the right one.
tf.get_logger().setLevel("ERROR")
tf.autograph.set_verbosity(0)

QuantizerSpec = str | dict[str, Any] | None


@dataclass(frozen=True)
class Variant:
    """How one precision variant quantizes the shared network.

    Quantizer specs are Larq names (``"ste_sign"``) or a mapping with a
    ``name`` and the quantizer's arguments (``{name: dorefa_quantizer,
    k_bit: 4, mode: weights}``); ``None`` keeps 32-bit floats. The
    ``first_*`` and ``last_*`` keys apply to the first convolution and the
    last dense layer, the others to the hidden layers in between. The kernel
    constraint applies wherever the kernel is quantized.
    """

    name: str
    input_range: tuple[float, float]
    kernel_quantizer: QuantizerSpec
    input_quantizer: QuantizerSpec
    kernel_constraint: str | None
    first_kernel_quantizer: QuantizerSpec
    first_input_quantizer: QuantizerSpec
    last_kernel_quantizer: QuantizerSpec
    last_input_quantizer: QuantizerSpec
    use_bias: bool
    activation: str | None
    batchnorm_scale: bool
    final_batchnorm: bool
    recipe: str = "article"

    def architecture(self) -> tuple:
        """Everything that shapes the network, not how it is trained: two
        variants with the same architecture profile, deploy and run alike."""
        return tuple(getattr(self, key) for key in ARCHITECTURE_KEYS)


VARIANT_KEYS = tuple(f.name for f in fields(Variant) if f.name != "name")
# A variant that names no recipe trains with the article's.
OPTIONAL_KEYS = ("recipe",)
ARCHITECTURE_KEYS = tuple(key for key in VARIANT_KEYS if key not in OPTIONAL_KEYS)
_QUANTIZER_KEYS = (
    "kernel_quantizer",
    "input_quantizer",
    "first_kernel_quantizer",
    "first_input_quantizer",
    "last_kernel_quantizer",
    "last_input_quantizer",
)


def quantizer_names() -> list[str]:
    """The string aliases Larq registers for its quantizers."""
    return sorted(
        name
        for name, obj in tf.keras.utils.get_custom_objects().items()
        if name.islower() and isinstance(obj, type) and issubclass(obj, lq.quantizers.Quantizer)
    )


def constraint_names() -> list[str]:
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


# What each argument of Larq's quantizers must be; Larq itself accepts
# degenerate values (k_bit 0 trains to NaN, a negative clip value never
# passes a gradient) without a word.
_QUANTIZER_ARGUMENTS = {
    "k_bit": ("a whole number >= 1", lambda v: is_int(v) and v >= 1),
    "mode": ("activations or weights", lambda v: v in ("activations", "weights")),
    "clip_value": ("a positive number or null", lambda v: v is None or (is_number(v) and v > 0)),
    "threshold_value": ("a positive number", lambda v: is_number(v) and v > 0),
    "ternary_weight_networks": ("true or false", lambda v: isinstance(v, bool)),
    "beta": ("a positive number", lambda v: is_number(v) and v > 0),
}


def _check_quantizer(where: str, spec: Any) -> None:
    if spec is None:
        return
    valid = quantizer_names()
    if isinstance(spec, dict):
        name = spec.get("name")
    elif isinstance(spec, str):
        name = spec
    else:
        raise StudyError(f"{where} must be a quantizer name, a mapping with a `name`, or null; got {spec!r}")
    if name not in valid:
        raise StudyError(f"{where}: unknown quantizer {name!r}; Larq knows {', '.join(valid)} (or null for 32-bit)")
    for argument, value in (spec.items() if isinstance(spec, dict) else ()):
        if argument in _QUANTIZER_ARGUMENTS:
            meaning, valid_value = _QUANTIZER_ARGUMENTS[argument]
            if not valid_value(value):
                raise StudyError(f"{where}.{argument} must be {meaning}, got {value!r}")
    try:
        make_quantizer(spec)
    except (TypeError, ValueError) as err:
        raise StudyError(f"{where}: Larq rejects {spec!r}: {err}") from None


def _check_choice(where: str, value: Any, valid: list[str], what: str) -> None:
    if value is not None and value not in valid:
        raise StudyError(f"{where}: unknown {what} {value!r}; valid: {', '.join(valid)} (or null)")


def variant_from_params(name: str, variants_section: Any) -> Variant:
    """Check ``variants.<name>`` from params.yaml and return it as a
    :class:`Variant`; any problem raises a one-line :class:`StudyError`
    naming the offending param."""
    if not isinstance(variants_section, dict) or not variants_section:
        raise StudyError("params.yaml has no `variants` section describing the precision variants")
    check_name("variants", name)
    if name not in variants_section:
        raise StudyError(
            f"unknown variant {name!r}: params.yaml defines {', '.join(sorted(variants_section))} under `variants`"
        )
    spec = variants_section[name]
    where = f"variants.{name}"
    if not isinstance(spec, dict):
        raise StudyError(f"{where} must be a mapping of {', '.join(ARCHITECTURE_KEYS)} (and optionally recipe)")
    missing = [k for k in VARIANT_KEYS if k not in spec and k not in OPTIONAL_KEYS]
    unknown = [k for k in spec if k not in VARIANT_KEYS]
    if missing:
        raise StudyError(f"{where} lacks {', '.join(missing)}")
    if unknown:
        raise StudyError(f"{where} has unknown keys {', '.join(unknown)}; valid keys: {', '.join(VARIANT_KEYS)}")
    for key in _QUANTIZER_KEYS:
        _check_quantizer(f"{where}.{key}", spec[key])
    _check_choice(f"{where}.kernel_constraint", spec["kernel_constraint"], constraint_names(), "constraint")
    activation = spec["activation"]
    if activation is not None:
        try:
            tf.keras.activations.get(activation)
        except ValueError:
            raise StudyError(f"{where}.activation: unknown activation {activation!r}") from None
    for key in ("use_bias", "batchnorm_scale", "final_batchnorm"):
        if not isinstance(spec[key], bool):
            raise StudyError(f"{where}.{key} must be true or false, got {spec[key]!r}")
    low_high = spec["input_range"]
    if (
        not isinstance(low_high, list | tuple)
        or len(low_high) != 2
        or not all(is_number(v) for v in low_high)
        or not low_high[0] < low_high[1]
    ):
        raise StudyError(f"{where}.input_range must be [low, high] with low < high, got {low_high!r}")
    recipe = spec.get("recipe", DEFAULT_RECIPE)
    check_name(f"{where}.recipe", recipe)
    return Variant(
        name=name,
        input_range=(float(low_high[0]), float(low_high[1])),
        recipe=recipe,
        **{k: spec[k] for k in ARCHITECTURE_KEYS if k != "input_range"},
    )


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

    layers = [
        tf.keras.Input(shape=(28, 28, 1), name="image"),
        lq.layers.QuantConv2D(
            32, (3, 3), activation=variant.activation, name="conv1",
            **quantized(variant.first_kernel_quantizer, variant.first_input_quantizer),
        ),
        tf.keras.layers.MaxPooling2D((2, 2), name="pool1"),
        bn("bn1"),
        lq.layers.QuantConv2D(64, (3, 3), activation=variant.activation, name="conv2", **hidden),
        tf.keras.layers.MaxPooling2D((2, 2), name="pool2"),
        bn("bn2"),
        lq.layers.QuantConv2D(64, (3, 3), activation=variant.activation, name="conv3", **hidden),
        bn("bn3"),
        tf.keras.layers.Flatten(name="flatten"),
        lq.layers.QuantDense(64, activation=variant.activation, name="dense1", **hidden),
        bn("bn4"),
        lq.layers.QuantDense(
            10, name="dense2", **quantized(variant.last_kernel_quantizer, variant.last_input_quantizer)
        ),
    ]
    if variant.final_batchnorm:
        layers.append(bn("bn5"))
    layers.append(tf.keras.layers.Activation("softmax", name="softmax"))
    return tf.keras.Sequential(layers, name=variant.name)

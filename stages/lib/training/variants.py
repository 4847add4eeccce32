"""The study's precision variants: what each one says about the network,
checked without loading TensorFlow.

A variant is a named entry under ``variants`` in ``params.yaml``; its keys say
how each layer is quantized. :func:`variant_from_params` checks every key
against what Larq 0.14 and Keras know, so a bad name fails in ``check``, in
about a second, before any training: the names and arguments Larq and Keras
accept are written out below, and a test compares them with the installed
Larq and Keras (:mod:`stages.lib.training.networks` builds the network).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from stages.lib.common import StudyError
from stages.lib.names import check_name, is_width_name, split_width, width_name
from stages.lib.params import is_int, is_number
from stages.lib.training.recipes import DEFAULT_RECIPE

QuantizerSpec = str | dict[str, Any] | None


@dataclass(frozen=True)
class Variant:
    """How one precision variant quantizes the shared network.

    Quantizer specs are Larq names (``"ste_sign"``) or a mapping with a
    ``name`` and the quantizer's arguments (``{name: dorefa_quantizer,
    k_bit: 4, mode: weights}``); ``None`` keeps 32-bit floats. The
    ``first_*`` and ``last_*`` keys apply to the first convolution and the
    last dense layer, the others to the hidden layers in between. The kernel
    constraint applies wherever the kernel is quantized. ``width`` scales
    the hidden layers' channels and units (the article's 32-64-64
    convolutions and 64-unit dense layer; the 10-way classifier stays):
    never written in params.yaml, it comes from the name
    (``fp32_w0.25``, :func:`stages.lib.names.split_width`).
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
    width: float = 1.0

    def architecture(self) -> tuple:
        """Everything that shapes the network, not how it is trained: two
        variants with the same architecture profile, deploy and run alike."""
        return tuple(getattr(self, key) for key in ARCHITECTURE_KEYS)


VARIANT_KEYS = tuple(f.name for f in fields(Variant) if f.name != "name")
# A variant that names no recipe trains with the article's; one whose name
# names no width is at width 1.
OPTIONAL_KEYS = ("recipe", "width")
ARCHITECTURE_KEYS = tuple(key for key in VARIANT_KEYS if key != "recipe")
QUANTIZER_KEYS = (
    "kernel_quantizer",
    "input_quantizer",
    "first_kernel_quantizer",
    "first_input_quantizer",
    "last_kernel_quantizer",
    "last_input_quantizer",
)

# The string aliases Larq 0.14 registers for its quantizers, each with the
# arguments its constructor names (every quantizer also takes `metrics`).
# tests/test_networks.py compares this with the installed Larq.
LARQ_QUANTIZERS = {
    "approx_sign": (),
    "dorefa_quantizer": ("k_bit", "mode"),
    "magnitude_aware_sign": ("clip_value",),
    "ste_heaviside": ("clip_value",),
    "ste_sign": ("clip_value",),
    "ste_tern": ("threshold_value", "ternary_weight_networks", "clip_value"),
    "swish_sign": ("beta",),
}
# Keras 2's built-in constraints and Larq's `weight_clip`.
CONSTRAINTS = ("max_norm", "min_max_norm", "non_neg", "unit_norm", "weight_clip")
# The names tf_keras 2.16's `activations.get` accepts.
ACTIVATIONS = ("elu", "exponential", "gelu", "hard_sigmoid", "linear", "mish", "relu", "selu", "sigmoid", "softmax",
               "softplus", "softsign", "swish", "tanh")

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
    if isinstance(spec, dict):
        name = spec.get("name")
    elif isinstance(spec, str):
        name = spec
    else:
        raise StudyError(f"{where} must be a quantizer name, a mapping with a `name`, or null; got {spec!r}")
    if not isinstance(name, str) or name not in LARQ_QUANTIZERS:
        raise StudyError(f"{where}: unknown quantizer {name!r}; Larq knows {', '.join(LARQ_QUANTIZERS)} "
                         "(or null for 32-bit)")
    arguments = {key: value for key, value in spec.items() if key != "name"} if isinstance(spec, dict) else {}
    takes = (*LARQ_QUANTIZERS[name], "metrics")
    unknown = [key for key in arguments if key not in takes]
    if unknown:
        raise StudyError(f"{where}: Larq rejects {spec!r}: {name} takes {', '.join(takes)}, not "
                         f"{', '.join(map(str, unknown))}")
    for argument, value in arguments.items():
        if argument in _QUANTIZER_ARGUMENTS:
            meaning, valid_value = _QUANTIZER_ARGUMENTS[argument]
            if not valid_value(value):
                raise StudyError(f"{where}.{argument} must be {meaning}, got {value!r}")


def _check_choice(where: str, value: Any, valid: tuple[str, ...], what: str) -> None:
    if value is not None and value not in valid:
        raise StudyError(f"{where}: unknown {what} {value!r}; valid: {', '.join(valid)} (or null)")


BASE_KEY = "base"   # `bnn_cosine: {base: bnn, recipe: cosine}`: bnn's keys, with the recipe replaced


def expand_bases(variants_section: Any) -> Any:
    """``variants_section`` with every variant that names a ``base`` written
    out: its base's keys (the base's own base expanded first), updated with
    its own, without ``base``. What every stage reads (the slices) is the
    written-out form, so a variant reads the same whether params.yaml spells
    it out or derives it. A base that is not a defined variant, or a chain
    that comes back to itself, is a one-line error naming the key."""
    if not isinstance(variants_section, dict) or not any(
            isinstance(spec, dict) and BASE_KEY in spec for spec in variants_section.values()):
        return variants_section
    expanded: dict[str, Any] = {}

    def resolve(name: str, chain: tuple[str, ...]) -> Any:
        if name in expanded:
            return expanded[name]
        spec = variants_section[name]
        if not isinstance(spec, dict) or BASE_KEY not in spec:
            expanded[name] = spec
            return spec
        base, where = spec[BASE_KEY], f"variants.{name}.{BASE_KEY}"
        if not isinstance(base, str) or base not in variants_section:
            raise StudyError(f"{where} must name a variant defined under `variants`, got {base!r}")
        if base in chain:
            raise StudyError(f"{where}: {' -> '.join((*chain, base))} comes back to itself")
        parent = resolve(base, (*chain, base))
        if not isinstance(parent, dict):
            raise StudyError(f"{where}: variants.{base} is not a mapping to derive from")
        expanded[name] = {**parent, **{key: value for key, value in spec.items() if key != BASE_KEY}}
        return expanded[name]

    for name in variants_section:
        resolve(name, (name,))
    return expanded


def variant_from_params(name: str, variants_section: Any) -> Variant:
    """Check ``variants.<name>`` from params.yaml and return it as a
    :class:`Variant`; any problem raises a one-line :class:`StudyError`
    naming the offending param."""
    if not isinstance(variants_section, dict) or not variants_section:
        raise StudyError("params.yaml has no `variants` section describing the precision variants")
    check_name("variants", name)
    variants_section = expand_bases(variants_section)
    if name not in variants_section:
        base = split_width(name)[0]
        raise StudyError(
            f"unknown variant {base!r}{f' (in {name})' if base != name else ''}: params.yaml defines "
            f"{', '.join(sorted(n for n in variants_section if not is_width_name(n)))} under `variants`"
        )
    spec = variants_section[name]
    where = f"variants.{name}"
    if not isinstance(spec, dict):
        raise StudyError(f"{where} must be a mapping of {', '.join(ARCHITECTURE_KEYS)} (and optionally recipe)")
    missing = [k for k in VARIANT_KEYS if k not in spec and k not in OPTIONAL_KEYS]
    base, width = split_width(name)
    unknown = [k for k in spec if k not in VARIANT_KEYS]
    if missing:
        raise StudyError(f"{where} lacks {', '.join(missing)}")
    if unknown:
        raise StudyError(f"{where} has unknown keys {', '.join(unknown)}; valid keys: {', '.join(VARIANT_KEYS)}")
    for key in QUANTIZER_KEYS:
        _check_quantizer(f"{where}.{key}", spec[key])
    _check_choice(f"{where}.kernel_constraint", spec["kernel_constraint"], CONSTRAINTS, "constraint")
    if spec["activation"] is not None and spec["activation"] not in ACTIVATIONS:
        raise StudyError(f"{where}.activation: unknown activation {spec['activation']!r}")
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
    if spec.get("width", 1) != width:
        raise StudyError(f"{where}: a width comes from the name alone: write {width_name(base, spec['width'])} "
                         f"in study.variants rather than {where}.width"
                         if is_number(spec.get("width")) and base == name else
                         f"{where}.width must be {width:g}, the width its name says, got {spec.get('width')!r}")
    recipe = spec.get("recipe", DEFAULT_RECIPE)
    check_name(f"{where}.recipe", recipe)
    return Variant(
        name=name,
        input_range=(float(low_high[0]), float(low_high[1])),
        recipe=recipe,
        width=float(width),
        **{k: spec[k] for k in ARCHITECTURE_KEYS if k not in ("input_range", "width")},
    )


def with_widths(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` with every variant derived from a ``base`` written out
    (:func:`expand_bases`) and every ``<variant>_w<width>`` the study names
    (``study.variants``, ``study.extended``, ``int8.variants``,
    ``aggregate.primary``, ``aggregate.same_flash``) defined under ``variants``: its base variant's
    keys and its width, so that every stage reads a width variant as it
    reads any other. A name whose base is not defined is left for the
    checks to refuse."""
    defined = params.get("variants")
    if not isinstance(defined, dict):
        return params
    expanded = expand_bases(defined)
    if expanded is not defined:
        params, defined = {**params, "variants": expanded}, expanded
    named = []
    for section_name, key in (("study", "variants"), ("study", "extended"), ("int8", "variants"),
                              ("aggregate", "primary"), ("aggregate", "same_flash")):
        found = (params.get(section_name) or {}).get(key) if isinstance(params.get(section_name), dict) else None
        named += [name for name in found if isinstance(name, str)] if isinstance(found, list) else []
    added = {}
    for name in named:
        if name in defined or not is_width_name(name):
            continue
        base, width = split_width(name)
        if isinstance(defined.get(base), dict):
            added[name] = {**defined[base], "width": width}
    return {**params, "variants": {**defined, **added}} if added else params

"""Equal-flash twins, derived from the architecture before any run trains.

For each 1-bit network named in ``aggregate.same_flash`` (``{bnn: fp32}``:
``bnn`` against ``fp32``'s family) and each post-training form of
``aggregate.twin_forms`` (int8, int4), its twin in that form is the widest
network of the float family whose file in that form is no larger than the
1-bit network's file. The twin is fixed before training (the `twins` stage
writes it, `check` refuses a study that does not train it and make that
form of it) and the two are compared at equal flash: one opponent per form,
no pick among candidates.

A deployed file's bytes depend on the shapes of its tensors, not on the
values of its weights, provided no two weight buffers are equal: TensorFlow
Lite keeps one buffer for equal constants, so an untrained network's zero
biases would share one and its file would be smaller than any trained
one's. Each network is therefore built with generic weights (drawn at
random, every buffer distinct) and converted as its runs are: LCE for the
1-bit network, the form's post-training quantization for the float one
(:data:`FORM_BYTES`; ``tests/test_twins.py`` pins these bytes against
trained files; the calibration images change scales, not sizes).

Widths are searched in 128ths of the article's (every distinct set of
hidden channels :func:`stages.lib.training.networks.hidden_units` makes up
to width 1, and beyond it up to :data:`stages.lib.names.MAX_WIDTH`); the
twin is named by the shortest width that builds the same network
(``fp32_w0.28``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from stages.lib.common import StudyError
from stages.lib.names import MAX_WIDTH, width_name
from stages.lib.training.variants import QUANTIZER_KEYS, Variant

STEPS = 128   # widths searched: multiples of 1/128
# Larq's sign quantizers: a network whose hidden kernels and inputs use them is 1-bit (LCE bitpacks it)
ONE_BIT_QUANTIZERS = ("ste_sign", "approx_sign", "swish_sign", "magnitude_aware_sign")


@dataclass(frozen=True)
class Twin:
    """A 1-bit network's equal-flash twin in one post-training ``form``: the
    float family it comes from (``base``), its trained variant's name and
    width, the bytes of its file in that form against the 1-bit file's, and
    the next wider network's bytes (which no longer fit)."""
    one_bit: str
    base: str
    form: str
    name: str
    width: float
    units: tuple[int, ...]
    twin_bytes: int
    one_bit_bytes: int
    wider_name: str
    wider_bytes: int

    def record(self) -> dict[str, Any]:
        return {**asdict(self), "units": list(self.units)}


def _quantizer_name(spec: Any) -> str | None:
    return spec.get("name") if isinstance(spec, dict) else spec


def is_one_bit(variant: Variant) -> bool:
    """Whether ``variant``'s hidden layers binarize both kernels and
    inputs with a sign quantizer (what LCE stores and runs in 1 bit)."""
    return all(_quantizer_name(getattr(variant, key)) in ONE_BIT_QUANTIZERS
               for key in ("kernel_quantizer", "input_quantizer"))


def is_float(variant: Variant) -> bool:
    """Whether ``variant`` quantizes nothing (int8 quantization applies)."""
    return all(getattr(variant, key) is None for key in QUANTIZER_KEYS)


def check_pair(one_bit: Variant, base: Variant, form: str = "int8") -> None:
    """One line when ``one_bit`` is not a 1-bit network, ``base`` not a
    float one, or their recipes differ (families are compared under the
    same recipe)."""
    where = f"aggregate.same_flash.{one_bit.name}"
    if not is_one_bit(one_bit):
        raise StudyError(f"{where}: {one_bit.name} is not a 1-bit network (its hidden kernel and input quantizers "
                         f"must be one of {', '.join(ONE_BIT_QUANTIZERS)}): name 1-bit networks only")
    if not is_float(base):
        raise StudyError(f"{where}: {base.name} is not a float network (it sets a quantizer); its twin is the "
                         f"{form} form of a float network")
    if base.width != 1:
        raise StudyError(f"{where}: name the float family at the article's width ({base.name.split('_w')[0]}), "
                         f"not {base.name}: the twin's width is derived")
    if base.recipe != one_bit.recipe:
        raise StudyError(f"{where}: {one_bit.name} trains with recipe {one_bit.recipe}, {base.name} with "
                         f"{base.recipe}: a twin is trained with the same recipe; name a float variant of recipe "
                         f"{one_bit.recipe}")


def _generic_weights(model, seed: int = 0):
    """``model`` with every weight drawn at random (variances positive),
    so that no two buffers of its file are equal."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        shape = tuple(weight.shape)
        values = rng.uniform(0.5, 1.5, shape) if "variance" in weight.name else rng.normal(0.0, 0.1, shape)
        weight.assign(values.astype(np.float32))
    return model


def one_bit_bytes(variant: Variant) -> int:
    """The bytes of ``variant``'s LCE file, as `deploy` writes it."""
    from stages.lib.forms.lce import convert
    from stages.lib.forms.runtime import strip_names
    from stages.lib.training.networks import build_model

    return len(strip_names(convert(_generic_weights(build_model(variant)))))


def _images(variant: Variant) -> np.ndarray:
    """A few generic images in ``variant``'s input range, to calibrate on."""
    low, high = variant.input_range
    return np.random.default_rng(0).uniform(low, high, (8, 28, 28, 1)).astype(np.float32)


def int8_bytes(variant: Variant) -> int:
    """The bytes of ``variant``'s int8 file, as `quantize` writes it (float
    input and output)."""
    from stages.lib.forms.int8 import quantize
    from stages.lib.forms.runtime import strip_names
    from stages.lib.training.networks import build_model

    return len(strip_names(quantize(_generic_weights(build_model(variant)), _images(variant), "float",
                                    source=variant.name)))


def int4_bytes(variant: Variant) -> int:
    """The bytes of ``variant``'s int4 file, as `quantize_int4` writes it."""
    from stages.lib.forms.int4 import quantize
    from stages.lib.forms.runtime import strip_names
    from stages.lib.training.networks import build_model

    return len(strip_names(quantize(_generic_weights(build_model(variant)), _images(variant), source=variant.name)))


# The bytes of a float network's file in each post-training form a twin can take.
FORM_BYTES = {"int8": int8_bytes, "int4": int4_bytes}


def shortest_width(step: int) -> float:
    """The width with the fewest decimals that builds the same network as
    ``step`` / :data:`STEPS` (the smallest such width among those)."""
    from stages.lib.training.networks import hidden_units

    target = hidden_units(step / STEPS)
    for decimals in range(0, 8):
        scale = 10 ** decimals
        low = math.floor((step - 0.5) / STEPS * scale)
        for candidate in range(max(low, 1), math.ceil((step + 0.5) / STEPS * scale) + 1):
            width = candidate / scale
            if hidden_units(width) == target:
                return float(format(width, "g"))
    return step / STEPS


def derive(one_bit: Variant, base: Variant, form: str = "int8", log=None, budget: int | None = None) -> Twin:
    """``one_bit``'s twin in ``base``'s family and post-training ``form``
    (see the module doc); ``budget``: the 1-bit file's bytes when already
    known. A 1-bit file smaller than the narrowest network of that form the
    architecture allows is one line."""
    from dataclasses import replace

    check_pair(one_bit, base, form)
    form_bytes = FORM_BYTES[form]
    budget = one_bit_bytes(one_bit) if budget is None else budget
    sizes: dict[int, int] = {}

    def size(step: int) -> int:
        if step not in sizes:
            sizes[step] = form_bytes(replace(base, name=width_name(base.name, step / STEPS), width=step / STEPS))
            if log is not None:
                log(f"{base.name} at width {step}/{STEPS}: {form} file {sizes[step]} bytes ({one_bit.name}: {budget})")
        return sizes[step]

    if size(1) > budget:
        raise StudyError(f"aggregate.same_flash.{one_bit.name}: its file ({budget} bytes) is smaller than the "
                         f"narrowest {form} network of {base.name} ({sizes[1]} bytes at width 1/{STEPS}): no {form} "
                         "twin exists; remove it from aggregate.same_flash, or the form from aggregate.twin_forms")
    low, high = 1, STEPS
    while size(high) <= budget:   # the twin may be wider than the article's network
        if high >= MAX_WIDTH * STEPS:
            raise StudyError(f"aggregate.same_flash.{one_bit.name}: even {base.name} at width {MAX_WIDTH} fits its "
                             f"{budget}-byte file; no twin within the widths the study allows")
        low, high = high, min(2 * high, MAX_WIDTH * STEPS)
    while high - low > 1:   # size(low) fits, size(high) does not
        middle = (low + high) // 2
        low, high = (middle, high) if size(middle) <= budget else (low, middle)
    from stages.lib.training.networks import hidden_units

    width, wider = shortest_width(low), shortest_width(high)
    return Twin(one_bit=one_bit.name, base=base.name, form=form, name=width_name(base.name, width), width=width,
                units=hidden_units(width), twin_bytes=size(low), one_bit_bytes=budget,
                wider_name=width_name(base.name, wider), wider_bytes=size(high))

"""The ``int4`` section, checked: which float variants of the study get an
int4 form (``int4.variants``), and how each run is converted (how many of
the run's held-out validation images calibrate its activations, drawn by
which seed, and the accuracy drop allowed). The conversion itself is
:mod:`stages.lib.forms.int4`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stages.lib.common import StudyError
from stages.lib.params import is_int, section
from stages.lib.settings.post_training import calibration, float_variants

SECTION = "int4"   # the form's section in stages.lib.forms.registry
KEYS = ("variants", "calibration_images", "seed", "max_accuracy_drop_pp")


@dataclass(frozen=True)
class Int4Settings:
    """Which study variants get an int4 form; how many held-out validation
    images calibrate the 8-bit activations' ranges and the seed that draws
    them; the largest test-accuracy drop (percentage points, against the
    run's Keras model) a conversion may cost."""
    variants: tuple[str, ...]
    calibration_images: int
    seed: int
    max_accuracy_drop_pp: float


def conversion_settings(params: dict[str, Any], variants: tuple[str, ...] = ()) -> Int4Settings:
    """``int4`` without its list of variants (what a `quantize_int4` stage
    reads), checked: a positive image count, a seed >= 0, a drop >= 0;
    anything else is a one-line error naming the key."""
    count, seed, drop = calibration(section(params, SECTION, KEYS), SECTION, "calibration_images")
    return Int4Settings(variants, count, seed, drop)


def int4_settings(params: dict[str, Any]) -> Int4Settings:
    """The whole ``int4`` section, checked: :func:`conversion_settings`,
    float variants of the study, each once (``[]`` for none), and no more
    calibration images than the runs hold out (``data.validation_images``),
    refused here before any run is converted."""
    variants = float_variants(params, SECTION, KEYS, "int4 post-training quantization")
    settings = conversion_settings(params, tuple(variants))
    held_out = section(params, "data").get("validation_images")
    if variants and is_int(held_out) and settings.calibration_images > held_out:
        raise StudyError(f"{SECTION}.calibration_images is {settings.calibration_images}, more than the {held_out} "
                         "held-out validation images the runs keep (data.validation_images)")
    return settings


def quantize_slice(params: dict[str, Any]) -> dict[str, Any]:
    """What each `quantize_int4` stage reads: the conversion's settings (not
    the list of variants, so that adding one converts only its runs)."""
    settings = conversion_settings(params)
    return {SECTION: {"calibration_images": settings.calibration_images, "seed": settings.seed,
                      "max_accuracy_drop_pp": settings.max_accuracy_drop_pp}}


check = int4_settings


def slices(params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The slice file this section adds (its list of variants is in the
    benchmark's and aggregate's slices)."""
    int4_settings(params)
    return {"quantize_int4.json": quantize_slice(params)}

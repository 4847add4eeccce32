"""The ``int8`` section, checked: which float variants of the study get an
int8 form (``int8.variants``), and how each run is converted (calibration
images and their seed, input and output type, the accuracy drop allowed).
The conversion itself is :mod:`stages.lib.forms.int8`'s.

Checked here rather than in :mod:`stages.lib.params`: every training run
depends on that module's file, and a change to how int8 forms are checked
must retrain nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stages.lib.common import StudyError
from stages.lib.params import section
from stages.lib.settings.post_training import calibration, float_variants, training_images

SECTION = "int8"   # the form's section in stages.lib.forms.registry
KEYS = ("variants", "representative_images", "seed", "io", "max_accuracy_drop_pp")
IO_TYPES = ("float", "int8")


@dataclass(frozen=True)
class Int8Settings:
    """Which study variants get an int8 form; how many training images
    calibrate the conversion and the seed that draws them; the type of the
    model's input and output; the largest accuracy drop (percentage points,
    against the run's Keras model) a conversion may cost."""
    variants: tuple[str, ...]
    representative_images: int
    seed: int
    io: str
    max_accuracy_drop_pp: float


def conversion_settings(params: dict[str, Any], variants: tuple[str, ...] = ()) -> Int8Settings:
    """``int8`` without its list of variants (what a `quantize` stage
    reads), checked: a positive image count, a seed >= 0, ``io`` float or
    int8, a drop >= 0; anything else is a one-line error naming the key."""
    found = section(params, SECTION, KEYS)
    count, seed, drop = calibration(found, SECTION, "representative_images")
    io = found.get("io")
    if io not in IO_TYPES:
        raise StudyError(f"{SECTION}.io must be one of {', '.join(IO_TYPES)}, got {io!r}")
    return Int8Settings(variants, count, seed, io, drop)


def int8_settings(params: dict[str, Any]) -> Int8Settings:
    """The whole ``int8`` section, checked: :func:`conversion_settings`,
    and float variants of the study, each once (``[]`` for none); a
    calibration larger than the training split the runs use is refused
    here, before any run is converted."""
    variants = float_variants(params, SECTION, KEYS, "int8 post-training quantization")
    settings = conversion_settings(params, tuple(variants))
    available = training_images(params)
    if variants and settings.representative_images > available:
        raise StudyError(f"{SECTION}.representative_images is {settings.representative_images}, more than the "
                         f"{available} training images the runs use (data.train_limit and each dataset's split)")
    return settings


def quantize_slice(params: dict[str, Any]) -> dict[str, Any]:
    """What each `quantize` stage reads: the conversion's settings (not the
    list of variants, so that adding one converts only its runs)."""
    settings = conversion_settings(params)
    return {SECTION: {"representative_images": settings.representative_images, "seed": settings.seed,
                      "io": settings.io, "max_accuracy_drop_pp": settings.max_accuracy_drop_pp}}


check = int8_settings


def slices(params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The slice file this section adds, by its path in the spec folder:
    the conversion's (its list of variants is in the benchmark's and
    aggregate's slices, :mod:`stages.lib.fanin_slices`'s)."""
    int8_settings(params)
    return {"quantize.json": quantize_slice(params)}

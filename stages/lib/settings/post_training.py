"""What the params sections of every post-training form share (``int8``,
``int4``): the list of float variants of the study that get the form, the
calibration's image count and seed and the accuracy drop allowed, and how
many training images the runs keep to calibrate it on.

The sections' names are the forms' registry's (:mod:`stages.lib.forms.registry`);
each settings module names its own, and a test holds them equal, so that
settings import nothing of forms."""

from __future__ import annotations

from typing import Any

from stages.lib.common import StudyError
from stages.lib.data.datasets import dataset
from stages.lib.names import split_width
from stages.lib.params import is_int, is_number, name_list, section, study_datasets, study_variants


def float_variants(params: dict[str, Any], name: str, keys: tuple[str, ...], what: str) -> list[str]:
    """``<name>.variants`` checked: variants of the study, each once
    (``[]`` for none), none of them quantized in training (``what``, the
    conversion, applies to float networks); else a one-line error."""
    study = study_variants(params)
    variants = name_list(f"{name}.variants", section(params, name, keys).get("variants"), what="variant", empty=True)
    for variant in variants:
        if variant not in study:
            raise StudyError(f"{name}.variants names {variant}, which study.variants ({', '.join(study)}) leaves "
                             f"out: add it there or remove it here")
    for variant in variants:
        defined = params["variants"].get(variant) or params["variants"].get(split_width(variant)[0], {})
        quantized = [key for key, value in defined.items() if key.endswith("quantizer") and value]
        if quantized:
            raise StudyError(f"{name}.variants: {variant} is not a float network ({', '.join(quantized)} set): "
                             f"{what} applies to float networks; remove it")
    return variants


def training_images(params: dict[str, Any]) -> int:
    """The fewest training images a run of the study keeps (each dataset's
    split, cut to ``data.train_limit``)."""
    train_limit = section(params, "data").get("train_limit")
    splits = [dataset(name).train_images for name in study_datasets(params)]
    return min(splits + ([train_limit] if is_int(train_limit) else []))


def calibration(found: dict[str, Any], name: str, count_key: str) -> tuple[int, int, float]:
    """A form's ``count_key`` (the calibration's images), ``seed`` and
    ``max_accuracy_drop_pp`` from its section ``found`` (named ``name``),
    checked: a positive count, a seed >= 0, a drop >= 0; anything else is a
    one-line error naming the key."""
    count = found.get(count_key)
    if not is_int(count) or count < 1:
        raise StudyError(f"{name}.{count_key} must be a positive whole number, got {count!r}")
    seed = found.get("seed")
    if not is_int(seed) or seed < 0:
        raise StudyError(f"{name}.seed must be a whole number >= 0, got {seed!r}")
    drop = found.get("max_accuracy_drop_pp")
    if not is_number(drop) or not drop >= 0:
        raise StudyError(f"{name}.max_accuracy_drop_pp must be a number of percentage points >= 0, got {drop!r}")
    return count, seed, float(drop)

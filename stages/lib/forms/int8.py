"""8-bit integer post-training quantization: the deployed form practitioners
pick when they need a smaller, faster model without retraining. TensorFlow
Lite's full-integer conversion of a trained float network, calibrated on
images drawn from the training split: int8 weights and activations (int32
biases), float or int8 input and output.

Here: the ``int8`` section of params.yaml and the slices of it the stages
read, the name of each int8 form (``<variant>+int8``: ``+`` is in no
variant's name, so no form can be mistaken for a variant), and the
conversion itself. The `quantize` stage converts and checks each run; the
benchmark times the forms beside the other deployed models, and the tables
treat each form as one more deployed network.

The section is checked here rather than in :mod:`stages.lib.params`, for
the reason :mod:`stages.lib.data.robustness` gives: every training run depends
on that module's file.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from stages.lib.common import StudyError
from stages.lib.forms.export import saved_model
from stages.lib.forms.registry import BY_NAME
from stages.lib.names import split_width
from stages.lib.data.datasets import dataset
from stages.lib.params import (
    is_int, is_number, name_list, section, study_datasets, study_variants,
)

FORM = BY_NAME["int8"]   # its networks are named <variant>+int8; what other stages know of it
SECTION = FORM.section
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
    count = found.get("representative_images")
    if not is_int(count) or count < 1:
        raise StudyError(f"{SECTION}.representative_images must be a positive whole number, got {count!r}")
    seed = found.get("seed")
    if not is_int(seed) or seed < 0:
        raise StudyError(f"{SECTION}.seed must be a whole number >= 0, got {seed!r}")
    io = found.get("io")
    if io not in IO_TYPES:
        raise StudyError(f"{SECTION}.io must be one of {', '.join(IO_TYPES)}, got {io!r}")
    drop = found.get("max_accuracy_drop_pp")
    if not is_number(drop) or not drop >= 0:
        raise StudyError(f"{SECTION}.max_accuracy_drop_pp must be a number of percentage points >= 0, got {drop!r}")
    return Int8Settings(variants, count, seed, io, float(drop))


def int8_settings(params: dict[str, Any]) -> Int8Settings:
    """The whole ``int8`` section, checked: :func:`conversion_settings`,
    and float variants of the study, each once (``[]`` for none); a
    calibration larger than the training split the runs use is refused
    here, before any run is converted."""
    study = study_variants(params)
    variants = name_list(f"{SECTION}.variants", section(params, SECTION, KEYS).get("variants"), what="variant",
                         empty=True)
    for name in variants:
        if name not in study:
            raise StudyError(f"{SECTION}.variants names {name}, which study.variants ({', '.join(study)}) leaves "
                             f"out: add it there or remove it here")
    for name in variants:
        defined = params["variants"].get(name) or params["variants"].get(split_width(name)[0], {})
        quantized = [key for key, value in defined.items() if key.endswith("quantizer") and value]
        if quantized:
            raise StudyError(f"{SECTION}.variants: {name} is not a float network ({', '.join(quantized)} set): "
                             "int8 post-training quantization applies to float networks; remove it")
    settings = conversion_settings(params, tuple(variants))
    train_limit = section(params, "data").get("train_limit")
    splits = [dataset(name).train_images for name in study_datasets(params)]
    available = min(splits + ([train_limit] if is_int(train_limit) else []))
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


def slices(params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The slice file this section adds, by its path in the spec folder:
    the conversion's (its list of variants is in the benchmark's and
    aggregate's slices, :mod:`stages.lib.spec`'s)."""
    int8_settings(params)
    return {"quantize.json": quantize_slice(params)}


def representative_indices(images: int, count: int, seed: int) -> np.ndarray:
    """``count`` distinct indices of a training split of ``images`` images,
    drawn by ``seed``, in increasing order."""
    if count > images:
        raise StudyError(f"{SECTION}.representative_images is {count}, more than the {images} training images the "
                         "runs use (data.train_limit)")
    return np.sort(np.random.default_rng(seed).choice(images, count, replace=False))


def quantize(model, representative: np.ndarray, io: str, source: str = "the model") -> bytes:
    """TensorFlow Lite's full-integer post-training quantization of the
    Keras ``model``, calibrated one image at a time on ``representative``
    (scaled as the model was trained): int8 weights and activations, only
    int8 builtin operators, the input and output in ``io`` (float: a
    QUANTIZE and a DEQUANTIZE at the edges). A network with an operator
    TensorFlow Lite has no int8 kernel for is a one-line error."""
    import tensorflow as tf

    with saved_model(model) as directory:
        converter = tf.lite.TFLiteConverter.from_saved_model(str(directory))
        return _quantized(converter, representative, io, source)


def _quantized(converter, representative: np.ndarray, io: str, source: str) -> bytes:
    import tensorflow as tf

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    batches = representative[:, np.newaxis].astype(np.float32)
    converter.representative_dataset = lambda: ([batch] for batch in batches)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if io == "int8":
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    try:
        with warnings.catch_warnings():
            # the converter warns that it has no statistics for the float input it quantizes itself
            warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected")
            return converter.convert()
    except Exception as err:  # the converter raises ConverterError or anything of its internals
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        reason = next((line for line in lines if "error:" in line), lines[-1] if lines else type(err).__name__)
        raise StudyError(f"int8 post-training quantization of {source} failed ({reason[:200]}): it applies to float "
                         f"networks; remove the variant from {SECTION}.variants") from None


def accept(settings: Int8Settings, variant: str, calibration_images: int, source: str):
    """int8's rule for a converted model (see :data:`stages.lib.forms.deployed.Accept`):
    quantization changes some answers, so agreement is reported, not
    required; a test accuracy more than ``max_accuracy_drop_pp`` below
    Keras's under any option set refuses the conversion in one line.
    Every option set is timed."""

    def rule(checks: dict[str, dict[str, float]], keras_accuracy: float) -> tuple[list[str], dict[str, Any]]:
        worst = min(checks, key=lambda name: checks[name]["converted_accuracy"])
        drop_pp = 100 * (keras_accuracy - checks[worst]["converted_accuracy"])
        if drop_pp > settings.max_accuracy_drop_pp:
            raise StudyError(f"the int8 model of {source} loses {drop_pp:.2f} pp of test accuracy against Keras "
                             f"(under {worst}), more than {SECTION}.max_accuracy_drop_pp = "
                             f"{settings.max_accuracy_drop_pp:g}: raise representative_images or the tolerance, or "
                             f"leave the variant out of {SECTION}.variants")
        return list(checks), {"int8": {"variant": variant, "form": FORM.network(variant),
                                       "representative_images": calibration_images, "seed": settings.seed,
                                       "io": settings.io, "max_accuracy_drop_pp": settings.max_accuracy_drop_pp,
                                       "accuracy_drop_pp": drop_pp}}

    return rule

"""8-bit integer post-training quantization: the deployed form practitioners
pick when they need a smaller, faster model without retraining. TensorFlow
Lite's full-integer conversion of a trained float network, calibrated on
images drawn from the training split: int8 weights and activations (int32
biases), float or int8 input and output.

Here: the conversion itself, the calibration images it draws and its
acceptance rule. Its networks' name (``<variant>+int8``) and what the other
stages know of it are :mod:`stages.lib.forms.registry`'s; its params section,
checked, :mod:`stages.lib.settings.int8`'s. The `quantize` stage converts and
checks each run; the benchmark times the forms beside the other deployed
models, and the tables treat each form as one more deployed network.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from stages.lib.common import StudyError
from stages.lib.forms.deployed import checked_drop
from stages.lib.forms.export import saved_model
from stages.lib.forms.registry import BY_NAME
from stages.lib.settings.int8 import SECTION, Int8Settings

FORM = BY_NAME["int8"]   # its networks are named <variant>+int8; what other stages know of it


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
        drop_pp = checked_drop(checks, keras_accuracy, settings.max_accuracy_drop_pp, "int8", source,
                               f"{SECTION}.max_accuracy_drop_pp", "raise representative_images or the tolerance, "
                               f"or leave the variant out of {SECTION}.variants")
        return list(checks), {"int8": {"variant": variant, "form": FORM.network(variant),
                                       "representative_images": calibration_images, "seed": settings.seed,
                                       "io": settings.io, "max_accuracy_drop_pp": settings.max_accuracy_drop_pp,
                                       "accuracy_drop_pp": drop_pp}}

    return rule

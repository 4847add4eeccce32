"""4-bit integer weights after training: between int8 and the 1-bit
network, the form a deployer with a few KiB of flash would weigh. Google's
LiteRT quantizer (``litert-quantizer``) applied to TensorFlow Lite's float
conversion of a trained float network: every convolution's and dense
layer's weights in int4, per output channel (two to a byte in the file),
and every activation in int8, the operators between them (pooling, batch
normalization's multiply and add, reshape, softmax) in int8 as in the int8
form, calibrated on the run's held-out validation images; the input and
output stay float (a QUANTIZE and a DEQUANTIZE at the edges, as the int8
form's default ``io: float``). Left float, the operators between them would
hold float activations: measured on `fp32_w0.352`, 37,180 bytes of peak
activations against 9,295, for a file 368 bytes larger. LiteRT's
interpreter runs the file (:mod:`stages.lib.forms.runtime`); LCE 0.16's
refuses int4 operators.

Here: the conversion itself, its calibration images, its acceptance rule
and what its file holds by type. Its networks' name (``<variant>+int4``)
and what the other stages know of it are :mod:`stages.lib.forms.registry`'s;
its params section, checked, :mod:`stages.lib.settings.int4`'s.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from stages.lib.common import StudyError
from stages.lib.forms.deployed import checked_drop
from stages.lib.forms.export import saved_model
from stages.lib.forms.graph import read_graph
from stages.lib.forms.registry import BY_NAME
from stages.lib.settings.int4 import SECTION, Int4Settings

FORM = BY_NAME["int4"]   # its networks are named <variant>+int4; what other stages know of it
QUANTIZED_OPERATORS = ("CONV_2D", "FULLY_CONNECTED")   # int4 weights, int8 activations
BETWEEN_OPERATORS = ("ADD", "MUL", "MAX_POOL_2D", "RESHAPE", "SOFTMAX")   # int8 constants and activations
WEIGHT_BITS, ACTIVATION_BITS = 4, 8


def calibration_images(validation: np.ndarray, count: int, seed: int) -> np.ndarray:
    """``count`` of the held-out ``validation`` images, drawn by ``seed``,
    in their order."""
    if count > len(validation):
        raise StudyError(f"{SECTION}.calibration_images is {count}, more than the {len(validation)} held-out "
                         "validation images the run keeps (data.validation_images)")
    return validation[np.sort(np.random.default_rng(seed).choice(len(validation), count, replace=False))]


def quantize(model, calibration: np.ndarray, source: str = "the model") -> bytes:
    """The Keras ``model`` converted to a float TensorFlow Lite file, then
    quantized by the LiteRT quantizer: int4 weights per channel and int8
    activations in every operator of :data:`QUANTIZED_OPERATORS`, int8 in
    those of :data:`BETWEEN_OPERATORS`, the activations' ranges calibrated one image at a time on ``calibration``
    (scaled as the model was trained). A failure is a one-line error."""
    import tensorflow as tf
    from ai_edge_litert import interpreter as litert
    from litert_quantizer import qtyping, quantizer

    try:
        with saved_model(model) as directory:
            float_file = tf.lite.TFLiteConverter.from_saved_model(str(directory)).convert()
        (signature, inputs), = ((key, value["inputs"]) for key, value in
                                litert.Interpreter(model_content=float_file).get_signature_list().items())
        recipe = quantizer.Quantizer(bytearray(float_file))
        for operator in BETWEEN_OPERATORS:
            recipe.add_static_config(".*", qtyping.TFLOperationName[operator], activation_num_bits=ACTIVATION_BITS,
                                     weight_num_bits=ACTIVATION_BITS)
        for operator in QUANTIZED_OPERATORS:
            recipe.add_static_config(".*", qtyping.TFLOperationName[operator], activation_num_bits=ACTIVATION_BITS,
                                     weight_num_bits=WEIGHT_BITS)
        images = calibration[:, np.newaxis].astype(np.float32)
        ranges = recipe.calibrate({signature: [{inputs[0]: image} for image in images]}, num_threads=1)
        return bytes(recipe.quantize(ranges, enable_progress_report=False).quantized_model)
    except Exception as err:  # noqa: BLE001  (the converter and the quantizer raise anything of their internals)
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        reason = next((line for line in lines if "error" in line.lower()), lines[-1] if lines else type(err).__name__)
        raise StudyError(f"int4 post-training quantization of {source} failed ({reason[:200]}): it applies to float "
                         f"networks; remove the variant from {SECTION}.variants") from None


def constant_bytes_by_type(flatbuffer: bytes) -> dict[str, int]:
    """The bytes of the file's constant data by tensor type (``INT4``: the
    quantized weights, two to a byte; ``INT8``: the int8 operators'
    constants; ``INT32``: biases and shapes), largest first."""
    graph = read_graph(flatbuffer)
    found = Counter()
    for tensor in graph.tensors:
        if tensor.constant_bytes:
            found[tensor.dtype] += tensor.constant_bytes
    return dict(found.most_common())


def accept(settings: Int4Settings, variant: str, calibration: int, source: str, holds: dict[str, int]):
    """int4's rule for a converted model (see :data:`stages.lib.forms.deployed.Accept`):
    like int8's, agreement is reported, not required; a test accuracy more
    than ``max_accuracy_drop_pp`` below Keras's under any option set refuses
    the conversion in one line. Every option set is timed. ``holds``: the
    file's constant bytes by type, recorded."""

    def rule(checks: dict[str, dict[str, float]], keras_accuracy: float) -> tuple[list[str], dict[str, Any]]:
        drop_pp = checked_drop(checks, keras_accuracy, settings.max_accuracy_drop_pp, "int4", source,
                               f"{SECTION}.max_accuracy_drop_pp", "raise calibration_images or the tolerance, "
                               f"or leave the variant out of {SECTION}.variants")
        return list(checks), {"int4": {"variant": variant, "form": FORM.network(variant),
                                       "calibration_images": calibration, "seed": settings.seed,
                                       "weight_bits": WEIGHT_BITS, "activation_bits": ACTIVATION_BITS,
                                       "int4_operators": list(QUANTIZED_OPERATORS),
                                       "int8_operators": list(BETWEEN_OPERATORS),
                                       "constant_bytes_by_type": holds,
                                       "max_accuracy_drop_pp": settings.max_accuracy_drop_pp,
                                       "accuracy_drop_pp": drop_pp}}

    return rule

"""Stage `deploy`: convert one trained model with Larq Compute Engine (LCE),
check the converted model against Keras, and measure what it weighs and how
fast it runs in LCE's interpreter.

LCE bitpacks binary convolutions only: a binary ``QuantDense`` would stay a
float matrix in the ``.tflite`` file. So before conversion each binary dense
layer is rewritten as the 1x1 binary convolution it equals (the flattened
features become a 1x1 image with as many channels; the trained kernel is
reshaped, not retrained), which LCE does bitpack. Ternary quantizers are
rewritten too, in a form LCE does not mistake for binarization. Other
quantized variants (k-bit DoReFa) convert as float graphs: LCE has no
kernels for them, and the file stores their weights as 32-bit floats.

The deployed file is LCE's output without its debug strings (tensor names,
signature defs), stripped by TensorFlow Lite's own tool; both sizes are
recorded.

LCE's hand-optimized binary kernels target 64-bit Arm; on x86-64 it runs its
portable kernels. The figures here are what this machine measured, not what a
datasheet promises; the CPU model is recorded with them.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import stages  # noqa: F401  (selects Keras 2 before TensorFlow loads)
import larq as lq
import tensorflow as tf
from stages.lib.common import StudyError, atomic_directory, load_params, log, run_cli, write_json_atomic
from stages.lib.mnist import load_split, scale_images
from stages.lib.networks import variant_from_params
from stages.lib.params import benchmark_settings, data_limits

MAX_DISAGREEMENT = 0.001
TFLITE_FILE = "model.tflite"

# Interpreter options tried for every model; the fastest whose predictions
# agree with Keras is reported.
INTERPRETER_OPTIONS = (
    {"use_indirect_bgemm": False, "use_xnnpack": False},
    {"use_indirect_bgemm": True, "use_xnnpack": False},
    {"use_indirect_bgemm": False, "use_xnnpack": True},
    {"use_indirect_bgemm": True, "use_xnnpack": True},
)


def _is_binary_dense(layer) -> bool:
    return isinstance(layer, lq.layers.QuantDense) and getattr(layer.kernel_quantizer, "precision", None) == 1


def ternary_without_sign(quantizer):
    """``quantizer`` in a form LCE's converter reads right. LCE takes every
    ``tf.sign`` for a binarization (sign(0) = +1), but Larq's ``ste_tern``
    is a sign of signs whose zero is the ternary 0, so converted as it is the
    zeros would become +1. The comparison form computes exactly the same
    values (x >= t: +1, x <= -t: -1, else 0) without ``tf.sign``. Other
    quantizers come back as they are."""
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

    return lce.convert_keras_model(lce_ready(model))


def strip_names(flatbuffer: bytes) -> bytes:
    """``flatbuffer`` without its debug strings (tensor and subgraph names,
    signature defs), by TensorFlow Lite's own ``strip_strings``: the
    interpreter addresses tensors by index, so the model computes the same;
    on the 1-bit net the names are about a quarter of the file."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    flatbuffer_utils.strip_strings(model)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def interpreter(flatbuffer: bytes, threads: int, options: dict[str, bool]):
    import larq_compute_engine as lce

    return lce.tflite.python.interpreter.Interpreter(flatbuffer, num_threads=threads, **options)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@dataclass(frozen=True)
class Timing:
    latency_median_us: float
    latency_p90_us: float
    throughput_images_per_s: float


def run_interpreter(runner, images: np.ndarray, timed: int, warmup: int) -> tuple[np.ndarray, Timing]:
    """Predictions for all ``images`` (one at a time, timed for throughput),
    and batch-1 latency over ``timed`` single-image inferences after
    ``warmup`` untimed ones, each through LCE's Python binding, which adds
    its call overhead."""
    start = time.perf_counter()
    predictions = runner.predict(images)
    elapsed = time.perf_counter() - start
    wrapper = runner.interpreter
    samples = [images[i % len(images)][np.newaxis] for i in range(timed + warmup)]
    for sample in samples[:warmup]:
        wrapper.predict([sample])
    latencies = []
    for sample in samples[warmup:]:
        start = time.perf_counter_ns()
        wrapper.predict([sample])
        latencies.append((time.perf_counter_ns() - start) / 1000)
    return predictions, Timing(
        latency_median_us=statistics.median(latencies),
        latency_p90_us=float(np.percentile(latencies, 90)),
        throughput_images_per_s=len(images) / elapsed,
    )


def deploy_run(model_dir: str | Path, data_dir: str | Path, variant_input_range: tuple[float, float],
               out_model_dir: str | Path, out_report_dir: str | Path, threads: int = 1,
               timed_inferences: int = 1000, warmup_inferences: int = 100,
               test_limit: int | None = None) -> dict[str, Any]:
    from stages.train import EVAL_BATCH_SIZE, load_model

    model = load_model(model_dir)
    x_test, y_test = load_split(data_dir, "test", test_limit)
    images = scale_images(x_test, variant_input_range)
    keras_pred = model.predict(images, batch_size=EVAL_BATCH_SIZE, verbose=0).argmax(axis=1)
    converted = convert(model)
    flatbuffer = strip_names(converted)
    log.info("%s: converted to %d bytes, %d without debug names (%.2f KiB)", model_dir, len(converted),
             len(flatbuffer), len(flatbuffer) / 1024)

    candidates = []
    for options in INTERPRETER_OPTIONS:
        probabilities, timing = run_interpreter(interpreter(flatbuffer, threads, options), images,
                                                timed_inferences, warmup_inferences)
        lite_pred = probabilities.argmax(axis=1)
        agreement = float(np.mean(lite_pred == keras_pred))
        log.info("  %s: agreement %.4f%%, median %.1f us, p90 %.1f us, %.0f images/s", options, 100 * agreement,
                 timing.latency_median_us, timing.latency_p90_us, timing.throughput_images_per_s)
        candidates.append({
            "options": options, "agreement": agreement, "converted_accuracy": float(np.mean(lite_pred == y_test)),
            **vars(timing),
        })
    correct = [c for c in candidates if 1 - c["agreement"] <= MAX_DISAGREEMENT]
    if not correct:
        worst = min(c["agreement"] for c in candidates)
        raise StudyError(
            f"the converted {model_dir} disagrees with Keras on {100 * (1 - worst):.2f}% of test images "
            f"under every interpreter option (at most {100 * MAX_DISAGREEMENT:.1f}% allowed)"
        )
    best = min(correct, key=lambda c: c["latency_median_us"])
    report = {
        "tflite_bytes": len(flatbuffer),
        "tflite_kib": len(flatbuffer) / 1024,
        "converted_bytes_with_names": len(converted),
        "keras_accuracy": float(np.mean(keras_pred == y_test)),
        "converted_accuracy": best["converted_accuracy"],
        "agreement": best["agreement"],
        "latency_median_us": best["latency_median_us"],
        "latency_p90_us": best["latency_p90_us"],
        "throughput_images_per_s": best["throughput_images_per_s"],
        "best_options": best["options"],
        "threads": threads,
        "timed_inferences": timed_inferences,
        "test_images": len(images),
        "cpu": cpu_model(),
        "machine": platform.machine(),
        "note": "LCE's optimized binary kernels target 64-bit Arm; other CPUs run its portable kernels. "
                "Latencies include the Python binding's per-call overhead.",
        "candidates": candidates,
    }
    with atomic_directory(out_model_dir) as tmp:
        (tmp / TFLITE_FILE).write_bytes(flatbuffer)
    with atomic_directory(out_report_dir) as tmp:
        write_json_atomic(tmp / "deploy.json", report)
    log.info("%s: %.2f KiB, accuracy %.4f, agreement %.4f%%, median %.1f us with %s", model_dir,
             report["tflite_kib"], report["converted_accuracy"], 100 * report["agreement"],
             report["latency_median_us"], report["best_options"])
    return report


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.deploy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", required=True)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data", default="data/mnist")
    parser.add_argument("--model", required=True, help="folder of the trained model")
    parser.add_argument("--model-out", required=True, help="folder for the .tflite file")
    parser.add_argument("--report-out", required=True, help="folder for deploy.json")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    variant = variant_from_params(args.variant, params.get("variants"))
    settings = benchmark_settings(params)
    _, test_limit = data_limits(params)
    deploy_run(args.model, args.data, variant.input_range, args.model_out, args.report_out,
               test_limit=test_limit, **settings)


if __name__ == "__main__":
    raise SystemExit(run_cli(main))

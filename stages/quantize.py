"""Stage `quantize`: the int8 form of one trained float run. TensorFlow
Lite's full-integer post-training quantization (:mod:`stages.lib.int8`),
calibrated on training images, checked on the whole test set under every
interpreter option set, and recorded as `deploy` records every deployed
model (size, weights, peak activation RAM with each tensor's real element
size, operators), so that the benchmark and the tables take it as one more
deployed network, named ``<variant>+int8``.

Quantization changes some answers, so agreement with Keras is reported, not
required: a conversion whose test accuracy falls more than
``int8.max_accuracy_drop_pp`` below its Keras model's under any option set
is refused with one line, and nothing is written.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import stages  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from stages.lib.common import StudyError, atomic_directory, load_params, log, run_cli, write_json_atomic
from stages.lib.datasets import load_split, scale_images
from stages.lib.graph import analyse
from stages.lib.int8 import (
    SECTION, Int8Settings, conversion_settings, form, input_quantization, model_inputs, quantize, representative_indices,
)
from stages.lib.lce import INTERPRETER_OPTIONS, SAMPLE_FILE, SAMPLE_IMAGES, TFLITE_FILE, interpreter, strip_names
from stages.lib.networks import variant_from_params
from stages.lib.params import data_limits
from stages.lib.spec import run_spec_path


def quantize_run(model_dir: str | Path, data_dir: str | Path, variant: str, input_range: tuple[float, float],
                 settings: Int8Settings, out_model_dir: str | Path, out_report_dir: str | Path,
                 train_limit: int | None = None, test_limit: int | None = None) -> dict[str, Any]:
    from stages.train import EVAL_BATCH_SIZE, load_model

    model = load_model(model_dir)
    x_train, _ = load_split(data_dir, "train", train_limit)
    chosen = representative_indices(len(x_train), settings.representative_images, settings.seed)
    representative = scale_images(x_train[chosen], input_range)
    x_test, y_test = load_split(data_dir, "test", test_limit)
    images = scale_images(x_test, input_range)
    keras_pred = model.predict(images, batch_size=EVAL_BATCH_SIZE, verbose=0).argmax(axis=1)
    keras_accuracy = float(np.mean(keras_pred == y_test))
    converted = quantize(model, representative, settings.io, source=str(model_dir))
    flatbuffer = strip_names(converted)
    log.info("%s: int8 model of %d bytes (%.2f KiB), calibrated on %d training images", model_dir, len(flatbuffer),
             len(flatbuffer) / 1024, len(chosen))

    checks, quantization = {}, None
    for name in INTERPRETER_OPTIONS:
        runner = interpreter(flatbuffer, 1, name)
        quantization = input_quantization(runner)
        lite_pred = runner.predict(model_inputs(images, quantization)).argmax(axis=1)
        checks[name] = {"agreement": float(np.mean(lite_pred == keras_pred)),
                        "converted_accuracy": float(np.mean(lite_pred == y_test))}
        log.info("  %s: agreement with Keras %.4f%%, accuracy %.4f (Keras %.4f)", name,
                 100 * checks[name]["agreement"], checks[name]["converted_accuracy"], keras_accuracy)
    worst = min(checks, key=lambda name: checks[name]["converted_accuracy"])
    drop_pp = 100 * (keras_accuracy - checks[worst]["converted_accuracy"])
    if drop_pp > settings.max_accuracy_drop_pp:
        raise StudyError(f"the int8 model of {model_dir} loses {drop_pp:.2f} pp of test accuracy against Keras "
                         f"(under {worst}), more than {SECTION}.max_accuracy_drop_pp = {settings.max_accuracy_drop_pp:g}: "
                         "raise representative_images or the tolerance, or leave the variant out of "
                         f"{SECTION}.variants")
    graph = analyse(flatbuffer)
    report = {
        "tflite_bytes": len(flatbuffer),
        "tflite_kib": len(flatbuffer) / 1024,
        "converted_bytes_with_names": len(converted),
        "keras_accuracy": keras_accuracy,
        "converted_accuracy": checks["default"]["converted_accuracy"],
        "agreement": min(check["agreement"] for check in checks.values()),
        "options_agreeing": list(checks),   # every option set is within the tolerance: all are timed
        "checks": checks,
        "input_range": list(input_range),
        "test_images": len(images),
        "int8": {"variant": variant, "form": form(variant), "representative_images": len(chosen),
                 "seed": settings.seed, "io": settings.io, "input_quantization": quantization,
                 "max_accuracy_drop_pp": settings.max_accuracy_drop_pp, "accuracy_drop_pp": drop_pp},
        **graph,
    }
    with atomic_directory(out_model_dir) as tmp:
        (tmp / TFLITE_FILE).write_bytes(flatbuffer)
    with atomic_directory(out_report_dir) as tmp:
        write_json_atomic(tmp / "deploy.json", report)
        np.save(tmp / SAMPLE_FILE, x_test[:SAMPLE_IMAGES])
    log.info("%s: int8 %.2f KiB file, %.2f KiB peak activations, accuracy %.4f (Keras %.4f), agreement %.4f%%",
             model_dir, report["tflite_kib"], graph["peak_activation_bytes"] / 1024, report["converted_accuracy"],
             keras_accuracy, 100 * report["agreement"])
    return report


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.quantize", description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", required=True, help="the trained run's variant (a float network)")
    parser.add_argument("--params", default="data/spec/quantize.json", help="the slice of params.yaml it reads")
    parser.add_argument("--data", default="data/dataset-mnist", help="folder of the run's dataset")
    parser.add_argument("--model", required=True, help="folder of the trained model")
    parser.add_argument("--model-out", required=True, help="folder for the int8 .tflite file")
    parser.add_argument("--report-out", required=True, help="folder for its deploy.json")
    args = parser.parse_args(argv)
    settings = conversion_settings(load_params(args.params), (args.variant,))
    run = load_params(run_spec_path(args.model))
    variant = variant_from_params(args.variant, run.get("variants"))
    train_limit, test_limit = data_limits(run)
    quantize_run(args.model, args.data, args.variant, variant.input_range, settings, args.model_out, args.report_out,
                 train_limit=train_limit, test_limit=test_limit)


if __name__ == "__main__":
    raise SystemExit(run_cli(main))

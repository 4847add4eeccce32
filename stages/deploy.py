"""Stage `deploy`: convert one trained model with Larq Compute Engine (LCE),
check the converted model against Keras on the whole test set under every
interpreter option set, keep the first test images for the benchmark, and
record what the file holds: its size, the bytes of its weights, the peak RAM
its activations need, its operators by type and the share of its
multiply-accumulates that run in binary operators.

Conversion and model surgery live in :mod:`stages.lib.lce`, the graph's
facts in :mod:`stages.lib.graph`. Timing is the `benchmark` stage's: it
times every deployed model side by side, which one stage per model cannot.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import stages  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from stages.lib.common import StudyError, atomic_directory, load_params, log, run_cli, write_json_atomic
from stages.lib.graph import analyse
from stages.lib.lce import (
    INTERPRETER_OPTIONS, SAMPLE_FILE, SAMPLE_IMAGES, TFLITE_FILE, convert, interpreter, strip_names,
)
from stages.lib.datasets import load_split, scale_images
from stages.lib.networks import variant_from_params
from stages.lib.params import data_limits
from stages.lib.spec import run_spec_path

MAX_DISAGREEMENT = 0.001


def deploy_run(model_dir: str | Path, data_dir: str | Path, variant_input_range: tuple[float, float],
               out_model_dir: str | Path, out_report_dir: str | Path, test_limit: int | None = None) -> dict[str, Any]:
    from stages.train import EVAL_BATCH_SIZE, load_model

    model = load_model(model_dir)
    x_test, y_test = load_split(data_dir, "test", test_limit)
    images = scale_images(x_test, variant_input_range)
    keras_pred = model.predict(images, batch_size=EVAL_BATCH_SIZE, verbose=0).argmax(axis=1)
    converted = convert(model)
    flatbuffer = strip_names(converted)
    log.info("%s: converted to %d bytes, %d without debug names (%.2f KiB)", model_dir, len(converted),
             len(flatbuffer), len(flatbuffer) / 1024)

    checks = {}
    for name in INTERPRETER_OPTIONS:
        lite_pred = interpreter(flatbuffer, 1, name).predict(images).argmax(axis=1)
        checks[name] = {"agreement": float(np.mean(lite_pred == keras_pred)),
                        "converted_accuracy": float(np.mean(lite_pred == y_test))}
        log.info("  %s: agreement with Keras %.4f%%, accuracy %.4f", name, 100 * checks[name]["agreement"],
                 checks[name]["converted_accuracy"])
    agreeing = [name for name, check in checks.items() if 1 - check["agreement"] <= MAX_DISAGREEMENT]
    if not agreeing:
        worst = min(check["agreement"] for check in checks.values())
        raise StudyError(
            f"the converted {model_dir} disagrees with Keras on {100 * (1 - worst):.2f}% of test images "
            f"under every interpreter option set (at most {100 * MAX_DISAGREEMENT:.1f}% allowed)"
        )
    reference = checks[agreeing[0]]
    graph = analyse(flatbuffer)
    report = {
        "tflite_bytes": len(flatbuffer),
        "tflite_kib": len(flatbuffer) / 1024,
        "converted_bytes_with_names": len(converted),
        "keras_accuracy": float(np.mean(keras_pred == y_test)),
        "converted_accuracy": reference["converted_accuracy"],
        "agreement": min(checks[name]["agreement"] for name in agreeing),
        "options_agreeing": agreeing,
        "checks": checks,
        "input_range": list(variant_input_range),
        "test_images": len(images),
        **graph,
    }
    with atomic_directory(out_model_dir) as tmp:
        (tmp / TFLITE_FILE).write_bytes(flatbuffer)
    with atomic_directory(out_report_dir) as tmp:
        write_json_atomic(tmp / "deploy.json", report)
        np.save(tmp / SAMPLE_FILE, x_test[:SAMPLE_IMAGES])
    log.info("%s: %.2f KiB file, %.2f KiB peak activations, %.1f%% of MACs in binary operators, accuracy %.4f",
             model_dir, report["tflite_kib"], graph["peak_activation_bytes"] / 1024,
             100 * graph["binary_mac_fraction_deployed"], report["converted_accuracy"])
    if len(agreeing) < len(checks):
        log.info("%s: not timed under %s (predictions disagree with Keras)", model_dir,
                 ", ".join(name for name in checks if name not in agreeing))
    return report


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.deploy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", required=True)
    parser.add_argument("--params", help="the slice of params.yaml it reads; by default the one the run was trained "
                        "with, kept beside its model")
    parser.add_argument("--data", default="data/dataset-mnist", help="folder of the run's dataset")
    parser.add_argument("--model", required=True, help="folder of the trained model")
    parser.add_argument("--model-out", required=True, help="folder for the .tflite file")
    parser.add_argument("--report-out", required=True, help="folder for deploy.json")
    args = parser.parse_args(argv)
    params = load_params(args.params or run_spec_path(args.model))
    variant = variant_from_params(args.variant, params.get("variants"))
    _, test_limit = data_limits(params)
    deploy_run(args.model, args.data, variant.input_range, args.model_out, args.report_out, test_limit=test_limit)


if __name__ == "__main__":
    raise SystemExit(run_cli(main))

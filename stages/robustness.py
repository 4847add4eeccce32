"""Stage `robustness`: evaluate one trained run on every corrupted copy of
its dataset's test split, and check its deployed ``.tflite`` there too.

For the clean test images and each corruption it records Keras's accuracy
and every image's answer, and the deployed model's answers under the
interpreter option set the headline speed uses: its agreement with Keras
on inputs far from the training data, where a converted binary network's
fused thresholds could disagree. Evaluation only: nothing is retrained.
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import stages  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from stages.lib.common import StudyError, atomic_directory, load_params, log, run_cli, write_json_atomic
from stages.lib.datasets import load_split, read_idx, scale_images
from stages.lib.lce import TFLITE_FILE, interpreter
from stages.lib.networks import variant_from_params
from stages.lib.params import data_limits, headline_options
from stages.lib.robustness import (
    CLEAN, EVALUATION_FILE, PREDICTIONS_FILE, corrupted_file, read_manifest,
)
from stages.lib.spec import run_spec_path

# The deployed model is checked on one thread (its answers do not depend
# on the thread count, and one is the fastest here for the 1-bit network),
# on the first images of each corruption: LCE's interpreter answers one
# image per call (about 40 us here), and on every image it would double
# the stage's time, past what the study allows these stages.
THREADS = 1
DEPLOYED_CHECK_IMAGES = 2000
BATCH = 2500


def corrupted_images(folder: Path, name: str, entry: dict[str, Any], images: int) -> np.ndarray:
    """One corruption's test images, checked against the manifest's
    checksum and the clean split's image count."""
    path = folder / corrupted_file(name)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise StudyError(f"{path} is missing: rerun `dvc repro corrupt`") from None
    if hashlib.sha256(raw).hexdigest() != entry["sha256"]:
        raise StudyError(f"{path} does not match its checksum in {folder / 'corruptions.json'}: it was damaged; "
                         "rerun `dvc repro --force corrupt`")
    pixels = read_idx(path)
    if pixels.dtype != np.uint8 or pixels.shape != (images, 28, 28):
        raise StudyError(f"{path} holds {pixels.dtype} {pixels.shape}, not the {images} test images of the run: "
                         "rerun `dvc repro corrupt`")
    return pixels


def evaluate_run(model_dir: str | Path, deployed_dir: str | Path, data_dir: str | Path,
                 corrupted_dir: str | Path, input_range: tuple[float, float], options: str,
                 out_dir: str | Path, test_limit: int | None = None) -> dict[str, Any]:
    import tensorflow as tf

    from stages.train import load_model

    folder = Path(corrupted_dir)
    manifest = read_manifest(folder)
    model = load_model(model_dir)
    tflite = Path(deployed_dir) / TFLITE_FILE
    if not tflite.is_file():
        raise StudyError(f"{tflite} is missing: run `dvc repro` to deploy the run")
    lite = interpreter(tflite.read_bytes(), THREADS, options, source=str(tflite))
    x_test, y_test = load_split(data_dir, "test", test_limit)
    if manifest["test_images"] != len(y_test):
        raise StudyError(f"{folder} holds corruptions of {manifest['test_images']} test images, the run uses "
                         f"{len(y_test)}: rerun `dvc repro corrupt`")

    # The model called directly in one traced function: half the time of
    # `predict`, which sets up a dataset on every call (36 calls a run).
    infer = tf.function(lambda batch: model(batch, training=False), autograph=False, reduce_retracing=True)

    def answers(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        images = scale_images(pixels, input_range)
        keras = np.concatenate([infer(images[start:start + BATCH]).numpy().argmax(axis=1)
                                for start in range(0, len(images), BATCH)])
        return keras, lite.predict(images[:DEPLOYED_CHECK_IMAGES]).argmax(axis=1)

    keras, _ = answers(x_test)
    predictions = {"label": y_test.astype(int), CLEAN: keras}
    clean_accuracy = float(np.mean(keras == y_test))
    results = {}
    for name, entry in manifest["corruptions"].items():
        keras, deployed = answers(corrupted_images(folder, name, entry, len(y_test)))
        predictions[name] = keras
        checked = len(deployed)
        results[name] = {"level": entry["level"], "images": len(y_test),
                         "accuracy": float(np.mean(keras == y_test)),
                         "deployed_images": checked,
                         "deployed_accuracy": float(np.mean(deployed == y_test[:checked])),
                         "deployed_agreement": float(np.mean(deployed == keras[:checked]))}
        log.info("  %s: accuracy %.2f%% (clean %.2f%%), deployed agrees on %.2f%%", name,
                 100 * results[name]["accuracy"], 100 * clean_accuracy, 100 * results[name]["deployed_agreement"])
    evaluation = {"clean_accuracy": clean_accuracy, "test_images": len(y_test), "options": options,
                  "corruption_seed": manifest["seed"], "corruptions": results}
    with atomic_directory(out_dir) as tmp:
        write_json_atomic(tmp / EVALUATION_FILE, evaluation)
        pd.DataFrame(predictions).to_csv(tmp / PREDICTIONS_FILE, index=False)
    worst = min(results, key=lambda name: results[name]["accuracy"])
    log.info("%s: %d corruptions; lowest accuracy %.2f%% under %s; deployed agreement at least %.2f%%", model_dir,
             len(results), 100 * results[worst]["accuracy"], worst,
             100 * min(r["deployed_agreement"] for r in results.values()))
    return evaluation


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.robustness", description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", required=True)
    parser.add_argument("--params", default="data/spec/robustness.json", help="the slice of params.yaml it reads")
    parser.add_argument("--data", required=True, help="folder of the run's dataset")
    parser.add_argument("--corrupted", required=True, help="folder of the dataset's corrupted test images")
    parser.add_argument("--model", required=True, help="folder of the trained model")
    parser.add_argument("--deployed", required=True, help="folder of the run's .tflite")
    parser.add_argument("--out", required=True, help="folder for robustness.json and predictions.csv")
    args = parser.parse_args(argv)
    options = headline_options(load_params(args.params))
    record = load_params(run_spec_path(args.model))
    variant = variant_from_params(args.variant, record.get("variants"))
    _, test_limit = data_limits(record)
    evaluate_run(args.model, args.deployed, args.data, args.corrupted, variant.input_range, options, args.out,
                 test_limit=test_limit)


if __name__ == "__main__":
    raise SystemExit(run_cli(main))

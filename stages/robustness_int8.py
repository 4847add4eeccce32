"""Stage `robustness_int8`: evaluate one run's int8 model (see `quantize`)
on every corrupted copy of its dataset's test split, as `robustness`
evaluates the trained runs, so that the tables compare it with them.

The int8 model is a deployed network of its own: its answers on every image
(under the interpreter option set the headline speed uses) are its accuracy,
and its agreement is with the Keras model it was converted from, whose
answers the source run's `robustness` stage kept. Nothing is retrained or
converted again.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import stages  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from stages.lib.common import StudyError, atomic_directory, load_params, log, run_cli, write_json_atomic
from stages.lib.datasets import load_split, scale_images
from stages.lib.int8 import input_quantization, model_inputs
from stages.lib.lce import TFLITE_FILE, interpreter
from stages.lib.networks import variant_from_params
from stages.lib.params import data_limits, headline_options
from stages.lib.robustness import CLEAN, EVALUATION_FILE, PREDICTIONS_FILE, read_manifest
from stages.lib.spec import run_spec_path
from stages.robustness import THREADS, corrupted_images


def source_answers(folder: Path, names: Sequence[str], images: int) -> pd.DataFrame:
    """The Keras answers the source run's evaluation kept: labels, clean
    images and every corruption, one row per test image."""
    path = folder / PREDICTIONS_FILE
    redo = f"rerun `dvc repro --force robustness@{folder.name}`"
    try:
        answers = pd.read_csv(path)
    except FileNotFoundError:
        raise StudyError(f"{path} is missing: run `dvc repro` to evaluate the run it was converted from") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise StudyError(f"{path} is not a readable table ({type(err).__name__}): {redo}") from None
    missing = [name for name in ["label", CLEAN, *names] if name not in answers]
    if missing or len(answers) != images:
        raise StudyError(f"{path} lacks {', '.join(missing) or f'its {images} rows'}: {redo}")
    return answers


def evaluate_int8(deployed_dir: str | Path, source_dir: str | Path, data_dir: str | Path, corrupted_dir: str | Path,
                  input_range: tuple[float, float], options: str, out_dir: str | Path,
                  test_limit: int | None = None) -> dict[str, Any]:
    folder = Path(corrupted_dir)
    manifest = read_manifest(folder)
    tflite = Path(deployed_dir) / TFLITE_FILE
    if not tflite.is_file():
        raise StudyError(f"{tflite} is missing: run `dvc repro` to quantize the run")
    lite = interpreter(tflite.read_bytes(), THREADS, options, source=str(tflite))
    quantization = input_quantization(lite)
    x_test, y_test = load_split(data_dir, "test", test_limit)
    if manifest["test_images"] != len(y_test):
        raise StudyError(f"{folder} holds corruptions of {manifest['test_images']} test images, the run uses "
                         f"{len(y_test)}: rerun `dvc repro corrupt`")
    keras = source_answers(Path(source_dir), list(manifest["corruptions"]), len(y_test))

    def answers(pixels: np.ndarray) -> np.ndarray:
        return lite.predict(model_inputs(scale_images(pixels, input_range), quantization)).argmax(axis=1)

    clean = answers(x_test)
    predictions = {"label": y_test.astype(int), CLEAN: clean}
    clean_accuracy = float(np.mean(clean == y_test))
    results = {}
    for name, entry in manifest["corruptions"].items():
        mine = answers(corrupted_images(folder, name, entry, len(y_test)))
        predictions[name] = mine
        accuracy = float(np.mean(mine == y_test))
        results[name] = {"level": entry["level"], "images": len(y_test), "accuracy": accuracy,
                         "deployed_images": len(y_test), "deployed_accuracy": accuracy,
                         "deployed_agreement": float(np.mean(mine == keras[name].to_numpy()))}
        log.info("  %s: int8 accuracy %.2f%% (clean %.2f%%), agrees with Keras on %.2f%%", name, 100 * accuracy,
                 100 * clean_accuracy, 100 * results[name]["deployed_agreement"])
    evaluation = {"clean_accuracy": clean_accuracy, "test_images": len(y_test), "options": options,
                  "corruption_seed": manifest["seed"], "corruptions": results,
                  "clean_agreement": float(np.mean(clean == keras[CLEAN].to_numpy()))}
    with atomic_directory(out_dir) as tmp:
        write_json_atomic(tmp / EVALUATION_FILE, evaluation)
        pd.DataFrame(predictions).to_csv(tmp / PREDICTIONS_FILE, index=False)
    worst = min(results, key=lambda name: results[name]["accuracy"])
    log.info("%s: %d corruptions; lowest accuracy %.2f%% under %s; agreement with Keras at least %.2f%%", tflite,
             len(results), 100 * results[worst]["accuracy"], worst,
             100 * min(r["deployed_agreement"] for r in results.values()))
    return evaluation


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.robustness_int8", description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", required=True, help="the variant the int8 model was converted from")
    parser.add_argument("--params", default="data/spec/robustness.json", help="the slice of params.yaml it reads")
    parser.add_argument("--data", required=True, help="folder of the run's dataset")
    parser.add_argument("--corrupted", required=True, help="folder of the dataset's corrupted test images")
    parser.add_argument("--model", required=True, help="folder of the trained model (for its record)")
    parser.add_argument("--deployed", required=True, help="folder of the int8 .tflite")
    parser.add_argument("--source", required=True, help="the source run's evaluation folder (its Keras answers)")
    parser.add_argument("--out", required=True, help="folder for robustness.json and predictions.csv")
    args = parser.parse_args(argv)
    options = headline_options(load_params(args.params))
    record = load_params(run_spec_path(args.model))
    variant = variant_from_params(args.variant, record.get("variants"))
    _, test_limit = data_limits(record)
    evaluate_int8(args.deployed, args.source, args.data, args.corrupted, variant.input_range, options, args.out,
                  test_limit=test_limit)


if __name__ == "__main__":
    raise SystemExit(run_cli(main))

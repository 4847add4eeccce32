"""Robustness to corrupted inputs: the files the `corrupt` and `robustness`
stages write (corrupted images with their manifest; each run's evaluation),
the test images a run is evaluated on, and the one evaluation loop. The
``robustness`` section of params.yaml, checked, and its slices:
:mod:`stages.lib.settings.robustness`.

The tables `aggregate` makes of the evaluations, and what the report says of
them: :mod:`stages.lib.analysis.robustness_tables`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stages.lib.common import StudyError, atomic_directory, log, write_json_atomic
from stages.lib.data.corruptions import CORRUPTIONS
from stages.lib.data.datasets import read_idx

MANIFEST_FILE = "corruptions.json"
EVALUATION_FILE = "robustness.json"
PREDICTIONS_FILE = "predictions.csv"
CLEAN = "clean"  # the predictions column of the uncorrupted test images
IMAGE = "image"  # the predictions column of each row's index among the test images
EXAMPLE_IMAGE = 0  # the test image the examples figure shows
# Deployed models answer on one thread here (their answers do not depend on
# the thread count).
THREADS = 1


def corrupted_file(name: str) -> str:
    """The IDX file of one corruption's test images, in the dataset's
    corrupted folder."""
    return f"{name}-images-idx3-ubyte"


def image_subset(count: int, test_images: int | None, seed: int) -> np.ndarray:
    """The indices, ascending, of the test images a run is evaluated on:
    all ``count`` of them, or ``test_images`` drawn from them without
    replacement by ``seed`` (the same for every run and corruption, so that
    runs and forms are compared on the same images). Drawn rather than the
    first ones: MNIST's first 5,000 test images come from NIST's training
    set and are cleaner and easier than the last 5,000 (LeCun's notes)."""
    if test_images is None or test_images >= count:
        return np.arange(count)
    return np.sort(np.random.default_rng([seed, count]).permutation(count)[:test_images])


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The record `corrupt` writes beside the corrupted images: each
    corruption's level and file checksum, the seed, the image count and
    the clean example image; anything else is a one-line error."""
    path = Path(folder) / MANIFEST_FILE
    redo = "rerun `dvc repro corrupt`"
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise StudyError(f"{path} is missing: {redo}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise StudyError(f"{path} is not valid JSON ({err}): {redo}") from None
    if not isinstance(manifest, dict) or not {"corruptions", "seed", "test_images", "example"} <= set(manifest):
        raise StudyError(f"{path} lacks corruptions, seed, test_images or example: {redo}")
    count = manifest["test_images"]
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise StudyError(f"{path}: test_images must be a whole number >= 1, got {count!r}: {redo}")
    corruptions = manifest["corruptions"]
    if not isinstance(corruptions, dict) or not corruptions:
        raise StudyError(f"{path}: corruptions must map each corruption to its level and checksum: {redo}")
    for name, entry in corruptions.items():
        if name not in CORRUPTIONS or not isinstance(entry, dict) or not {"level", "sha256"} <= set(entry):
            raise StudyError(f"{path}: corruptions.{name} is not a corruption this study writes: {redo}")
    example = manifest["example"]
    pixels = example.get("pixels") if isinstance(example, dict) else None
    if not isinstance(pixels, list) or len(pixels) != 28 * 28 or not all(
            isinstance(p, int) and 0 <= p <= 255 for p in pixels):
        raise StudyError(f"{path}: example.pixels must be 784 pixels from 0 to 255: {redo}")
    return manifest


def corrupted_images(folder: Path, name: str, entry: dict[str, Any], images: int) -> np.ndarray:
    """One corruption's test images, checked against the manifest's
    checksum and the clean split's image count."""
    path = folder / corrupted_file(name)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise StudyError(f"{path} is missing: rerun `dvc repro corrupt`") from None
    if hashlib.sha256(raw).hexdigest() != entry["sha256"]:
        raise StudyError(f"{path} does not match its checksum in {folder / MANIFEST_FILE}: it was damaged; "
                         "rerun `dvc repro --force corrupt`")
    pixels = read_idx(path)
    if pixels.dtype != np.uint8 or pixels.shape != (images, 28, 28):
        raise StudyError(f"{path} holds {pixels.dtype} {pixels.shape}, not the {images} test images of the run: "
                         "rerun `dvc repro corrupt`")
    return pixels


def source_answers(folder: Path, names: Sequence[str], images: np.ndarray):
    """The Keras answers a trained run's evaluation kept: labels, clean
    images and every corruption, one row per test image of ``images`` (the
    indices evaluated, which must be those the run was evaluated on)."""
    import pandas as pd

    path = folder / PREDICTIONS_FILE
    redo = f"rerun `dvc repro --force robustness@{folder.parent.name}`"
    try:
        answers = pd.read_csv(path)
    except FileNotFoundError:
        raise StudyError(f"{path} is missing: run `dvc repro` to evaluate the run it was converted from") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise StudyError(f"{path} is not a readable table ({type(err).__name__}): {redo}") from None
    missing = [name for name in [IMAGE, "label", CLEAN, *names] if name not in answers]
    if missing:
        raise StudyError(f"{path} lacks {', '.join(missing)}: {redo}")
    if not np.array_equal(answers[IMAGE].to_numpy(), images):
        raise StudyError(f"{path} answers other test images than this evaluation's (robustness.test_images or "
                         f"robustness.seed changed since): {redo}")
    return answers


# A network's answers to scaled-or-raw pixels: the answers its accuracy is
# measured by, and the deployed model's (all of them, or the first images).
Answers = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def evaluate(corrupted_dir: str | Path, x_test: np.ndarray, y_test: np.ndarray, answer: Answers,
             reference: Callable[[str, np.ndarray], np.ndarray], options: str, out_dir: str | Path,
             what: str, chosen: np.ndarray | None = None) -> dict[str, Any]:
    """Every corruption of the manifest in ``corrupted_dir`` answered by
    ``answer`` on the test images ``chosen`` (indices, :func:`image_subset`;
    None: all); the deployed answers compared with ``reference(corruption,
    answers)`` (the Keras answers they should agree with). Writes the
    evaluation (``robustness.json``) and every evaluated image's answer
    (``predictions.csv``) to ``out_dir``, whole or not at all."""
    import pandas as pd

    folder = Path(corrupted_dir)
    manifest = read_manifest(folder)
    if manifest["test_images"] != len(y_test):
        raise StudyError(f"{folder} holds corruptions of {manifest['test_images']} test images, the run uses "
                         f"{len(y_test)}: rerun `dvc repro corrupt`")
    of = len(y_test)
    chosen = np.arange(of) if chosen is None else chosen
    x_test, y_test = x_test[chosen], y_test[chosen]
    measured, deployed = answer(x_test)
    predictions = {IMAGE: chosen, "label": y_test.astype(int), CLEAN: measured}
    clean_accuracy = float(np.mean(measured == y_test))
    clean_agreement = float(np.mean(deployed == reference(CLEAN, measured)[:len(deployed)]))
    results = {}
    for name, entry in manifest["corruptions"].items():
        measured, deployed = answer(corrupted_images(folder, name, entry, of)[chosen])
        predictions[name] = measured
        checked = len(deployed)
        results[name] = {"level": entry["level"], "images": len(y_test),
                         "accuracy": float(np.mean(measured == y_test)),
                         "deployed_images": checked,
                         "deployed_accuracy": float(np.mean(deployed == y_test[:checked])),
                         "deployed_agreement": float(np.mean(deployed == reference(name, measured)[:checked]))}
        log.info("  %s: accuracy %.2f%% (clean %.2f%%), deployed agrees with Keras on %.2f%%", name,
                 100 * results[name]["accuracy"], 100 * clean_accuracy, 100 * results[name]["deployed_agreement"])
    evaluation = {"clean_accuracy": clean_accuracy, "test_images": len(y_test), "of_test_images": of,
                  "options": options,
                  "corruption_seed": manifest["seed"], "corruptions": results, "clean_agreement": clean_agreement}
    with atomic_directory(out_dir) as tmp:
        write_json_atomic(tmp / EVALUATION_FILE, evaluation)
        pd.DataFrame(predictions).to_csv(tmp / PREDICTIONS_FILE, index=False)
    worst = min(results, key=lambda name: results[name]["accuracy"])
    log.info("%s: %d corruptions of %d of the %d test images; lowest accuracy %.2f%% under %s; "
             "deployed agreement at least %.2f%%", what,
             len(results), len(y_test), of, 100 * results[worst]["accuracy"], worst,
             100 * min(r["deployed_agreement"] for r in results.values()))
    return evaluation

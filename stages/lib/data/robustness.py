"""Robustness to corrupted inputs: the ``robustness`` section of params.yaml,
the slices of it the `corrupt` and `robustness` stages read, and the files
they write (corrupted images with their manifest; each run's evaluation).

The section is checked here rather than in :mod:`stages.lib.params`: every
training run depends on that module's file, so adding the section there
would retrain every run of the study (and miss every run DVC has cached)
for a change that evaluates them only.

The tables `aggregate` makes of the evaluations, and what the report says of
them: :mod:`stages.lib.analysis.robustness_tables`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stages.lib.common import StudyError, atomic_directory, log, write_json_atomic
from stages.lib.data.corruptions import CORRUPTIONS
from stages.lib.data.datasets import read_idx
from stages.lib.params import name_list, section

SECTION = "robustness"
KEYS = ("corruptions", "severities", "seed", "test_images")
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


@dataclass(frozen=True)
class RobustnessSettings:
    """The corruptions to evaluate, in order, each with its severity level
    (None for one without levels), the seed of every random draw, and how
    many of the test images each run is evaluated on (None: all)."""
    levels: dict[str, int | None]
    seed: int
    test_images: int | None = None

    @property
    def corruptions(self) -> list[str]:
        return list(self.levels)


def robustness_settings(params: dict[str, Any]) -> RobustnessSettings:
    """``robustness``: known corruption names, each once; severities 1 to 5
    for corruptions that have levels (those not given take MNIST-C's); a
    seed >= 0. Anything else is a one-line error naming the key."""
    found = section(params, SECTION, KEYS)
    names = name_list(f"{SECTION}.corruptions", found.get("corruptions"), CORRUPTIONS, "corruption")
    severities = found.get("severities") or {}
    if not isinstance(severities, dict):
        raise StudyError(f"{SECTION}.severities must map corruption names to levels 1 to 5, got {severities!r}")
    for name, level in severities.items():
        if name not in CORRUPTIONS:
            raise StudyError(f"{SECTION}.severities: unknown corruption {name!r}; known: {', '.join(CORRUPTIONS)}")
        if not CORRUPTIONS[name].levels:
            raise StudyError(f"{SECTION}.severities.{name}: {name} has no severity levels; remove it")
        if not isinstance(level, int) or isinstance(level, bool) or not 1 <= level <= len(CORRUPTIONS[name].levels):
            raise StudyError(f"{SECTION}.severities.{name} must be a level from 1 to "
                             f"{len(CORRUPTIONS[name].levels)}, got {level!r}")
    seed, test_images = _evaluated(found)
    levels = {name: (severities.get(name, CORRUPTIONS[name].level) if CORRUPTIONS[name].levels else None)
              for name in names}
    return RobustnessSettings(levels, seed, test_images)


def _evaluated(found: dict[str, Any]) -> tuple[int, int | None]:
    """``robustness.seed`` and ``robustness.test_images``, checked."""
    seed = found.get("seed")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise StudyError(f"{SECTION}.seed must be a whole number >= 0, got {seed!r}")
    test_images = found.get("test_images")
    if test_images is not None and (not isinstance(test_images, int) or isinstance(test_images, bool)
                                    or test_images < 1):
        raise StudyError(f"{SECTION}.test_images must be a whole number >= 1, or null for every test image, "
                         f"got {test_images!r}")
    return seed, test_images


def evaluated_images(params: dict[str, Any]) -> tuple[int | None, int]:
    """From a `robustness` stage's slice: how many test images each run is
    evaluated on (None: all) and the seed that draws them."""
    seed, test_images = _evaluated(section(params, SECTION, KEYS))
    return test_images, seed


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


def corrupt_slice(params: dict[str, Any]) -> dict[str, Any]:
    """What a dataset's `corrupt` stage reads: the corruptions with their
    levels and seed, and how many test images the runs use."""
    settings = robustness_settings(params)
    return {SECTION: {"corruptions": settings.corruptions, "seed": settings.seed,
                      "severities": {name: level for name, level in settings.levels.items() if level is not None}},
            "data": {"test_limit": params["data"].get("test_limit")}}


def evaluation_slice(params: dict[str, Any]) -> dict[str, Any]:
    """What each run's `robustness` stage reads: the interpreter option set
    its deployed model is checked under (the one the headline speed uses),
    and which test images it is evaluated on."""
    settings = robustness_settings(params)
    return {"benchmark": {"headline_options": params["benchmark"]["headline_options"]},
            SECTION: {"test_images": settings.test_images, "seed": settings.seed}}


check = robustness_settings


def slices(params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The robustness stages' slice files, by their path in the spec
    folder: one per dataset with sources (as the download slices), one for
    the evaluations."""
    one = corrupt_slice(params)
    files = {f"corrupt/{name}.json": one for name in params["data"]["sources"]}
    files["robustness.json"] = evaluation_slice(params)
    return files


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

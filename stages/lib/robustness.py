"""Robustness to corrupted inputs: the ``robustness`` section of params.yaml,
the slices of it the `corrupt` and `robustness` stages read, and the files
they write (corrupted images with their manifest; each run's evaluation).

The section is checked here rather than in :mod:`stages.lib.params`: every
training run depends on that module's file, so adding the section there
would retrain every run of the study (and miss every run DVC has cached)
for a change that evaluates them only.

The tables `aggregate` makes of the evaluations, and what the report says of
them: :mod:`stages.lib.robustness_tables`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stages.lib.common import StudyError
from stages.lib.corruptions import CORRUPTIONS

SECTION = "robustness"
KEYS = ("corruptions", "severities", "seed")
MANIFEST_FILE = "corruptions.json"
EVALUATION_FILE = "robustness.json"
PREDICTIONS_FILE = "predictions.csv"
CLEAN = "clean"  # the predictions column of the uncorrupted test images
EXAMPLE_IMAGE = 0  # the test image the examples figure shows


def corrupted_file(name: str) -> str:
    """The IDX file of one corruption's test images, in the dataset's
    corrupted folder."""
    return f"{name}-images-idx3-ubyte"


@dataclass(frozen=True)
class RobustnessSettings:
    """The corruptions to evaluate, in order, each with its severity level
    (None for one without levels), and the seed of every random draw."""
    levels: dict[str, int | None]
    seed: int

    @property
    def corruptions(self) -> list[str]:
        return list(self.levels)


def robustness_settings(params: dict[str, Any]) -> RobustnessSettings:
    """``robustness``: known corruption names, each once; severities 1 to 5
    for corruptions that have levels (those not given take MNIST-C's); a
    seed >= 0. Anything else is a one-line error naming the key."""
    section = params.get(SECTION)
    if not isinstance(section, dict):
        raise StudyError(f"params.yaml has no `{SECTION}` section")
    extra = [str(key) for key in section if key not in KEYS]
    if extra:
        raise StudyError(f"{SECTION} has unknown keys {', '.join(extra)}; valid keys: {', '.join(KEYS)}")
    names = section.get("corruptions")
    if not isinstance(names, list) or not names:
        raise StudyError(f"{SECTION}.corruptions must be a non-empty list of corruption names "
                         f"({', '.join(CORRUPTIONS)}), got {names!r}")
    for name in names:
        if name not in CORRUPTIONS:
            raise StudyError(f"{SECTION}.corruptions: unknown corruption {name!r}; known: {', '.join(CORRUPTIONS)}")
    if len(set(names)) != len(names):
        raise StudyError(f"{SECTION}.corruptions lists a corruption twice: {names!r}")
    severities = section.get("severities") or {}
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
    seed = section.get("seed")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise StudyError(f"{SECTION}.seed must be a whole number >= 0, got {seed!r}")
    levels = {name: (severities.get(name, CORRUPTIONS[name].level) if CORRUPTIONS[name].levels else None)
              for name in names}
    return RobustnessSettings(levels, seed)


def without_section(params: dict[str, Any]) -> dict[str, Any]:
    """params.yaml without the ``robustness`` section, for the checks of
    :mod:`stages.lib.params`, which do not know it."""
    return {name: section for name, section in params.items() if name != SECTION}


def corrupt_slice(params: dict[str, Any]) -> dict[str, Any]:
    """What a dataset's `corrupt` stage reads: the corruptions with their
    levels and seed, and how many test images the runs use."""
    settings = robustness_settings(params)
    return {SECTION: {"corruptions": settings.corruptions, "seed": settings.seed,
                      "severities": {name: level for name, level in settings.levels.items() if level is not None}},
            "data": {"test_limit": params["data"].get("test_limit")}}


def evaluation_slice(params: dict[str, Any]) -> dict[str, Any]:
    """What each run's `robustness` stage reads: the interpreter option set
    its deployed model is checked under (the one the headline speed uses)."""
    return {"benchmark": {"headline_options": params["benchmark"]["headline_options"]}}


def slices(params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The robustness stages' slice files, by their path in the spec
    folder: one per dataset with sources (as the download slices), one for
    the evaluations."""
    one = corrupt_slice(params)
    files = {f"corrupt/{name}.json": one for name in params["data"]["sources"]}
    files["robustness.json"] = evaluation_slice(params)
    return files


def corrupted_folder(dataset: str) -> str:
    """A dataset's folder of corrupted test images, under ``data/corrupted``
    (a name never stands alone in an output path)."""
    return f"dataset-{dataset}"


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

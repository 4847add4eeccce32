"""Robustness to corrupted inputs: the ``robustness`` section of params.yaml,
the slices of it the `corrupt` and `robustness` stages read, and the tables
`aggregate` makes of their results.

The section is checked here rather than in :mod:`stages.lib.params`: every
training run depends on that module's file, so adding the section there
would retrain every run of the study (and miss every run DVC has cached)
for a change that evaluates them only.

The tables (per dataset; the baseline is ``aggregate.baseline``):

- ``robustness``: one row per (variant, corruption): the severity, test
  accuracy under the corruption (mean over seeds, logit-scale interval),
  the drop from the run's clean accuracy (mean, Student-t interval), and
  the deployed ``.tflite``'s agreement with Keras on the corrupted images
  (lowest and mean over seeds) and its accuracy.
- ``robustness_gap``: one row per (variant other than the baseline,
  corruption): the robustness gap, the variant's drop minus the baseline's
  drop on the same corruption, paired by seed (positive: the variant loses
  more than the baseline beyond their clean gap), with its interval,
  p-value and Holm-adjusted p-value over the variant's corruptions.
- ``mce``: one row per variant other than the baseline: Hendrycks and
  Dietterich's mean corruption error, the variant's error over the
  baseline's on each corruption averaged over the corruptions, per seed
  (paired), with its interval over seeds.
- ``corruption_examples``: the first test image of each dataset under every
  corruption (784 pixels), for the figure that shows what was done.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stages.lib.common import StudyError, run_name
from stages.lib.corruptions import CORRUPTIONS
from stages.lib.stats import accuracy_interval, holm, mean_interval, paired_difference
from stages.lib.tables import COUNT, FRACTION, MAPPING, POSITIVE_COUNT, TEXT, Runs, read_json

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


# -- results -----------------------------------------------------------------

EVALUATION_FIELDS = {"clean_accuracy": FRACTION, "test_images": POSITIVE_COUNT, "options": TEXT,
                     "corruptions": MAPPING}
CORRUPTION_FIELDS = {"accuracy": FRACTION, "deployed_accuracy": FRACTION, "deployed_agreement": FRACTION,
                     "images": POSITIVE_COUNT, "deployed_images": POSITIVE_COUNT}


def load_evaluations(robustness_dir: str | Path, study: Runs) -> pd.DataFrame:
    """Every run's accuracy under every corruption (long form: dataset,
    variant, seed, corruption, level, accuracy, clean_accuracy,
    test_images, deployed_accuracy, deployed_agreement); every run must
    have been evaluated on the same corruptions."""
    rows, seen = [], {}
    for dataset, variant, seed in study:
        path = Path(robustness_dir) / run_name(dataset, variant, seed) / EVALUATION_FILE
        evaluation = read_json(path, EVALUATION_FIELDS)
        names = tuple(evaluation["corruptions"])
        if seen.setdefault(dataset, names) != names:
            raise StudyError(f"{path} was evaluated on other corruptions than the other runs of {dataset}: "
                             "run `dvc repro` to evaluate every run on the same ones")
        for name, result in evaluation["corruptions"].items():
            if not isinstance(result, dict) or any(field not in result or not kind.accepts(result[field])
                                                   for field, kind in CORRUPTION_FIELDS.items()):
                raise StudyError(f"{path}: corruptions.{name} must hold {', '.join(CORRUPTION_FIELDS)}: "
                                 "rerun the stage that writes it")
            rows.append({"dataset": dataset, "variant": variant, "seed": seed, "corruption": name,
                         "level": result.get("level"), "accuracy": result["accuracy"],
                         "clean_accuracy": evaluation["clean_accuracy"], "test_images": evaluation["test_images"],
                         "deployed_images": result["deployed_images"],
                         "deployed_accuracy": result["deployed_accuracy"],
                         "deployed_agreement": result["deployed_agreement"]})
    return pd.DataFrame(rows)


def _seed_series(evaluations: pd.DataFrame, variant: str, corruption: str, column: str) -> pd.Series:
    rows = evaluations[(evaluations["variant"] == variant) & (evaluations["corruption"] == corruption)]
    return rows.set_index("seed")[column]


def accuracy_table(evaluations: pd.DataFrame, variants: Sequence[str]) -> pd.DataFrame:
    """One row per (variant, corruption) of one dataset, see the module doc."""
    rows = []
    drops = evaluations.assign(drop=evaluations["clean_accuracy"] - evaluations["accuracy"])
    for variant in variants:
        for corruption, group in drops[drops["variant"] == variant].groupby("corruption", sort=False):
            images = int(group["test_images"].iloc[0])
            accuracy = accuracy_interval(group["accuracy"], images)
            clean = accuracy_interval(group["clean_accuracy"], images)
            drop = mean_interval(group["drop"])
            rows.append({
                "variant": variant, "corruption": corruption, "level": group["level"].iloc[0],
                "seeds": len(group), "clean_accuracy_mean": clean.value,
                "accuracy_mean": accuracy.value, "accuracy_ci95_low": accuracy.low,
                "accuracy_ci95_high": accuracy.high,
                "drop": drop.value, "drop_ci95_low": drop.low, "drop_ci95_high": drop.high,
                "deployed_images": int(group["deployed_images"].min()),
                "deployed_accuracy_mean": float(group["deployed_accuracy"].mean()),
                "deployed_agreement_min": float(group["deployed_agreement"].min()),
                "deployed_agreement_mean": float(group["deployed_agreement"].mean()),
            })
    return pd.DataFrame(rows)


def gap_table(evaluations: pd.DataFrame, variants: Sequence[str], baseline: str) -> pd.DataFrame:
    """One row per (variant other than the baseline, corruption) of one
    dataset: the variant's drop minus the baseline's, paired by seed, each
    variant's corruptions one Holm family."""
    drops = evaluations.assign(drop=evaluations["clean_accuracy"] - evaluations["accuracy"])
    corruptions = list(dict.fromkeys(drops["corruption"]))
    rows = []
    for variant in variants:
        if variant == baseline:
            continue
        family = []
        for corruption in corruptions:
            mine = _seed_series(drops, variant, corruption, "drop")
            theirs = _seed_series(drops, baseline, corruption, "drop")
            seeds = mine.index.intersection(theirs.index)
            gap = paired_difference(mine[seeds].to_numpy(), theirs[seeds].to_numpy(), limit=2.0)
            family.append({"variant": variant, "corruption": corruption, "seeds": gap.n,
                           "robustness_gap": gap.value, "robustness_gap_ci95_low": gap.low,
                           "robustness_gap_ci95_high": gap.high, "robustness_gap_p_value": gap.p_value})
        adjusted = holm([row["robustness_gap_p_value"] for row in family])
        for row, p in zip(family, adjusted, strict=True):
            row["robustness_gap_p_holm"] = p
        rows.extend(family)
    return pd.DataFrame(rows, columns=["variant", "corruption", "seeds", "robustness_gap", "robustness_gap_ci95_low",
                                       "robustness_gap_ci95_high", "robustness_gap_p_value",
                                       "robustness_gap_p_holm"])


def mce_table(evaluations: pd.DataFrame, variants: Sequence[str], baseline: str) -> pd.DataFrame:
    """One row per variant other than the baseline of one dataset: per seed,
    the mean over corruptions of the variant's error over the baseline's
    error on that corruption (its corruption error, CE); the mean CE over
    seeds with its Student-t interval. With one severity per corruption,
    Hendrycks and Dietterich's CE (errors summed over severities) is this
    ratio. A corruption on which a baseline run makes no error has no CE;
    it is left out of that seed's mean and counted."""
    errors = evaluations.assign(error=1 - evaluations["accuracy"])
    corruptions = list(dict.fromkeys(errors["corruption"]))
    rows = []
    for variant in variants:
        if variant == baseline:
            continue
        per_seed, undefined = [], 0
        for seed in sorted(set(errors.loc[errors["variant"] == variant, "seed"])):
            ratios = []
            for corruption in corruptions:
                mine = _seed_series(errors, variant, corruption, "error").get(seed, math.nan)
                theirs = _seed_series(errors, baseline, corruption, "error").get(seed, math.nan)
                if theirs > 0 and not math.isnan(mine):
                    ratios.append(mine / theirs)
                else:
                    undefined += 1
            if ratios:
                per_seed.append(float(np.mean(ratios)))
        mce = mean_interval(per_seed)
        rows.append({"variant": variant, "seeds": mce.n, "corruptions": len(corruptions), "mce": mce.value,
                     "mce_ci95_low": mce.low, "mce_ci95_high": mce.high, "ce_undefined": undefined})
    return pd.DataFrame(rows, columns=["variant", "seeds", "corruptions", "mce", "mce_ci95_low", "mce_ci95_high",
                                       "ce_undefined"])


def examples_table(corrupted_dir: str | Path, datasets: Sequence[str]) -> pd.DataFrame:
    """The first test image of each dataset under every corruption it was
    corrupted with, as 784 space-separated pixels in row order."""
    from stages.lib.datasets import read_idx

    rows = []
    for dataset in datasets:
        folder = Path(corrupted_dir) / corrupted_folder(dataset)
        manifest = read_manifest(folder)
        for name, entry in manifest["corruptions"].items():
            images = read_idx(folder / corrupted_file(name))
            rows.append({"dataset": dataset, "corruption": name, "level": entry["level"], "image": EXAMPLE_IMAGE,
                         "pixels": " ".join(map(str, images[EXAMPLE_IMAGE].ravel().tolist()))})
    return pd.DataFrame(rows)


def corrupted_folder(dataset: str) -> str:
    """A dataset's folder of corrupted test images, under ``data/corrupted``
    (a name never stands alone in an output path)."""
    return f"dataset-{dataset}"


MANIFEST_FIELDS = {"corruptions": MAPPING, "seed": COUNT, "test_images": POSITIVE_COUNT}


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The record `corrupt` writes beside the corrupted images: each
    corruption's level and file checksum, the seed and the image count."""
    manifest = read_json(Path(folder) / MANIFEST_FILE, MANIFEST_FIELDS)
    for name, entry in manifest["corruptions"].items():
        if name not in CORRUPTIONS or not isinstance(entry, dict) or not {"level", "sha256"} <= set(entry):
            raise StudyError(f"{Path(folder) / MANIFEST_FILE}: corruptions.{name} is not a corruption this study "
                             "writes: rerun `dvc repro corrupt`")
    return manifest

"""The ``robustness`` section of params.yaml, checked, and the slices of it
the `corrupt` and `robustness` stages read: which corruptions at which
severities, the seed of every draw, how many test images each run is
evaluated on. Checked here rather than in :mod:`stages.lib.params`: every
training run depends on that module's file, and a change that only
evaluates the runs must retrain none. The files and the evaluation loop:
:mod:`stages.lib.data.robustness`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stages.lib.common import StudyError
from stages.lib.data.corruptions import CORRUPTIONS
from stages.lib.params import name_list, section

SECTION = "robustness"
KEYS = ("corruptions", "severities", "seed", "test_images")


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

"""Checked views of ``params.yaml``: each function reads one section and
returns plain values, or raises a one-line :class:`StudyError` naming the
param that is wrong. Stages call :func:`check_study` before any training, so
a bad entry anywhere in the study stops the first stage that runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stages.common import StudyError


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def positive_int(where: str, value: Any) -> int:
    if not _is_int(value) or value <= 0:
        raise StudyError(f"{where} must be a positive whole number, got {value!r}")
    return value


def _section(params: dict[str, Any], name: str) -> dict[str, Any]:
    section = params.get(name)
    if not isinstance(section, dict):
        raise StudyError(f"params.yaml has no `{name}` section")
    return section


@dataclass(frozen=True)
class TrainSettings:
    learning_rate: float
    batch_size: int
    epochs: int
    steps_per_execution: int


def train_settings(params: dict[str, Any]) -> TrainSettings:
    train = _section(params, "train")
    rate = train.get("learning_rate")
    if not isinstance(rate, int | float) or isinstance(rate, bool) or not rate > 0:
        raise StudyError(f"train.learning_rate must be a positive number, got {rate!r}")
    return TrainSettings(
        learning_rate=float(rate),
        batch_size=positive_int("train.batch_size", train.get("batch_size")),
        epochs=positive_int("train.epochs", train.get("epochs")),
        steps_per_execution=positive_int("train.steps_per_execution", train.get("steps_per_execution", 1)),
    )


def data_limits(params: dict[str, Any]) -> tuple[int | None, int | None]:
    """``data.train_limit`` and ``data.test_limit``: None for the whole split."""
    data = _section(params, "data")
    limits = []
    for key in ("train_limit", "test_limit"):
        value = data.get(key)
        limits.append(None if value is None else positive_int(f"data.{key}", value))
    return limits[0], limits[1]


def study_variants(params: dict[str, Any]) -> list[str]:
    variants = _section(params, "study").get("variants")
    if not isinstance(variants, list) or not variants:
        raise StudyError(f"study.variants must be a non-empty list of variant names, got {variants!r}")
    if len(set(map(str, variants))) != len(variants):
        raise StudyError(f"study.variants lists a variant twice: {variants!r}")
    return [str(v) for v in variants]


def study_seeds(params: dict[str, Any]) -> list[int]:
    seeds = _section(params, "study").get("seeds")
    if not isinstance(seeds, list) or not seeds:
        raise StudyError(f"study.seeds must be a non-empty list of whole numbers, got {seeds!r}")
    for seed in seeds:
        if not _is_int(seed) or seed < 0:
            raise StudyError(f"study.seeds: {seed!r} is not a whole number >= 0")
    if len(set(seeds)) != len(seeds):
        raise StudyError(f"study.seeds lists a seed twice: {seeds!r}")
    return list(seeds)


def extended_variants(params: dict[str, Any]) -> list[str]:
    """``study.extended``: the named set of variants for the frontier study
    (run with ``dvc exp run -S 'study.variants=[...]'``); every name must be
    defined under ``variants``."""
    extended = _section(params, "study").get("extended", [])
    defined = params.get("variants") or {}
    if not isinstance(extended, list):
        raise StudyError(f"study.extended must be a list of variant names, got {extended!r}")
    unknown = [str(name) for name in extended if name not in defined]
    if unknown:
        raise StudyError(
            f"study.extended names {', '.join(unknown)}, not defined under `variants` ({', '.join(sorted(defined))})"
        )
    return [str(name) for name in extended]


def check_study(params: dict[str, Any]):
    """Check everything a training run depends on, for every run of the
    study; return the checked variants by name."""
    from stages.networks import variant_from_params

    names = study_variants(params)
    study_seeds(params)
    extended_variants(params)
    train_settings(params)
    data_limits(params)
    return {name: variant_from_params(name, params.get("variants")) for name in names}


def run_variant(params: dict[str, Any], name: str):
    """Check the whole study (:func:`check_study`) and return the checked
    variant ``name``, which must be one of ``study.variants``."""
    variants = check_study(params)
    if name not in variants:
        raise StudyError(f"variant {name!r} is not in study.variants ({', '.join(variants)})")
    return variants[name]

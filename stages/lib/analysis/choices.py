"""Checked views of the params only the table stages read: which variant
every gap is measured against (``aggregate.baseline``), which comparisons are
primary (``aggregate.primary``, ``aggregate.same_flash``) and the report's
budgets (``report.memory_budgets_kib``).

They live here rather than in :mod:`stages.lib.params` because every training
run depends on that module: a change to how a table is chosen must not
retrain anything."""

from __future__ import annotations

from typing import Any

from stages.lib.common import StudyError
from stages.lib.params import is_number, section, study_variants


def baseline(params: dict[str, Any]) -> str:
    """``aggregate.baseline``: the variant every gap is measured against; it
    must be one of ``study.variants``, or every comparison would be empty."""
    name = section(params, "aggregate").get("baseline")
    variants = study_variants(params)
    if name not in variants:
        raise StudyError(f"aggregate.baseline must name a variant of study.variants ({', '.join(variants)}), "
                         f"got {name!r}")
    return name


def _named(params: dict[str, Any], key: str, default: list[str] | None = None) -> list[str]:
    """``aggregate.<key>``: distinct names of defined variants (a width of
    one included when ``params`` comes with its widths)."""
    names = section(params, "aggregate").get(key, default)
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names) or len(set(names)) != len(names):
        raise StudyError(f"aggregate.{key} must be a list of distinct variant names, got {names!r}")
    defined = section(params, "variants") if "variants" in params else None
    unknown = [name for name in names if defined is not None and name not in defined]
    if unknown:
        raise StudyError(f"aggregate.{key} names {', '.join(unknown)}, not defined under variants")
    return names


def primary(params: dict[str, Any]) -> list[str]:
    """``aggregate.primary``: the variants whose gap to the baseline is a
    primary comparison (tested alone at 5%, per dataset; every other
    comparison is exploratory). One the study does not run, or the baseline
    itself, is simply not compared."""
    return _named(params, "primary")


def same_flash(params: dict[str, Any]) -> list[str]:
    """``aggregate.same_flash``: the networks (a 1-bit one, typically) each
    set against the most accurate float or int8 network of the study, of the
    same recipe, whose deployed file is no larger; a primary comparison per
    dataset. One the study does not run is not compared. Absent (older
    snapshots): none."""
    return _named(params, "same_flash", [])


def memory_budgets(params: dict[str, Any]) -> list[float | None]:
    """``report.memory_budgets_kib``: KiB figures, null for no limit."""
    budgets = section(params, "report").get("memory_budgets_kib")
    if not isinstance(budgets, list) or not budgets or not all(
        b is None or (is_number(b) and b > 0) for b in budgets
    ):
        raise StudyError(f"report.memory_budgets_kib must be a non-empty list of positive KiB figures or null, "
                         f"got {budgets!r}")
    return budgets

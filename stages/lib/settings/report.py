"""The ``report`` section, checked: the memory budgets the report names the
best deployed network within (``report.memory_budgets_kib``)."""

from __future__ import annotations

from typing import Any

from stages.lib.common import StudyError
from stages.lib.params import is_number, section

SECTION = "report"
KEYS = ("memory_budgets_kib",)


def memory_budgets(params: dict[str, Any]) -> list[float | None]:
    """``report.memory_budgets_kib``: KiB figures, null for no limit."""
    budgets = section(params, SECTION, KEYS).get("memory_budgets_kib")
    if not isinstance(budgets, list) or not budgets or not all(
        b is None or (is_number(b) and b > 0) for b in budgets
    ):
        raise StudyError(f"report.memory_budgets_kib must be a non-empty list of positive KiB figures or null, "
                         f"got {budgets!r}")
    return budgets


check = memory_budgets


def slices(params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """None of its own: the report's slice holds the section
    (:mod:`stages.lib.fanin_slices`)."""
    return {}

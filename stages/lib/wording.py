"""How the study writes numbers: percentages, percentage points, intervals
with their n, p-values, ratios, a dataset's title. Below every table and
sentence that prints one; the words a verdict earns (a cost, a gain,
equivalent, undecided) are :mod:`stages.lib.analysis.verdicts`'s."""

from __future__ import annotations

import pandas as pd

from stages.lib.data.datasets import DATASETS


def pct(fraction: float, digits: int = 2) -> str:
    return "n/a" if pd.isna(fraction) else f"{100 * fraction:.{digits}f}%"


def whole_pct(fraction: float) -> str:
    return pct(fraction, 0)


def points(fraction: float, digits: int = 2) -> str:
    """A difference of two accuracies, in percentage points with its sign."""
    return "n/a" if pd.isna(fraction) else f"{100 * fraction:+.{digits}f} pp"


def interval(low: float, high: float, fmt=pct, n: int | None = None, unit: str = "seeds",
             label: str = "95% CI") -> str:
    """``<label> <low> to <high>, n = <n> <unit>``; says so when there is
    no interval (one seed) and when it cannot be bounded."""
    if pd.isna(low) or pd.isna(high):
        return "no interval with a single seed" if n in (None, 1) else "an interval these seeds cannot bound"
    return f"{label} {fmt(low)} to {fmt(high)}" + ("" if n is None else f", n = {n} {unit}")


def p_text(p: float) -> str:
    """A p-value as printed: two significant digits, ``< 0.001`` below."""
    return "< 0.001" if p < 0.001 else f"= {p:.2g}"


def p_cell(p: float) -> str:
    """A p-value in a table cell: empty where no test applies."""
    return "" if pd.isna(p) else p_text(p).removeprefix("= ")


def ci_cells(lows: pd.Series, highs: pd.Series, fmt=points) -> list[str]:
    """Interval bounds as table cells, ``<low> to <high>``."""
    return [interval(low, high, fmt).removeprefix("95% CI ") for low, high in zip(lows, highs, strict=True)]


def holm_clause(p_holm: float, family: int, what: str) -> str:
    """``Holm-adjusted p = 0.012 over the 3 <what>`` (tests printed without
    an interval: the sign test over images, speed verdicts)."""
    if pd.isna(p_holm):
        return ""
    return f"Holm-adjusted p {p_text(p_holm)} over the {family} {what}" if family > 1 else f"p {p_text(p_holm)}"


def title(dataset: str) -> str:
    return DATASETS[dataset].title if dataset in DATASETS else dataset


def span(low: float, high: float, fmt) -> str:
    """``low to high`` in ``fmt``, or "no interval"."""
    return "no interval" if pd.isna(low) or pd.isna(high) else f"{fmt(low)} to {fmt(high)}"


def cell(value: float, low: float, high: float, fmt) -> str:
    """``value (low to high)`` in ``fmt``, saying "no interval" where there
    is none: a table cell or a clause that always shows its interval."""
    return f"{fmt(value)} ({span(low, high, fmt)})"


def times(value: float) -> str:
    """A ratio as printed: ``1.02x``."""
    return "n/a" if pd.isna(value) else f"{value:.2f}x"


def with_interval(value: float, low: float, high: float, fmt) -> str:
    """``value (low to high)`` in ``fmt``; the value alone where there is no
    interval, "n/a" where there is no value."""
    if pd.isna(value):
        return "n/a"
    return fmt(value) + ("" if pd.isna(low) else f" ({fmt(low)} to {fmt(high)})")

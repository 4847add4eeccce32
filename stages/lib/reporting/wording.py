"""How the report writes numbers and verdicts: percentages, percentage
points, intervals with their n, p-values, and the words a gap may earn
(a cost or a gain only when its printed interval and its Holm-adjusted test
agree)."""

from __future__ import annotations

import pandas as pd

from stages.lib.data.datasets import DATASETS
from stages.lib.analysis.stats import ALPHA, direction


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


def gap_direction(low: float, high: float) -> int:
    """The sign of a gap's interval as :func:`points` prints it (see
    :func:`stages.lib.analysis.stats.direction`)."""
    return direction(100 * low, 100 * high, "{:+.2f}")


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
    """``Holm-adjusted p = 0.012 over the 3 <what>``."""
    if pd.isna(p_holm):
        return ""
    return f"Holm-adjusted p {p_text(p_holm)} over the {family} {what}" if family > 1 else f"p {p_text(p_holm)}"


def gap_verdict(gap: float, low: float, high: float, p_holm: float, family: int, seeds: int,
                needed: float = float("nan")) -> str:
    """What a seed-paired gap says, in words that follow its sign, its
    printed bounds and its Holm-adjusted p-value: a cost or a gain only when
    the printed interval lies wholly on one side of zero and the adjusted
    test agrees; otherwise that these seeds cannot tell it from zero, with
    how many seeds a gap this size would need, where that can be
    estimated."""
    if pd.isna(gap) or pd.isna(low):
        return ""
    side = gap_direction(low, high)
    adjusted = holm_clause(p_holm, family, "variants compared")
    if side and (pd.isna(p_holm) or p_holm < ALPHA):
        word = "a cost" if side < 0 else "a gain"
        where = "below" if side < 0 else "above"
        return f"{word}, its whole interval {where} zero" + (f" ({adjusted})" if family > 1 else "")
    if side:
        return (f"its interval excludes zero, but not once Holm-adjusted over the {family} variants compared "
                f"(p {p_text(p_holm)}): no verdict")
    sentence = f"with {seeds} seeds it cannot be told from zero"
    if not pd.isna(needed):
        sentence += f" (a true gap this size would need about {int(needed)} seeds at the measured spread, 80% power)"
    return sentence


def title(dataset: str) -> str:
    return DATASETS[dataset].title if dataset in DATASETS else dataset


def gap_word(low: float, high: float, p_holm: float) -> str:
    """A gap's verdict in a few words, on the rule of :func:`gap_verdict`."""
    if pd.isna(low):
        return "no interval"
    side = gap_direction(low, high)
    if side and (pd.isna(p_holm) or p_holm < ALPHA):
        return "a cost" if side < 0 else "a gain"
    return "no verdict once Holm-adjusted" if side else "not told from zero"


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

"""How the report writes numbers and verdicts: percentages, percentage
points, intervals with their n, p-values, and the words a gap may earn
(a cost or a gain only as :mod:`stages.lib.analysis.verdicts` judges it)."""

from __future__ import annotations

import math

import pandas as pd

from stages.lib.data.datasets import DATASETS
from stages.lib.analysis.stats import direction
from stages.lib.analysis.verdicts import (
    EQUIVALENT, HIGHER, LOWER, NO_SPREAD, NONE, family_clause, interval_label, detectable_clause,
)


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
    """``Holm-adjusted p = 0.012 over the 3 <what>`` (tests printed without
    an interval: the sign test over images, speed verdicts)."""
    if pd.isna(p_holm):
        return ""
    return f"Holm-adjusted p {p_text(p_holm)} over the {family} {what}" if family > 1 else f"p {p_text(p_holm)}"


def adjusted_cell(row, prefix: str, fmt=points) -> str:
    """``value (low to high)`` with the interval its verdict is read from
    (simultaneous within an exploratory family; see
    :mod:`stages.lib.analysis.verdicts`), or the value and "the same on every
    seed" where the seeds show no spread."""
    value = row[VALUE_COLUMN.get(prefix, prefix)]
    if row[f"{prefix}_verdict"] == NO_SPREAD:
        return f"{fmt(value)} (the same on every seed)"
    return cell(value, row[f"{prefix}_adj_low"], row[f"{prefix}_adj_high"], fmt)


# the estimate's column where it is not named like its prefix
VALUE_COLUMN = {"accuracy_gap": "accuracy_gap_vs_baseline", "gap": "gap_vs_baseline"}


def gap_verdict(row, prefix: str, members: str) -> str:
    """What a comparison says, in words that follow its verdict
    (:mod:`stages.lib.analysis.verdicts`): a cost or a gain with how it was
    tested, or that these seeds cannot tell it from zero and what more seeds
    would do."""
    verdict = row[f"{prefix}_verdict"]
    how = family_clause(row, prefix, members)
    if verdict in (LOWER, HIGHER):
        word, where = ("a cost", "below") if verdict == LOWER else ("a gain", "above")
        return f"{word}, its whole {interval_label(row, prefix)} {where} zero ({how})"
    if verdict == NO_SPREAD:
        return (f"the same number of images on every seed: no spread for a t-test, and the exact sign-flip test "
                f"over {int(row['seeds'])} seeds gives p {p_text(row[f'{prefix}_p_adjusted'])} ({how})"
                + (f"; {needed}" if (needed := detectable_clause(row, prefix)) else ""))
    if verdict == EQUIVALENT:
        return (f"equivalent within the {row[f'{prefix}_margin']:g} pp margin (two one-sided tests, adjusted p "
                f"{p_text(row[f'{prefix}_tost_p_adjusted'])}; {how})")
    if verdict == NONE:
        undecided = ("undecided: neither a difference nor equivalence within the "
                     f"{row[f'{prefix}_margin']:g} pp margin is shown with {int(row['seeds'])} seeds"
                     if not pd.isna(row.get(f"{prefix}_margin", math.nan))
                     else f"with {int(row['seeds'])} seeds it cannot be told from zero")
        return (f"{undecided} ({how})" + (f"; {needed}" if (needed := detectable_clause(row, prefix)) else ""))
    return ""


def title(dataset: str) -> str:
    return DATASETS[dataset].title if dataset in DATASETS else dataset


def gap_word(row, prefix: str) -> str:
    """A comparison's verdict in a few words, on the rule of
    :func:`gap_verdict`."""
    if row[f"{prefix}_verdict"] == NONE and not pd.isna(row.get(f"{prefix}_margin", math.nan)):
        return "undecided"
    return {LOWER: "a cost", HIGHER: "a gain", NO_SPREAD: "no spread across seeds", NONE: "not told from zero",
            EQUIVALENT: f"equivalent within {row.get(f'{prefix}_margin', math.nan):g} pp"}.get(
        row[f"{prefix}_verdict"], "no interval")


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

"""Which comparisons are primary, how each family is adjusted, and the
verdict every comparison of the tables earns: one place for the rules, run on
the tables by ``aggregate`` before it writes them and by ``report`` on the
tables it reads (so that a snapshot's committed tables are judged by the
rules of the code that reads them).

- **Primary comparisons** are named in params (``aggregate.primary``: the
  variants whose gap to the baseline the study exists to measure;
  ``aggregate.same_flash``: the networks set against the most accurate
  float or int8 network within their flash). Each is tested alone at the 5%
  level, per dataset: adding variants to a study never changes the level
  it is tested at.
- **Exploratory comparisons** (every other gap, corruption, class, recipe,
  change of gap between datasets, mean corruption error) are adjusted within
  their family (a dataset's variants; a variant's corruptions or classes)
  by Bonferroni, and printed with the matching simultaneous interval (at
  1 - 0.05/m): the interval beside a verdict is the one the verdict is
  read from, and the two always agree.
- **No spread, no t-test.** A seed-paired difference that is the same whole
  number of images on every seed has no spread for a t-test to use: it gets
  the exact sign-flip test over seeds instead (p = 2 / 2^n at best, so 3
  seeds can never give a verdict that way), and no interval.
- **What it would take.** Every comparison without a verdict carries the
  seeds it would need for 80% power at its family's level (statsmodels'
  ``TTestPower`` / ``TTestIndPower``), at the spread measured.

Everything is computed from what the tables hold (estimate, 95% interval,
n, raw p): the spread is recovered from the Student-t interval, so old and
new tables are judged alike.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from stages.lib.analysis.stats import ALPHA, CONFIDENCE, POWER, direction, sign_flip_p

PRIMARY = "primary"
EXPLORATORY = "exploratory"
# the verdict column's values
LOWER, HIGHER, NONE, NO_SPREAD, NO_INTERVAL, NOT_TESTED = (
    "lower", "higher", "no verdict", "no spread", "no interval", "not tested")
# what judge() adds to a table, each after the comparison's prefix
COLUMNS = ("family", "family_size", "level", "p_adjusted", "adj_low", "adj_high", "verdict", "seeds_needed")
# below this many images of standard deviation, per-seed differences are the same count of images on every seed
SPREAD_IMAGES = 0.05


@dataclass(frozen=True)
class Comparison:
    """Where a table holds one kind of comparison: its estimate, 95% interval,
    n and raw p-value columns, the columns that make a family, what a member
    of the family is called, and the design the interval came from
    (``paired``: Student t on seed-paired differences; ``welch``: two
    independent samples; ``log``: a ratio whose interval is Student t on the
    log scale)."""
    prefix: str
    value: str
    low: str
    high: str
    n: str
    p: str
    family: tuple[str, ...]
    members: str
    design: str = "paired"
    limit: float = 1.0   # the possible range of the estimate: [-limit, +limit]


GAP = Comparison("accuracy_gap", "accuracy_gap_vs_baseline", "accuracy_gap_ci95_low", "accuracy_gap_ci95_high",
                 "seeds", "accuracy_gap_p_value", ("dataset",), "variants")
GAP_CHANGE = Comparison("gap_change", "gap_change", "gap_change_ci95_low", "gap_change_ci95_high", "seeds",
                        "gap_change_p_value", ("dataset",), "variants", design="welch", limit=2.0)
ROBUSTNESS_GAP = Comparison("robustness_gap", "robustness_gap", "robustness_gap_ci95_low",
                            "robustness_gap_ci95_high", "seeds", "robustness_gap_p_value", ("dataset", "variant"),
                            "corruptions", limit=2.0)
CLASS_GAP = Comparison("gap", "gap_vs_baseline", "gap_ci95_low", "gap_ci95_high", "seeds", "gap_p_value",
                       ("dataset", "variant"), "classes")
RECIPE_EFFECT = Comparison("effect", "effect", "effect_ci95_low", "effect_ci95_high", "seeds", "effect_p_value",
                           ("dataset",), "recipe variants")
# the most accurate float or int8 network within a 1-bit network's flash, against it (separate runs)
SAME_FLASH = Comparison("same_flash", "difference", "difference_ci95_low", "difference_ci95_high", "seeds",
                        "difference_p_value", ("dataset",), "networks", design="welch")
MCE = Comparison("mce", "mce", "mce_ci95_low", "mce_ci95_high", "seeds", "mce_p_value", ("dataset",), "variants",
                 design="log")


def _t(n_minus_one: float, alpha: float) -> float:
    from scipy import stats

    return float(stats.t.ppf(1 - alpha / 2, n_minus_one))


def _df(design: str, n: int) -> int:
    # Welch's degrees of freedom lie between n - 1 and 2n - 2 for two samples of n; the tables keep the
    # interval, not the variances, so the spread is recovered at 2n - 2
    return 2 * n - 2 if design == "welch" else n - 1


def spread(row: dict, comparison: Comparison) -> float:
    """The standard deviation behind a row's 95% interval: of the per-seed
    differences (paired), of each sample (Welch, equal sizes assumed) or of
    the per-seed log ratios (log). NaN without an interval."""
    n, low, high = row[comparison.n], row[comparison.low], row[comparison.high]
    if pd.isna(low) or pd.isna(high) or pd.isna(n) or n < 2:
        return math.nan
    if comparison.design == "log":
        if low <= 0 or high <= 0:
            return math.nan
        low, high = math.log(low), math.log(high)
    standard_error = (high - low) / 2 / _t(_df(comparison.design, int(n)), ALPHA)
    return standard_error * math.sqrt(n / 2 if comparison.design == "welch" else n)


def seeds_for(effect: float, level: float, design: str, power: float = POWER) -> float:
    """The fewest seeds with which a comparison of standardized ``effect``
    (|mean| / spread) reaches ``power`` at ``level``, two-sided: statsmodels'
    ``TTestPower`` (paired, log) or ``TTestIndPower`` (seeds per group,
    Welch). The power of the side the effect lies on is asked at level / 2
    (the other side adds less than 1e-9 at any effect worth a count, and
    scipy's non-central t returns NaN for it at large effects, which
    statsmodels' two-sided power and ``solve_power`` then return too); the
    count is searched, not solved, power growing with the seeds. An infinite
    effect (no spread) needs the exact sign-flip test's seeds, 1 + log2(1 /
    level) rounded up. NaN when there is no effect to detect or it would take
    more than 100,000."""
    from statsmodels.stats.power import TTestIndPower, TTestPower

    if not effect > 0:
        return math.nan
    if math.isinf(effect):
        return float(math.ceil(1 + math.log2(1 / level) + 1e-12))
    solver = TTestIndPower() if design == "welch" else TTestPower()

    def enough(seeds: int) -> bool:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reached = float(np.asarray(solver.power(effect, seeds, level / 2, alternative="larger")).item())
        return reached >= power

    low, high = 1, 2   # enough(high) is sought, enough(low) is not (one seed has no spread to test)
    while not enough(high):
        low, high = high, 2 * high
        if high > 100_000:
            return math.nan
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if enough(middle) else (middle, high)
    return float(high)


def judge(frame: pd.DataFrame, comparison: Comparison, images: pd.Series | float | None = None,
          primary: pd.Series | None = None) -> pd.DataFrame:
    """``frame`` with its verdict columns (``<prefix>_family``, ``_family_size``,
    ``_level``, ``_p_adjusted``, ``_adj_low``, ``_adj_high``, ``_verdict``,
    ``_seeds_needed``) computed anew (written over any older ones).
    ``images``: per row, the images each seed's figure counts (the
    resolution that tells a real spread from none; None for ratios);
    ``primary``: per row, whether it is a primary comparison (tested alone)."""
    p = comparison.prefix
    frame = frame.copy()
    if frame.empty:
        for column in COLUMNS:
            frame[f"{p}_{column}"] = pd.Series(dtype=object if column in ("family", "verdict") else float)
        return frame
    primary = pd.Series(False, index=frame.index) if primary is None else primary.reindex(frame.index).fillna(False)
    resolution = (pd.Series(images, index=frame.index) if images is not None and not isinstance(images, pd.Series)
                  else images)
    tested = frame[comparison.p].notna() if comparison.p in frame.columns else pd.Series(False, index=frame.index)
    family_of = frame[list(comparison.family)].astype(str).agg("\x1f".join, axis=1) if comparison.family else \
        pd.Series("", index=frame.index)
    sizes = family_of[tested & ~primary].value_counts()
    rows = []
    for index, row in frame.iterrows():
        size = 1 if primary[index] else int(sizes.get(family_of[index], 0))
        level = ALPHA / max(size, 1)
        judged = {"family": PRIMARY if primary[index] else EXPLORATORY, "family_size": size, "level": level,
                  "p_adjusted": math.nan, "adj_low": math.nan, "adj_high": math.nan, "seeds_needed": math.nan}
        if not tested[index]:
            judged["verdict"] = (NOT_TESTED if not pd.isna(row[comparison.value]) and row[comparison.n] >= 2
                                 else NO_INTERVAL)
        else:
            images_per_seed = None if resolution is None or pd.isna(resolution[index]) else float(resolution[index])
            judged.update(_verdict(row.to_dict(), comparison, size, level, images_per_seed))
        rows.append(judged)
    out = pd.DataFrame(rows, index=frame.index)
    for name in COLUMNS:
        frame[f"{p}_{name}"] = out[name]
    return frame


def _verdict(row: dict, comparison: Comparison, size: int, level: float, images: float | None) -> dict:
    """One tested comparison's adjusted p, the interval its verdict is read
    from, the verdict, and the seeds it would need (see :func:`judge`)."""
    n, value, raw_p = int(row[comparison.n]), float(row[comparison.value]), float(row[comparison.p])
    sd = spread(row, comparison)
    if n >= 2 and not math.isnan(sd) and (
            sd == 0 or (images is not None and comparison.design != "log" and sd * images < SPREAD_IMAGES)):
        return {"p_adjusted": min(1.0, sign_flip_p(value, n) * size), "verdict": NO_SPREAD if value != 0 else NONE,
                "seeds_needed": seeds_for(math.inf, level, comparison.design) if value != 0 else math.nan}
    adjusted_p = min(1.0, raw_p * size)
    if math.isnan(sd):
        return {"p_adjusted": adjusted_p, "verdict": NO_INTERVAL}
    half = sd / math.sqrt(n / 2 if comparison.design == "welch" else n) * _t(_df(comparison.design, n), level)
    if comparison.design == "log":
        centre = math.log(value)
        low, high, effect = math.exp(centre - half), math.exp(centre + half), abs(centre) / sd
        side = direction(low, high, "{:.2f}", 1.0)
    else:
        low, high = max(value - half, -comparison.limit), min(value + half, comparison.limit)
        effect = abs(value) / sd
        side = direction(100 * low, 100 * high, "{:+.2f}")
    verdict = (HIGHER if side > 0 else LOWER) if side and adjusted_p < ALPHA else NONE
    return {"p_adjusted": adjusted_p, "adj_low": low, "adj_high": high, "verdict": verdict,
            "seeds_needed": seeds_for(effect, level, comparison.design) if verdict == NONE else math.nan}


def side(row: dict | pd.Series, prefix: str) -> int:
    """+1 where the comparison's verdict is higher (a gain, more errors),
    -1 lower, 0 without a verdict."""
    return {HIGHER: 1, LOWER: -1}.get(row[f"{prefix}_verdict"], 0)


def family_clause(row: dict | pd.Series, prefix: str, members: str) -> str:
    """How a verdict was tested, in words: ``primary comparison, at its own
    5% level`` or ``adjusted over the 12 variants (Bonferroni)``."""
    if row[f"{prefix}_family"] == PRIMARY:
        return "a primary comparison, tested alone at 5%"
    size = int(row[f"{prefix}_family_size"])
    return "exploratory, one test" if size <= 1 else f"exploratory, Bonferroni over the {size} {members}"


def interval_label(row: dict | pd.Series, prefix: str) -> str:
    """What the printed interval is: ``95% CI`` for a primary or a lone
    comparison, ``simultaneous 99.6% CI`` for a member of a family."""
    size = int(row[f"{prefix}_family_size"]) if not pd.isna(row[f"{prefix}_family_size"]) else 1
    if size <= 1:
        return f"{100 * CONFIDENCE:.0f}% CI"
    return f"simultaneous {100 * (1 - ALPHA / size):.4g}% CI"


def needed_clause(row: dict | pd.Series, prefix: str) -> str:
    """``about 7 seeds would give 80% power at this level, at the measured
    spread`` for a row without a verdict; empty otherwise."""
    needed = row.get(f"{prefix}_seeds_needed", math.nan)
    if pd.isna(needed):
        return ""
    if row[f"{prefix}_verdict"] == NO_SPREAD:
        return f"an exact test over seeds would need {int(needed)} seeds at this level"
    return f"about {int(needed)} seeds would give {100 * POWER:.0f}% power at this level, at the measured spread"

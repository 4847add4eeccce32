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

from stages.lib.analysis.stats import (
    ALPHA, CONFIDENCE, POWER, detectable_difference, direction, equivalence_p, seeds_for_margin, sign_flip_p,
)
from stages.lib.wording import cell, p_text, points

PRIMARY = "primary"
EXPLORATORY = "exploratory"
# the verdict column's values
LOWER, HIGHER, NONE, NO_SPREAD, NO_INTERVAL, NOT_TESTED, EQUIVALENT = (
    "lower", "higher", "no verdict", "no spread", "no interval", "not tested", "equivalent")
# what judge() adds to a table, each after the comparison's prefix
COLUMNS = ("family", "family_size", "level", "p_adjusted", "adj_low", "adj_high", "verdict", "detectable",
           "margin", "tost_p_adjusted", "seeds_for_margin")
# below this many images of standard deviation, per-seed differences are the same count of images on every seed
SPREAD_IMAGES = 0.05


@dataclass(frozen=True)
class Comparison:
    """Where a table holds one kind of comparison: its estimate, 95% interval,
    n and raw p-value columns, the columns that make a family, what a member
    of the family is called, and the design the interval came from
    (``paired``: Student t on seed-paired differences; ``welch``: two
    independent samples; ``log``: a ratio whose interval is Student t on the
    log scale), with the column of its degrees of freedom (Welch's df;
    tables written before it was kept are read at 2n - 2)."""
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
    df: str | None = None


GAP = Comparison("accuracy_gap", "accuracy_gap_vs_baseline", "accuracy_gap_ci95_low", "accuracy_gap_ci95_high",
                 "seeds", "accuracy_gap_p_value", ("dataset",), "variants")
GAP_CHANGE = Comparison("gap_change", "gap_change", "gap_change_ci95_low", "gap_change_ci95_high", "seeds",
                        "gap_change_p_value", ("dataset",), "variants", design="welch", limit=2.0, df="gap_change_df")
ROBUSTNESS_GAP = Comparison("robustness_gap", "robustness_gap", "robustness_gap_ci95_low",
                            "robustness_gap_ci95_high", "seeds", "robustness_gap_p_value", ("dataset", "variant"),
                            "corruptions", limit=2.0)
CLASS_GAP = Comparison("gap", "gap_vs_baseline", "gap_ci95_low", "gap_ci95_high", "seeds", "gap_p_value",
                       ("dataset", "variant"), "classes")
RECIPE_EFFECT = Comparison("effect", "effect", "effect_ci95_low", "effect_ci95_high", "seeds", "effect_p_value",
                           ("dataset",), "recipe variants")
# a 1-bit network's equal-flash int8 twin against it (separate runs)
SAME_FLASH = Comparison("same_flash", "difference", "difference_ci95_low", "difference_ci95_high", "seeds",
                        "difference_p_value", ("dataset",), "networks", design="welch", df="difference_df")
MCE = Comparison("mce", "mce", "mce_ci95_low", "mce_ci95_high", "seeds", "mce_p_value", ("dataset",), "variants",
                 design="log")


@dataclass(frozen=True)
class PrimaryTest:
    """How one primary comparison is judged within the family of every
    primary the study names (Holm): the family's size, the level its
    interval is read at (its Holm step's, see :func:`primary_family`), its
    adjusted p-values (difference, and equivalence within ``margin``)."""
    size: int
    level: float
    p_adjusted: float
    margin: float
    tost_p_adjusted: float


def _t(df: float, alpha: float) -> float:
    from scipy import stats

    return float(stats.t.ppf(1 - alpha / 2, df))


def degrees_of_freedom(row: dict, comparison: Comparison) -> float:
    """The degrees of freedom of a row's interval: n - 1 for seed-paired
    differences and logs; Welch's, as the table keeps it, for two separate
    samples (2n - 2 for tables written before it was kept)."""
    n = int(row[comparison.n])
    if comparison.design != "welch":
        return float(n - 1)
    kept = row.get(comparison.df, math.nan) if comparison.df else math.nan
    return float(kept) if not pd.isna(kept) else float(2 * n - 2)


def standard_error(row: dict, comparison: Comparison) -> float:
    """The standard error behind a row's 95% interval (on the log scale for
    a ratio); NaN without an interval."""
    n, low, high = row[comparison.n], row[comparison.low], row[comparison.high]
    if pd.isna(low) or pd.isna(high) or pd.isna(n) or n < 2:
        return math.nan
    if comparison.design == "log":
        if low <= 0 or high <= 0:
            return math.nan
        low, high = math.log(low), math.log(high)
    return (high - low) / 2 / _t(degrees_of_freedom(row, comparison), ALPHA)


def spread(row: dict, comparison: Comparison) -> float:
    """The standard deviation behind a row's 95% interval: of the per-seed
    differences (paired), of each sample (Welch, equal sizes assumed) or of
    the per-seed log ratios (log). NaN without an interval."""
    n = row[comparison.n]
    error = standard_error(row, comparison)
    return error * math.sqrt(n / 2 if comparison.design == "welch" else n) if not math.isnan(error) else math.nan


def seeds_for(effect: float, level: float, design: str, power: float = POWER) -> float:
    """The fewest seeds with which a comparison of standardized ``effect``
    reaches ``power`` at ``level``, two-sided (statsmodels' ``TTestPower`` /
    ``TTestIndPower``, searched). Used only with an infinite effect (no
    spread): the exact sign-flip test's seeds, 1 + log2(1 / level) rounded
    up; never with an observed difference. NaN without an effect."""
    if not effect > 0:
        return math.nan
    if math.isinf(effect):
        return float(math.ceil(1 + math.log2(1 / level) + 1e-12))
    from statsmodels.stats.power import TTestIndPower, TTestPower

    solver = TTestIndPower() if design == "welch" else TTestPower()

    def enough(seeds: int) -> bool:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reached = float(np.asarray(solver.power(effect, seeds, level / 2, alternative="larger")).item())
        return reached >= power

    low, high = 1, 2
    while not enough(high):
        low, high = high, 2 * high
        if high > 100_000:
            return math.nan
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if enough(middle) else (middle, high)
    return float(high)


def _no_spread(sd: float, images: float | None, design: str) -> bool:
    """Per-seed figures that are the same count of images on every seed
    (below :data:`SPREAD_IMAGES` of an image of standard deviation)."""
    return sd == 0 or (images is not None and design != "log" and sd * images < SPREAD_IMAGES)


def raw_tests(row: dict, comparison: Comparison, margin: float, images: float | None = None) -> tuple[float, float]:
    """A primary row's raw p-values: the test of no difference (the
    sign-flip test's where the seeds have no spread, ``images`` per seed
    telling float noise from a spread) and the two one-sided tests of
    equivalence within ``margin`` (NaN without a spread)."""
    if pd.isna(row.get(comparison.p, math.nan)):
        return math.nan, math.nan
    error = standard_error(row, comparison)
    if int(row[comparison.n]) >= 2 and not math.isnan(error) and _no_spread(spread(row, comparison), images,
                                                                             comparison.design):
        return sign_flip_p(float(row[comparison.value]), int(row[comparison.n])), math.nan
    return (float(row[comparison.p]),
            equivalence_p(float(row[comparison.value]), error, degrees_of_freedom(row, comparison), margin))


def _holm_with_untested(p_values: list[float]) -> np.ndarray:
    """Holm's adjusted p-values (statsmodels), a comparison without a test
    counting in the family as p = 1 (it is named, so it costs power)."""
    from statsmodels.stats.multitest import multipletests

    filled = np.array([1.0 if math.isnan(p) else p for p in p_values])
    return multipletests(filled, alpha=ALPHA, method="holm")[1] if len(filled) else filled


def primary_family(tests: dict, margins: dict) -> dict:
    """The primaries as one family: ``tests`` maps a key to its raw
    (difference p, equivalence p) (:func:`raw_tests`), ``margins`` a key to
    its margin. Holm adjusts each kind over the family (statsmodels); the
    interval of a comparison Holm rejects is read at the level of its step,
    0.05 / (m - j + 1) for the j-th smallest p, and of one it keeps at 0.05 /
    m, so that a printed interval excludes zero exactly when the adjusted p
    is below 0.05. Each kind of claim (a difference, an equivalence) holds
    at 5% familywise; the two nulls of one comparison (zero, and a
    difference of at least the margin) cannot both be true."""
    keys = list(tests)
    size = len(keys)
    adjusted = _holm_with_untested([tests[key][0] for key in keys])
    equivalent = _holm_with_untested([tests[key][1] for key in keys])
    order = sorted(range(size), key=lambda i: (math.inf if math.isnan(tests[keys[i]][0]) else tests[keys[i]][0], i))
    step = {index: rank for rank, index in enumerate(order)}
    family = {}
    for i, key in enumerate(keys):
        rejected = adjusted[i] < ALPHA
        level = ALPHA / (size - step[i]) if rejected else ALPHA / size
        family[key] = PrimaryTest(size, level, float(adjusted[i]), margins[key],
                                  float(equivalent[i]) if not math.isnan(tests[key][1]) else math.nan)
    return family


def judge(frame: pd.DataFrame, comparison: Comparison, images: pd.Series | float | None = None,
          primary: pd.Series | None = None, family: dict | None = None) -> pd.DataFrame:
    """``frame`` with its verdict columns (``<prefix>_family``, ``_family_size``,
    ``_level``, ``_p_adjusted``, ``_adj_low``, ``_adj_high``, ``_verdict``,
    ``_detectable``, and for primaries ``_margin``, ``_tost_p_adjusted``,
    ``_seeds_for_margin``) computed anew (written over any older ones).
    ``images``: per row, the images each seed's figure counts (the
    resolution that tells a real spread from none; None for ratios);
    ``primary``: per row, whether it is a primary comparison, judged by its
    :class:`PrimaryTest` in ``family`` (keyed by row index; a primary row
    without one is judged alone at 5%)."""
    p = comparison.prefix
    frame = frame.copy()
    if frame.empty:
        for column in COLUMNS:
            frame[f"{p}_{column}"] = pd.Series(dtype=object if column in ("family", "verdict") else float)
        return frame
    primary = pd.Series(False, index=frame.index) if primary is None else primary.reindex(frame.index).fillna(False)
    family = family or {}
    resolution = (pd.Series(images, index=frame.index) if images is not None and not isinstance(images, pd.Series)
                  else images)
    tested = frame[comparison.p].notna() if comparison.p in frame.columns else pd.Series(False, index=frame.index)
    family_of = frame[list(comparison.family)].astype(str).agg("\x1f".join, axis=1) if comparison.family else \
        pd.Series("", index=frame.index)
    sizes = family_of[tested & ~primary].value_counts()
    rows = []
    for index, row in frame.iterrows():
        test = family.get(index) if primary[index] else None
        size = test.size if test else 1 if primary[index] else int(sizes.get(family_of[index], 0))
        level = test.level if test else ALPHA / max(size, 1)
        judged = {"family": PRIMARY if primary[index] else EXPLORATORY, "family_size": size, "level": level,
                  "p_adjusted": math.nan, "adj_low": math.nan, "adj_high": math.nan, "detectable": math.nan,
                  "margin": math.nan, "tost_p_adjusted": math.nan, "seeds_for_margin": math.nan}
        if not tested[index]:
            judged["verdict"] = (NOT_TESTED if not pd.isna(row[comparison.value]) and row[comparison.n] >= 2
                                 else NO_INTERVAL)
        else:
            images_per_seed = None if resolution is None or pd.isna(resolution[index]) else float(resolution[index])
            judged.update(_verdict(row.to_dict(), comparison, size, level, images_per_seed, test))
        rows.append(judged)
    out = pd.DataFrame(rows, index=frame.index)
    for name in COLUMNS:
        frame[f"{p}_{name}"] = out[name]
    return frame


def _verdict(row: dict, comparison: Comparison, size: int, level: float, images: float | None,
             test: PrimaryTest | None = None) -> dict:
    """One tested comparison's adjusted p, the interval its verdict is read
    from, the verdict, the smallest difference its seeds detect and, for a
    primary, its equivalence test and the seeds its margin needs (see
    :func:`judge`)."""
    n, value, raw_p = int(row[comparison.n]), float(row[comparison.value]), float(row[comparison.p])
    sd = spread(row, comparison)
    primary = {} if test is None else {"margin": test.margin, "tost_p_adjusted": test.tost_p_adjusted}
    if n >= 2 and not math.isnan(sd) and _no_spread(sd, images, comparison.design):
        adjusted = test.p_adjusted if test else min(1.0, sign_flip_p(value, n) * size)
        return {**primary, "p_adjusted": adjusted, "verdict": NO_SPREAD if value != 0 else NONE}
    adjusted_p = test.p_adjusted if test else min(1.0, raw_p * size)
    if math.isnan(sd):
        return {**primary, "p_adjusted": adjusted_p, "verdict": NO_INTERVAL}
    df = degrees_of_freedom(row, comparison)
    half = standard_error(row, comparison) * _t(df, level)
    if comparison.design == "log":
        centre = math.log(value)
        low, high = math.exp(centre - half), math.exp(centre + half)
        side = direction(low, high, "{:.2f}", 1.0)
    else:
        low, high = max(value - half, -comparison.limit), min(value + half, comparison.limit)
        side = direction(100 * low, 100 * high, "{:+.2f}")
    verdict = (HIGHER if side > 0 else LOWER) if side and adjusted_p < ALPHA else NONE
    if verdict == NONE and test and test.tost_p_adjusted < ALPHA:
        verdict = EQUIVALENT
    detectable = detectable_difference(sd, n, level, comparison.design)
    if test:
        primary["seeds_for_margin"] = seeds_for_margin(sd, test.margin / 100, ALPHA / test.size, comparison.design)
    return {**primary, "p_adjusted": adjusted_p, "adj_low": low, "adj_high": high, "verdict": verdict,
            "detectable": math.exp(detectable) if comparison.design == "log" and not math.isnan(detectable)
            else detectable}


def side(row: dict | pd.Series, prefix: str) -> int:
    """+1 where the comparison's verdict is higher (a gain, more errors),
    -1 lower, 0 without a verdict."""
    return {HIGHER: 1, LOWER: -1}.get(row[f"{prefix}_verdict"], 0)


def family_clause(row: dict | pd.Series, prefix: str, members: str) -> str:
    """How a verdict was tested, in words: ``primary, Holm over the 2
    primaries`` or ``exploratory, Bonferroni over the 12 variants``."""
    size = int(row[f"{prefix}_family_size"])
    if row[f"{prefix}_family"] == PRIMARY:
        return "primary, tested alone at 5%" if size <= 1 else f"primary, Holm over the study's {size} primaries"
    return "exploratory, one test" if size <= 1 else f"exploratory, Bonferroni over the {size} {members}"


def interval_label(row: dict | pd.Series, prefix: str) -> str:
    """What the printed interval is: ``95% CI`` for a lone comparison,
    ``simultaneous 99.6% CI`` for a member of an exploratory family,
    ``Holm-step 97.5% CI`` for a primary (the level Holm's step-down
    tested it at)."""
    level = row.get(f"{prefix}_level", math.nan)
    size = int(row[f"{prefix}_family_size"]) if not pd.isna(row[f"{prefix}_family_size"]) else 1
    if pd.isna(level) or size <= 1:
        return f"{100 * CONFIDENCE:.0f}% CI"
    if row[f"{prefix}_family"] == PRIMARY:
        return f"Holm-step {100 * (1 - level):.4g}% CI"
    return f"simultaneous {100 * (1 - level):.4g}% CI"


def detectable_clause(row: dict | pd.Series, prefix: str, unit=None) -> str:
    """What the seeds run could detect, for a row without a verdict: ``these
    seeds detect a difference of 0.62 pp with 80% power at this level, at
    the measured spread`` (``unit`` prints the difference; a ratio for the
    log design); for a primary, the seeds its margin needs; for a row
    without spread, the seeds an exact test over seeds needs. Never a seed
    count computed from the observed difference. Empty where there is a
    verdict."""
    verdict = row[f"{prefix}_verdict"]
    if verdict in (HIGHER, LOWER):
        return ""
    if verdict == NO_SPREAD:
        return (f"an exact test over seeds would need {int(seeds_for(math.inf, float(row[f'{prefix}_level']), 'paired'))}"
                " seeds at this level")
    detectable = row.get(f"{prefix}_detectable", math.nan)
    parts = []
    if verdict != EQUIVALENT and not pd.isna(detectable):
        shown = unit(detectable) if unit else f"{detectable:.2f}x" if detectable > 0 and prefix == "mce" else \
            f"{100 * detectable:.2f} pp"
        parts.append(f"these seeds detect a difference of {shown.lstrip('+')} with {100 * POWER:.0f}% power at "
                     "this level, at the measured spread")
    needed = row.get(f"{prefix}_seeds_for_margin", math.nan)
    margin = row.get(f"{prefix}_margin", math.nan)
    if not pd.isna(needed) and not pd.isna(margin) and verdict != EQUIVALENT:
        parts.append(f"its {margin:g} pp margin needs {int(needed)} seeds a network (a difference of the margin told, "
                     f"or a tie shown, with {100 * POWER:.0f}% power at the measured spread)")
    return "; ".join(parts)


# The words a verdict earns, as the tables and the report print them.


def gap_direction(low: float, high: float) -> int:
    """The sign of a gap's interval as :func:`stages.lib.wording.points`
    prints it (see :func:`stages.lib.analysis.stats.direction`)."""
    return direction(100 * low, 100 * high, "{:+.2f}")


def adjusted_cell(row, prefix: str, fmt=points) -> str:
    """``value (low to high)`` with the interval its verdict is read from
    (simultaneous within an exploratory family), or the value and "the same on every
    seed" where the seeds show no spread."""
    value = row[VALUE_COLUMN.get(prefix, prefix)]
    if row[f"{prefix}_verdict"] == NO_SPREAD:
        return f"{fmt(value)} (the same on every seed)"
    return cell(value, row[f"{prefix}_adj_low"], row[f"{prefix}_adj_high"], fmt)


# the estimate's column where it is not named like its prefix
VALUE_COLUMN = {"accuracy_gap": "accuracy_gap_vs_baseline", "gap": "gap_vs_baseline"}


def gap_verdict(row, prefix: str, members: str) -> str:
    """What a comparison says, in words that follow its verdict: a cost or a gain with how it was
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


def gap_word(row, prefix: str) -> str:
    """A comparison's verdict in a few words, on the rule of
    :func:`gap_verdict`."""
    if row[f"{prefix}_verdict"] == NONE and not pd.isna(row.get(f"{prefix}_margin", math.nan)):
        return "undecided"
    return {LOWER: "a cost", HIGHER: "a gain", NO_SPREAD: "no spread across seeds", NONE: "not told from zero",
            EQUIVALENT: f"equivalent within {row.get(f'{prefix}_margin', math.nan):g} pp"}.get(
        row[f"{prefix}_verdict"], "no interval")

"""The intervals and tests the study's tables use, and the rules that turn
them into words. Every interval is two-sided at 95%.

- A mean over seeds: Student t (:func:`mean_interval`); a mean accuracy on
  the logit scale, so that it stays inside [0, 1] (:func:`accuracy_interval`).
- One network against another: the seed-paired difference, Student t
  (:func:`paired_difference`), cut at the possible [-1, +1]; a difference of
  two such gaps measured on different datasets, whose seeds are not paired:
  Welch's t (:func:`welch_difference`).
- The ratio of two networks' error rates, paired by seed, on the log scale
  (:func:`error_ratio`); never a ratio of two gaps (their difference says it).
- Two networks' answers on the same test images, all seeds at once: the
  exact sign test over images (:func:`image_sign_test`).
- Speeds: each benchmark process gives one figure; ratios and latencies are
  averaged on the log scale across processes, with the interval another as
  many processes of the same benchmark run would land in
  (:func:`rerun_interval`; separate runs of the stage move more).
- A family of tests printed without intervals (the sign test over images,
  speed verdicts): Holm's adjustment (:func:`holm`). Which comparisons are
  primary, and the adjusted intervals and verdicts of the others:
  :mod:`stages.lib.analysis.verdicts`.
- No spread across seeds: no t-test, the exact sign-flip test
  (:func:`sign_flip_p`).

scipy and statsmodels compute what they offer; the logit back-transform and
the rerun interval (a prediction interval, which neither offers) are the only
formulas written here.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
ALPHA = 1 - CONFIDENCE
CHANCE_P_VALUE = 0.01
POWER = 0.8  # the power a "seeds needed" estimate aims at (stages.lib.analysis.verdicts)


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its 95% interval, the p-value of the test
    that it is zero (NaN where no test applies) and how many values it
    rests on; ``low`` and ``high`` are NaN with fewer than two."""
    value: float
    low: float
    high: float
    n: int
    p_value: float = math.nan
    df: float = math.nan   # the t interval's degrees of freedom (Welch's for two samples)

    @property
    def bounded(self) -> bool:
        return not (math.isnan(self.low) or math.isnan(self.high))


NO_ESTIMATE = Estimate(math.nan, math.nan, math.nan, 0)


def _clean(values: Sequence[float]) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    return values[~np.isnan(values)]


def _t_test(values: np.ndarray):
    """scipy's one-sample t-test against zero, quiet about identical
    values (its interval is then the value itself)."""
    from scipy import stats

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return stats.ttest_1samp(values, 0.0)


def sign_flip_p(value: float, n: int) -> float:
    """The exact two-sided sign-flip test over ``n`` seeds whose differences
    are all equal to ``value``: each of the 2^n sign patterns is as likely
    under no difference, and only the two with every sign alike are as
    extreme, so p = 2 / 2^n (0.25 with 3 seeds: never a verdict)."""
    return 1.0 if value == 0 or n < 1 else min(1.0, 2.0 / 2 ** n)


def mean_interval(values: Sequence[float]) -> Estimate:
    """Mean of ``values`` and its Student-t interval
    (``scipy.stats.ttest_1samp(...).confidence_interval()``), with the
    p-value of the test that the mean is zero."""
    values = _clean(values)
    if len(values) == 0:
        return NO_ESTIMATE
    mean = float(values.mean())
    if len(values) < 2:
        return Estimate(mean, math.nan, math.nan, 1)
    if np.ptp(values) == 0:  # no spread: the interval is the value; no t-test, the exact sign-flip one
        return Estimate(mean, mean, mean, len(values), sign_flip_p(mean, len(values)), len(values) - 1)
    result = _t_test(values)
    ci = result.confidence_interval(CONFIDENCE)
    return Estimate(mean, float(ci.low), float(ci.high), len(values), float(result.pvalue), float(result.df))


def simultaneous_means(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per row of ``values`` (rows: the quantities of one family, columns:
    the seeds), the mean, its Student-t interval simultaneous over the rows
    (Bonferroni: each at level ``ALPHA`` / rows; ``scipy.stats.ttest_1samp``)
    and the Bonferroni-adjusted p of the test that it is zero. A row whose
    values are all equal has no spread for a t interval: no interval (NaN,
    as :func:`stages.lib.analysis.verdicts.judge` leaves such a row) and the
    exact sign-flip test (:func:`sign_flip_p`)."""
    from scipy import stats

    values = np.asarray(values, dtype=float)
    rows, n = values.shape
    mean = values.mean(axis=1) if n else np.full(rows, math.nan)
    low, high, p = np.full(rows, math.nan), np.full(rows, math.nan), np.ones(rows)
    spread = np.ptp(values, axis=1) > 0 if n else np.zeros(rows, dtype=bool)
    if spread.any():
        result = stats.ttest_1samp(values[spread], 0.0, axis=1)
        interval = result.confidence_interval(1 - ALPHA / rows)
        low[spread], high[spread], p[spread] = interval.low, interval.high, result.pvalue
    for row in np.flatnonzero(~spread):
        p[row] = sign_flip_p(float(mean[row]), n)
    return mean, low, high, np.minimum(1.0, p * rows)


def paired_difference(second: Sequence[float], first: Sequence[float], limit: float = 1.0) -> Estimate:
    """``second`` minus ``first``, paired position by position (by seed),
    pairs with a missing value dropped: the mean difference, its Student-t
    interval (``scipy.stats.ttest_rel`` gives the same) cut at the possible
    range [-limit, +limit] (two accuracies differ by at most 1), and the
    p-value of the test that it is zero."""
    second, first = np.asarray(second, dtype=float), np.asarray(first, dtype=float)
    if second.shape != first.shape:
        raise ValueError("paired_difference needs one value of each per pair")
    estimate = mean_interval(second - first)
    if not estimate.bounded:
        return estimate
    return Estimate(estimate.value, max(estimate.low, -limit), min(estimate.high, limit), estimate.n,
                    estimate.p_value, estimate.df)


def welch_difference(second: Sequence[float], first: Sequence[float], limit: float = 2.0) -> Estimate:
    """Mean of ``second`` minus mean of ``first``, two independent samples
    with their own variances: Welch's t interval and test
    (``scipy.stats.ttest_ind(equal_var=False)``), cut at the possible
    [-limit, +limit] (two gaps between accuracies differ by at most 2).
    ``n`` is the smaller sample's size; ``df`` Welch's degrees of freedom,
    which every later interval, p-value and power figure of the comparison
    uses."""
    from scipy import stats

    second, first = _clean(second), _clean(first)
    if len(second) == 0 or len(first) == 0:
        return NO_ESTIMATE
    value = float(second.mean() - first.mean())
    n = min(len(second), len(first))
    if n < 2:
        return Estimate(value, math.nan, math.nan, n)
    if np.ptp(second) == 0 and np.ptp(first) == 0:  # no spread: no t-test; every split of the values is as extreme
        return Estimate(value, value, value, n, 1.0 if value == 0 else math.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.ttest_ind(second, first, equal_var=False)
    ci = result.confidence_interval(CONFIDENCE)
    return Estimate(value, max(float(ci.low), -limit), min(float(ci.high), limit), n, float(result.pvalue),
                    float(result.df))


def equivalence_p(value: float, standard_error: float, df: float, margin: float) -> float:
    """Two one-sided tests (TOST) that a difference lies inside
    (-margin, +margin): the larger of the two one-sided Student-t p-values
    at ``df`` degrees of freedom, for an estimate ``value`` with
    ``standard_error``. Below the level, the difference is equivalent to
    zero within the margin. The same figure as statsmodels' ``ttost_paired``
    (paired seeds) and ``ttost_ind(usevar="unequal")`` (Welch), which
    tests/test_stats.py pins; NaN without a standard error."""
    from scipy import stats

    if not (standard_error > 0 and df > 0 and margin > 0):
        return math.nan
    above = float(stats.t.sf((value + margin) / standard_error, df))   # H0: difference <= -margin
    below = float(stats.t.cdf((value - margin) / standard_error, df))  # H0: difference >= +margin
    return max(above, below)


def _power_solver(design: str):
    from statsmodels.stats.power import TTestIndPower, TTestPower

    return TTestIndPower() if design == "welch" else TTestPower()


def detectable_difference(spread: float, seeds: int, level: float, design: str, power: float = POWER) -> float:
    """The smallest true difference that ``seeds`` seeds detect with
    ``power`` at ``level`` (two-sided), at the measured ``spread`` (the
    standard deviation of the per-seed differences, or of each network's
    accuracies for two separate samples): statsmodels' ``TTestPower`` /
    ``TTestIndPower`` solved for the effect, times the spread. No observed
    difference enters it. NaN with fewer than two seeds or no spread."""
    if not (seeds >= 2 and spread > 0):
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            sizes = {"nobs1": seeds, "ratio": 1.0} if design == "welch" else {"nobs": seeds}
            effect = float(np.asarray(_power_solver(design).solve_power(
                effect_size=None, alpha=level, power=power, alternative="two-sided", **sizes)).item())
        except (ValueError, RuntimeError):
            return math.nan
    return effect * spread if math.isfinite(effect) else math.nan


def seeds_for_margin(spread: float, margin: float, level: float, design: str, power: float = POWER) -> float:
    """The seeds a stated ``margin`` needs at the measured ``spread``, per
    network, at ``level`` (a primary family's most demanding Holm step,
    level / m): enough that a true difference of the margin is told with
    ``power`` (two-sided), and that a true difference of zero is shown
    equivalent within the margin with ``power`` (two one-sided tests, each
    then needing power (1 + power) / 2 at ``level``). The larger of the two,
    from statsmodels' ``TTestPower`` / ``TTestIndPower``; NaN without a
    spread, and above 100,000."""
    if not (spread > 0 and margin > 0):
        return math.nan
    effect = margin / spread
    solver = _power_solver(design)

    def needed(alpha: float, target: float, alternative: str) -> float:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                size = {"nobs1": None, "ratio": 1.0} if design == "welch" else {"nobs": None}
                return float(np.asarray(solver.solve_power(effect_size=effect, alpha=alpha, power=target,
                                                           alternative=alternative, **size)).item())
            except (ValueError, RuntimeError):
                return math.nan

    seeds = max(needed(level, power, "two-sided"), needed(level, (1 + power) / 2, "larger"))
    if not math.isfinite(seeds) or seeds > 100_000:
        return math.nan
    return float(max(2, math.ceil(seeds - 1e-9)))


@functools.lru_cache(maxsize=None)
def _t_quantile(n: int) -> float:
    """The two-sided 95% Student-t quantile for ``n`` values (n - 1
    degrees of freedom); kept per ``n`` (scipy's ``ppf`` takes about 4 ms
    a call, and the tables ask for a handful of ``n`` thousands of times)."""
    from scipy import stats

    return float(stats.t.ppf((1 + CONFIDENCE) / 2, n - 1))


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-p)


def _expit(x: float) -> float:
    return float(1 / (1 + math.exp(-x))) if x > -700 else 0.0


def _logits(accuracies: np.ndarray, images: int) -> np.ndarray:
    """Each accuracy as the logit of (correct + 1/2) / (images + 1): the
    half-image correction keeps 0% and 100% finite."""
    correct = np.round(accuracies * images)
    return _logit((correct + 0.5) / (images + 1))


def accuracy_interval(accuracies: Sequence[float], images: int) -> Estimate:
    """Mean of per-seed accuracies on ``images`` test images each, with a
    Student-t interval computed on the logit scale and mapped back, so that
    it cannot leave [0, 1]; widened, if ever needed, to hold the mean it is
    printed with."""
    values = _clean(accuracies)
    if len(values) == 0:
        return NO_ESTIMATE
    mean = float(values.mean())
    if len(values) < 2:
        return Estimate(mean, math.nan, math.nan, 1)
    logits = mean_interval(_logits(values, images))
    low, high = _expit(logits.low), _expit(logits.high)
    return Estimate(mean, min(low, mean), max(high, mean), len(values))


def prediction_interval(accuracies: Sequence[float], images: int) -> tuple[float, float]:
    """Where one more run's accuracy should fall: on the logit scale, mean
    +/- t * s * sqrt(1 + 1/n), mapped back to [0, 1]. The interval to hold a
    single published run against (the interval of the mean is narrower: it
    is about the mean, not about one run). NaN with fewer than two values."""
    values = _clean(accuracies)
    if len(values) < 2:
        return math.nan, math.nan
    logits = _logits(values, images)
    half = _t_quantile(len(values)) * float(logits.std(ddof=1)) * math.sqrt(1 + 1 / len(values))
    return _expit(float(logits.mean()) - half), _expit(float(logits.mean()) + half)


def rerun_interval(values: Sequence[float]) -> Estimate:
    """Geometric mean of positive ``values`` (one per benchmark process)
    and the 95% interval for what another as many processes would give
    under the same conditions: the prediction interval for the log mean of
    another as many processes, log mean +/- t(n-1) * s * sqrt(1/n + 1/n),
    mapped back. It is wider than the interval of the mean by sqrt(2): it
    covers this set's error and the next's. It holds process-to-process
    noise only; a later run of the benchmark on a shared host can move by
    more (the report says "within this benchmark run"). The p-value is the one-sample t-test
    that the log mean is zero (for a ratio: that it is 1)."""
    values = _clean(values)
    if len(values) == 0 or (values <= 0).any():
        return Estimate(math.nan, math.nan, math.nan, len(values))
    logs = np.log(values)
    center = float(logs.mean())
    if len(values) < 2:
        return Estimate(math.exp(center), math.nan, math.nan, 1)
    half = _t_quantile(len(logs)) * float(logs.std(ddof=1)) * math.sqrt(2 / len(logs))
    return Estimate(math.exp(center), math.exp(center - half), math.exp(center + half), len(values),
                    mean_interval(logs).p_value)


def error_ratio(second: Sequence[float], first: Sequence[float], images: int) -> Estimate:
    """How many times the errors of ``second`` are those of ``first``
    (test accuracies, paired position by position, by seed, on ``images``
    test images): the geometric mean over seeds of the ratio of their error
    rates, each rate as (wrong + 1/2) / (images + 1) so that no seed divides
    by zero, with the Student-t interval of the mean log ratio mapped back
    and the p-value of the test that the ratio is 1. The denominator, the
    baseline's error, is far from zero for any network worth comparing."""
    second, first = np.asarray(second, dtype=float), np.asarray(first, dtype=float)
    keep = ~(np.isnan(second) | np.isnan(first))

    def log_rate(accuracy: np.ndarray) -> np.ndarray:
        return np.log(((1 - accuracy) * images + 0.5) / (images + 1))

    logs = mean_interval(log_rate(second[keep]) - log_rate(first[keep]))
    if logs.n == 0:
        return NO_ESTIMATE
    back = (lambda v: math.exp(v) if not math.isnan(v) else math.nan)
    return Estimate(back(logs.value), back(logs.low), back(logs.high), logs.n, logs.p_value)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjustment of a family of p-values
    (``statsmodels.stats.multitest.multipletests``, method ``holm``); NaN
    entries (no test) stay NaN and do not count in the family."""
    from statsmodels.stats.multitest import multipletests

    p_values = np.asarray(p_values, dtype=float)
    adjusted = np.full(len(p_values), math.nan)
    tested = ~np.isnan(p_values)
    if tested.any():
        adjusted[tested] = multipletests(p_values[tested], alpha=ALPHA, method="holm")[1]
    return adjusted


def image_sign_test(variant_right: Sequence[int], baseline_right: Sequence[int]) -> tuple[int, int, float]:
    """Whether two networks answer the same test images differently, all
    seeds at once: per image, how many of the variant's seeds get it right
    minus how many of the baseline's; under the null hypothesis each image
    that is not a tie is as likely to lean either way, so the count of
    images leaning to the variant is Binomial(non-ties, 1/2)
    (``scipy.stats.binomtest``, two-sided, exact). With one seed this is
    McNemar's exact test. Returns (images leaning to the variant, images
    leaning to the baseline, p-value); the p-value is 1 with no such
    image."""
    from scipy import stats

    difference = np.asarray(variant_right, dtype=int) - np.asarray(baseline_right, dtype=int)
    ahead, behind = int((difference > 0).sum()), int((difference < 0).sum())
    if ahead + behind == 0:
        return ahead, behind, 1.0
    return ahead, behind, float(stats.binomtest(ahead, ahead + behind, 0.5).pvalue)


def at_chance(accuracy: float, chance_accuracy: float, images: int) -> bool:
    """Whether ``accuracy`` on ``images`` test images is not significantly
    above ``chance_accuracy`` (always answering the most frequent class):
    one-sided exact binomial test at p < CHANCE_P_VALUE."""
    from scipy import stats

    correct = round(accuracy * images)
    return bool(stats.binomtest(correct, images, chance_accuracy, alternative="greater").pvalue >= CHANCE_P_VALUE)


def direction(low: float, high: float, printed: str = "{:+.2f}", reference: float = 0.0) -> int:
    """+1 when the interval, as printed with ``printed``, lies wholly
    above ``reference`` (0 for a difference, 1 for a ratio), -1 wholly
    below, 0 otherwise (it holds the reference, touches it once rounded, or
    is missing): direction words follow the bounds the reader sees, not
    unrounded ones."""
    if math.isnan(low) or math.isnan(high):
        return 0
    shown_low, shown_high = float(printed.format(low)), float(printed.format(high))
    if shown_low > reference:
        return 1
    if shown_high < reference:
        return -1
    return 0

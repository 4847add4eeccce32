"""The intervals and tests the study's tables use.

- Accuracies across seeds: the Student-t interval of the mean (seeds are few
  and their accuracies close to normal).
- Latencies and speedups across benchmark rounds: the median with its
  distribution-free interval from order statistics (timings are skewed: a
  busy machine adds long tails, never short ones).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

CHANCE_P_VALUE = 0.01


def t_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and two-sided Student-t confidence interval of ``values``; the
    bounds are NaN when there are fewer than two values."""
    from scipy import stats

    values = np.asarray(values, dtype=float)
    mean = float(values.mean()) if len(values) else math.nan
    if len(values) < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf((1 + confidence) / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values)))
    return mean, mean - half, mean + half


def prediction_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided Student-t interval for one new value drawn like
    ``values``: mean +/- t * s * sqrt(1 + 1/n). The interval to hold a
    single published run against (the interval of the mean is narrower: it
    is about the mean, not about one run). NaN with fewer than two values."""
    from scipy import stats

    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return math.nan, math.nan
    half = float(stats.t.ppf((1 + confidence) / 2, len(values) - 1) * values.std(ddof=1)
                 * math.sqrt(1 + 1 / len(values)))
    return float(values.mean()) - half, float(values.mean()) + half


def median_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Median of ``values`` and the distribution-free interval
    ``[x_(k), x_(n+1-k)]`` of sorted values, with the largest ``k`` whose
    coverage, from the binomial distribution of how many values fall below
    the true median, is at least ``confidence``. The bounds are NaN when no
    such interval exists (fewer than 6 values for 95%)."""
    from scipy import stats

    ordered = np.sort(np.asarray(values, dtype=float))
    n = len(ordered)
    median = float(np.median(ordered)) if n else math.nan
    # coverage of [x_(k), x_(n+1-k)] is P(k <= B <= n-k), B ~ Binomial(n, 1/2)
    best = None
    for k in range(1, n // 2 + 1):
        if stats.binom.cdf(n - k, n, 0.5) - stats.binom.cdf(k - 1, n, 0.5) >= confidence:
            best = k
        else:
            break
    if best is None:
        return median, math.nan, math.nan
    return median, float(ordered[best - 1]), float(ordered[n - best])


def mcnemar_exact(baseline_only: int, variant_only: int) -> float:
    """Two-sided p-value of McNemar's exact test on paired answers to the
    same images: of the images exactly one of two models gets right,
    ``baseline_only`` went to the first and ``variant_only`` to the second;
    under the null hypothesis each such image is a fair coin
    (binomial, p = 1/2). 1.0 when no image tells them apart."""
    from scipy import stats

    discordant = baseline_only + variant_only
    if discordant == 0:
        return 1.0
    return float(stats.binomtest(variant_only, discordant, 0.5).pvalue)


def at_chance(accuracy: float, chance_accuracy: float, images: int) -> bool:
    """Whether ``accuracy`` on ``images`` test images is not significantly
    above ``chance_accuracy`` (always answering the most frequent class):
    one-sided exact binomial test at p < CHANCE_P_VALUE."""
    from scipy import stats

    correct = round(accuracy * images)
    return bool(stats.binomtest(correct, images, chance_accuracy, alternative="greater").pvalue >= CHANCE_P_VALUE)

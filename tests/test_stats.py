"""Each statistic on a worked example with a known answer (a textbook's, R's
or scipy's own), and the rules that turn intervals into words."""

import math

import numpy as np
import pytest
from scipy import stats

from stages.lib.analysis.stats import (
    accuracy_interval, direction, holm, image_sign_test, mean_interval, rerun_interval,
    paired_difference, prediction_interval, welch_difference,
)

# Student's sleep data (Cushny and Peebles 1905): extra hours of sleep of ten
# patients under two drugs, R's `sleep` data set.
DRUG_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
DRUG_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]


def test_mean_interval_is_student_t():
    estimate = mean_interval([0.98, 0.99, 1.00])
    # t(0.975, 2) = 4.302652729911275; s = 0.01; half width = t * s / sqrt(3)
    half = 4.302652729911275 * 0.01 / math.sqrt(3)
    assert estimate.value == pytest.approx(0.99) and estimate.n == 3
    assert (estimate.low, estimate.high) == (pytest.approx(0.99 - half), pytest.approx(0.99 + half))
    one = mean_interval([0.5])
    assert one.value == 0.5 and math.isnan(one.low) and not one.bounded


def test_paired_difference_matches_r_on_the_sleep_data():
    # R: t.test(extra ~ group, data = sleep, paired = TRUE):
    # t = -4.0621, df = 9, p-value = 0.002833, 95 percent CI -2.4598858 -0.7001142, mean difference -1.58
    estimate = paired_difference(DRUG_1, DRUG_2, limit=10)
    assert estimate.value == pytest.approx(-1.58)
    assert (estimate.low, estimate.high) == (pytest.approx(-2.4598858), pytest.approx(-0.7001142))
    assert estimate.p_value == pytest.approx(0.002833, abs=1e-6) and estimate.n == 10
    # the same as scipy's ttest_rel
    assert estimate.p_value == pytest.approx(stats.ttest_rel(DRUG_1, DRUG_2).pvalue)


def test_a_gap_interval_stays_within_what_two_accuracies_allow():
    # three seeds, one of which collapsed: the t interval would reach far below -100 pp
    estimate = paired_difference([0.1, 0.99, 0.99], [0.99, 0.99, 0.99])
    assert estimate.low == -1.0 and estimate.high <= 1.0
    # a pair with a missing seed is dropped, not counted
    assert paired_difference([0.9, 0.8, math.nan], [0.8, 0.7, 0.5]).n == 2


def test_welch_difference_matches_r_on_the_sleep_data():
    # R: t.test(extra ~ group, data = sleep): t = -1.8608, df = 17.776, p-value = 0.07939,
    # 95 percent CI -3.3654832 0.2054832
    estimate = welch_difference(DRUG_1, DRUG_2, limit=10)
    assert estimate.value == pytest.approx(-1.58)
    assert (estimate.low, estimate.high) == (pytest.approx(-3.3654832), pytest.approx(0.2054832))
    assert estimate.p_value == pytest.approx(0.07939, abs=1e-5)


def test_accuracy_interval_is_on_the_logit_scale_and_never_leaves_0_to_1():
    accuracies, images = [0.98, 0.99, 1.00], 100
    logits = [math.log((a * images + 0.5) / (images + 0.5 - a * images)) for a in accuracies]
    ci = stats.ttest_1samp(logits, 0).confidence_interval()
    estimate = accuracy_interval(accuracies, images)
    assert estimate.value == pytest.approx(0.99)
    assert estimate.low == pytest.approx(1 / (1 + math.exp(-ci.low)))
    assert estimate.high == pytest.approx(1 / (1 + math.exp(-ci.high)))
    # Student t on the accuracies themselves would reach 100.43%; this stays below 100%
    assert 0 < estimate.low < 0.99 < estimate.high < 1
    rng = np.random.default_rng(0)
    for _ in range(200):
        seeds = int(rng.integers(2, 6))
        values = np.clip(rng.choice([0.1, 0.5, 0.97, 0.999, 1.0], seeds) + rng.normal(0, 0.05, seeds), 0, 1)
        estimate = accuracy_interval(values, int(rng.choice([2, 100, 10000])))
        assert 0 <= estimate.low <= estimate.value <= estimate.high <= 1


def test_prediction_interval_is_wider_than_the_mean_s_and_stays_possible():
    low, high = prediction_interval([0.98, 0.99, 1.00], 10000)
    mean = accuracy_interval([0.98, 0.99, 1.00], 10000)
    assert low < mean.low and mean.high < high <= 1
    assert all(math.isnan(v) for v in prediction_interval([0.5], 10000))


def test_holm_matches_statsmodels_textbook_example():
    # Holm (1979) step-down: sorted 0.01, 0.03, 0.04 -> 3 x 0.01, 2 x 0.03, max(1 x 0.04, 0.06)
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    adjusted = holm([0.01, math.nan, 0.04])
    assert adjusted[0] == pytest.approx(0.02) and math.isnan(adjusted[1]) and adjusted[2] == pytest.approx(0.04)
    assert len(holm([])) == 0


def test_image_sign_test_with_one_seed_is_mcnemar_s_exact_test():
    # ten images only the baseline gets right, none only the variant: 2 * (1/2)^10
    variant = [0] * 10 + [1] * 50
    baseline = [1] * 10 + [1] * 50
    assert image_sign_test(variant, baseline) == (0, 10, pytest.approx(2 * 0.5 ** 10))
    assert image_sign_test([1, 1], [1, 1]) == (0, 0, 1.0)
    # several seeds: per image the seeds right of each, summed; 180 images lean one way, 88 the other
    ahead, behind, p_value = image_sign_test([3] * 88 + [0] * 180, [0] * 88 + [2] * 180)
    assert (ahead, behind) == (88, 180) and p_value == pytest.approx(stats.binomtest(88, 268).pvalue)


def test_rerun_interval_of_speedups_across_processes():
    ratios = [1.02, 1.04, 1.01, 1.03]
    estimate = rerun_interval(ratios)
    logs = np.log(ratios)
    # the prediction interval for the mean of four more processes: t(0.975, 3) * s * sqrt(1/4 + 1/4)
    half = stats.t.ppf(0.975, 3) * logs.std(ddof=1) * math.sqrt(0.5)
    assert estimate.value == pytest.approx(math.exp(logs.mean()))
    assert (estimate.low, estimate.high) == (pytest.approx(math.exp(logs.mean() - half)),
                                             pytest.approx(math.exp(logs.mean() + half)))
    # sqrt(2) times as wide as the interval of the mean, on the log scale
    ci = stats.ttest_1samp(logs, 0).confidence_interval()
    assert math.log(estimate.high / estimate.low) == pytest.approx(math.sqrt(2) * (ci.high - ci.low))
    assert estimate.p_value == pytest.approx(stats.ttest_1samp(logs, 0).pvalue) and estimate.n == 4
    assert math.isnan(rerun_interval([1.0, -1.0]).value)


def test_no_spread_gets_the_exact_sign_flip_test_not_a_t_test():
    # three seeds, the same difference on each: t would be infinite; the sign-flip test gives 2 / 2^3
    assert mean_interval([0.001, 0.001, 0.001]).p_value == pytest.approx(0.25)
    assert mean_interval([0.0, 0.0]).p_value == 1.0


@pytest.mark.parametrize("low, high, printed, reference, expected", [
    (-0.011, -0.006, "{:+.2f}", 0, -1),
    (-0.011, -0.004, "{:+.2f}", 0, 0),        # printed -0.01 to -0.00: touches zero once rounded
    (-0.011, 0.004, "{:+.2f}", 0, 0),
    (-0.011, -0.004, "{:+.1f}", 0, 0),        # printed as -0.0: touches zero once rounded
    (0.981, 0.994, "{:.2f}", 1.0, -1),
    (0.981, 0.999, "{:.2f}", 1.0, 0),         # printed 0.98x to 1.00x: not "slower"
    (1.004, 1.2, "{:.2f}", 1.0, 0),           # printed 1.00x to 1.20x: not "faster"
    (1.006, 1.2, "{:.2f}", 1.0, 1),
    (math.nan, 1.0, "{:.2f}", 1.0, 0),
])
def test_direction_follows_the_printed_bounds(low, high, printed, reference, expected):
    assert direction(low, high, printed, reference) == expected


def test_equivalence_is_statsmodels_two_one_sided_tests():
    from scipy import stats as scipy_stats
    from statsmodels.stats.weightstats import ttost_ind, ttost_paired

    from stages.lib.analysis.stats import equivalence_p, paired_difference, welch_difference

    rng = np.random.default_rng(2)
    for _ in range(20):
        n1, n2 = int(rng.integers(3, 8)), int(rng.integers(3, 8))
        a, b = rng.normal(0.985, 0.002, n1), rng.normal(0.983, 0.004, n2)
        margin = float(rng.uniform(0.001, 0.01))
        welch = welch_difference(a, b)
        error = (welch.high - welch.low) / 2 / scipy_stats.t.ppf(0.975, welch.df)
        assert equivalence_p(welch.value, error, welch.df, margin) == pytest.approx(
            ttost_ind(a, b, -margin, margin, usevar="unequal")[0], rel=1e-9)
        c = b[:n1] if n2 >= n1 else np.resize(b, n1)
        paired = paired_difference(a, c)
        error = (paired.high - paired.low) / 2 / scipy_stats.t.ppf(0.975, paired.df)
        assert paired.df == n1 - 1
        assert equivalence_p(paired.value, error, paired.df, margin) == pytest.approx(
            ttost_paired(a, c, -margin, margin)[0], rel=1e-9)


def test_welch_s_degrees_of_freedom_are_kept_and_read_back():
    from stages.lib.analysis.stats import welch_difference
    from stages.lib.analysis.verdicts import GAP_CHANGE, degrees_of_freedom, standard_error

    a, b = np.array([-0.060, -0.058, -0.072]), np.array([-0.009, -0.008, -0.011])
    estimate = welch_difference(a, b)
    assert 2 < estimate.df < 4  # Welch's, not 2n - 2
    row = {"gap_change": estimate.value, "gap_change_ci95_low": estimate.low, "gap_change_ci95_high": estimate.high,
           "seeds": estimate.n, "gap_change_df": estimate.df}
    assert degrees_of_freedom(row, GAP_CHANGE) == estimate.df
    expected = float(np.sqrt(a.var(ddof=1) / 3 + b.var(ddof=1) / 3))
    assert standard_error(row, GAP_CHANGE) == pytest.approx(expected, rel=1e-9)

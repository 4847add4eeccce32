"""The verdict rules: the primaries one family (Holm) whose size is the
number named, exploratory comparisons adjusted within their family with the
interval they are read from, equivalence only inside a margin, no verdict
from a spread of zero, and power without hindsight: the smallest difference
the seeds detect, never a seed count from the observed difference."""

import math

import numpy as np
import pandas as pd
import pytest

from stages.lib.analysis.accuracy import summary_table
from stages.lib.analysis.stats import paired_difference
from stages.lib.analysis.verdicts import detectable_clause
from stages.lib.analysis.verdicts import (
    EQUIVALENT, GAP, HIGHER, LOWER, NO_SPREAD, NONE, ROBUSTNESS_GAP, judge, primary_family, raw_tests, seeds_for,
)

IMAGES = 10000


def _gaps(differences: dict[str, list[float]], primary=("bnn",), margin=0.5) -> pd.DataFrame:
    """A summary-like table: one row per variant, its seed-paired gap to
    the baseline from the given per-seed differences."""
    rows = []
    for variant, values in differences.items():
        gap = paired_difference(np.asarray(values), np.zeros(len(values)))
        rows.append({"dataset": "mnist", "variant": variant, "seeds": gap.n, "accuracy_gap_vs_baseline": gap.value,
                     "accuracy_gap_ci95_low": gap.low, "accuracy_gap_ci95_high": gap.high,
                     "accuracy_gap_p_value": gap.p_value})
    table = pd.DataFrame(rows)
    chosen = table["variant"].isin(primary)
    tests = {index: raw_tests(table.loc[index].to_dict(), GAP, margin / 100, IMAGES) for index in table.index[chosen]}
    family = primary_family(tests, dict.fromkeys(tests, margin))
    return judge(table, GAP, IMAGES, primary=chosen, family=family)


# the committed default study's per-seed MNIST gap of bnn (AMD EPYC): -0.80, -0.73, -1.17 pp
BNN = [-0.0080, -0.0073, -0.0117]


def test_a_primary_verdict_does_not_change_when_ten_exploratory_variants_are_added():
    alone = _gaps({"bnn": BNN}).set_index("variant").loc["bnn"]
    rng = np.random.default_rng(3)
    crowd = {f"v{i}": list(rng.normal(rng.uniform(-0.01, 0.01), 0.003, 3)) for i in range(10)}
    crowded = _gaps({"bnn": BNN, **crowd}).set_index("variant")
    assert alone["accuracy_gap_verdict"] == LOWER and alone["accuracy_gap_family"] == "primary"
    for column in ("accuracy_gap_verdict", "accuracy_gap_p_adjusted", "accuracy_gap_adj_low", "accuracy_gap_adj_high"):
        assert crowded.at["bnn", column] == alone[column], column
    # the same gap, exploratory among the eleven, is adjusted: Bonferroni p and a simultaneous 99.5% interval
    demoted = _gaps({"bnn": BNN, **crowd}, primary=()).set_index("variant").loc["bnn"]
    assert demoted["accuracy_gap_family_size"] == 11
    assert demoted["accuracy_gap_p_adjusted"] == pytest.approx(min(1, 11 * alone["accuracy_gap_p_value"]))
    assert demoted["accuracy_gap_adj_low"] < alone["accuracy_gap_adj_low"]
    assert demoted["accuracy_gap_verdict"] == NONE and demoted["accuracy_gap_detectable"] > 0.009


def test_the_primaries_are_one_holm_family_whose_size_is_the_number_named():
    rng = np.random.default_rng(3)
    named = {"bnn": BNN, "bnn_w2": [-0.004, -0.001, -0.006], "other": [0.001, -0.002, 0.0005]}
    table = _gaps(named, primary=tuple(named)).set_index("variant")
    assert (table["accuracy_gap_family_size"] == 3).all()
    from statsmodels.stats.multitest import multipletests

    raw = [table.at[name, "accuracy_gap_p_value"] for name in named]
    assert list(table["accuracy_gap_p_adjusted"]) == pytest.approx(list(multipletests(raw, method="holm")[1]))
    # the step's level: the smallest p at 0.05 / 3; a hypothesis Holm keeps is read at 0.05 / 3 too
    assert table.at["bnn", "accuracy_gap_level"] == pytest.approx(0.05 / 3)
    # adding exploratory variants changes none of it
    crowd = {f"v{i}": list(rng.normal(0, 0.003, 3)) for i in range(10)}
    crowded = _gaps({**named, **crowd}, primary=tuple(named)).set_index("variant")
    for column in ("accuracy_gap_p_adjusted", "accuracy_gap_adj_low", "accuracy_gap_verdict"):
        assert list(crowded.loc[list(named), column]) == list(table[column]), column


def test_a_printed_primary_interval_excludes_zero_exactly_when_holm_rejects():
    rng = np.random.default_rng(13)
    for _ in range(40):
        m = int(rng.integers(1, 6))
        named = {f"v{i}": list(rng.normal(rng.uniform(-0.01, 0.01), rng.uniform(0.001, 0.006), 3)) for i in range(m)}
        table = _gaps(named, primary=tuple(named))
        for row in table.to_dict("records"):
            excludes = row["accuracy_gap_adj_high"] < 0 or row["accuracy_gap_adj_low"] > 0
            assert excludes == (row["accuracy_gap_p_adjusted"] < 0.05), row


def test_equivalence_needs_the_interval_inside_the_margin():
    tight = [0.0004, -0.0002, 0.0001, 0.0, -0.0003]
    row = _gaps({"bnn": tight}, margin=0.5).iloc[0]
    assert row["accuracy_gap_verdict"] == EQUIVALENT and row["accuracy_gap_tost_p_adjusted"] < 0.05
    assert -0.005 < row["accuracy_gap_adj_low"] and row["accuracy_gap_adj_high"] < 0.005
    row = _gaps({"bnn": tight}, margin=0.02).iloc[0]
    assert row["accuracy_gap_verdict"] == NONE  # undecided: the interval reaches past a margin of 0.02 pp


def test_the_interval_printed_is_the_one_the_verdict_is_read_from():
    rng = np.random.default_rng(7)
    for _ in range(30):
        m = int(rng.integers(1, 8))
        table = _gaps({f"v{i}": list(rng.normal(rng.uniform(-0.01, 0.01), rng.uniform(0.0005, 0.01),
                                                int(rng.integers(2, 7)))) for i in range(m)}, primary=())
        for row in table.to_dict("records"):
            told = row["accuracy_gap_adj_high"] < 0 or row["accuracy_gap_adj_low"] > 0
            adjusted = row["accuracy_gap_p_adjusted"] < 0.05
            if row["accuracy_gap_verdict"] in (LOWER, HIGHER):
                assert told and adjusted
            elif told and adjusted:  # only rounding of the printed bounds may withhold a verdict
                assert abs(row["accuracy_gap_adj_high"] if row["accuracy_gap_adj_high"] < 0
                           else row["accuracy_gap_adj_low"]) < 5e-5
            # Bonferroni's interval and its p agree (both from the same t)
            if m > 1 and row["accuracy_gap_verdict"] != NO_SPREAD:
                assert told == adjusted or abs(row["accuracy_gap_p_adjusted"] - 0.05) < 1e-6


def test_no_verdict_comes_from_a_spread_of_zero():
    rng = np.random.default_rng(11)
    for _ in range(50):
        seeds = int(rng.integers(2, 6))
        images = int(rng.integers(-300, 300))
        same = [images / IMAGES] * seeds                         # the same count of images on every seed
        jitter = [images / IMAGES + float(rng.normal(0, 1e-8)) for _ in range(seeds)]  # float32 noise of it
        table = _gaps({"same": same, "jitter": jitter}, primary=("same", "jitter")).set_index("variant")
        for name in ("same", "jitter"):
            row = table.loc[name]
            assert row["accuracy_gap_verdict"] in (NO_SPREAD, NONE), (name, seeds, images)
            if images:
                # the exact sign-flip test over seeds: 2 / 2^n, and what it would take to reach 5%
                # both primaries: Holm over the two sign-flip p-values, equal, is twice each
                assert row["accuracy_gap_p_adjusted"] == pytest.approx(min(1, 2 * 2 / 2 ** seeds))
                assert "would need" in detectable_clause(row, "accuracy_gap")
                assert math.isnan(row["accuracy_gap_adj_low"])
    # dorefa8's class 0 in the extended snapshot: one image more on each of three seeds (p was 1.3e-27)
    table = _gaps({"dorefa8": [0.001, 0.001, 0.001 + 1e-9]}, primary=("dorefa8",))
    assert table["accuracy_gap_verdict"].iloc[0] == NO_SPREAD


def test_every_comparison_without_a_verdict_says_what_its_seeds_detect_from_the_spread_alone():
    rng = np.random.default_rng(5)
    for _ in range(20):
        differences = {f"v{i}": list(rng.normal(rng.uniform(-0.01, 0.01), 0.004, 3)) for i in range(6)}
        table = _gaps(differences, primary=())
        undecided = table[table["accuracy_gap_verdict"] == NONE]
        assert undecided["accuracy_gap_detectable"].notna().all() and (undecided["accuracy_gap_detectable"] > 0).all()
        # the same spreads around other means: the same detectable differences (no hindsight)
        moved = _gaps({name: [v + 0.002 for v in values] for name, values in differences.items()}, primary=())
        assert list(moved["accuracy_gap_detectable"]) == pytest.approx(list(table["accuracy_gap_detectable"]))


def test_the_detectable_difference_and_the_seeds_a_margin_needs_are_statsmodels_power():
    from statsmodels.stats.power import TTestIndPower, TTestPower
    from stages.lib.analysis.stats import detectable_difference, seeds_for_margin

    spread = float(np.std(BNN, ddof=1))
    found = detectable_difference(spread, 3, 0.05, "paired")
    assert TTestPower().power(found / spread, 3, 0.05) == pytest.approx(0.8, abs=1e-6)
    found = detectable_difference(0.004, 5, 0.025, "welch")
    assert TTestIndPower().power(found / 0.004, 5, 0.025) == pytest.approx(0.8, abs=1e-6)
    seeds = seeds_for_margin(0.004, 0.005, 0.025, "welch")
    solver = TTestIndPower()
    assert solver.power(0.005 / 0.004, seeds, 0.025) >= 0.8
    assert solver.power(0.005 / 0.004, seeds, 0.025, alternative="larger") >= 0.9
    assert solver.power(0.005 / 0.004, seeds - 1, 0.025, alternative="larger") < 0.9
    # the sign-flip test over seeds with no spread: 1 + log2(1 / level)
    assert seeds_for(math.inf, 0.05, "paired") == 6 and seeds_for(math.inf, 0.05 / 17, "paired") == 10
    assert math.isnan(seeds_for(0.0, 0.05, "paired"))


def test_a_family_is_each_variant_s_corruptions():
    rows = []
    for variant, shift in (("bnn", 0.2), ("bwn", 0.0)):
        for corruption in ("fog", "stripe", "rotate"):
            gap = paired_difference(np.array([shift, shift + 0.01, shift - 0.005]) if corruption == "stripe"
                                    else np.array([0.01, -0.02, 0.004]), np.zeros(3), limit=2.0)
            rows.append({"dataset": "mnist", "variant": variant, "baseline": "fp32", "corruption": corruption,
                         "seeds": 3, "robustness_gap": gap.value, "robustness_gap_ci95_low": gap.low,
                         "robustness_gap_ci95_high": gap.high, "robustness_gap_p_value": gap.p_value})
    table = judge(pd.DataFrame(rows), ROBUSTNESS_GAP, IMAGES).set_index(["variant", "corruption"])
    assert (table["robustness_gap_family_size"] == 3).all()
    assert table.at[("bnn", "stripe"), "robustness_gap_verdict"] == HIGHER
    assert table.at[("bwn", "fog"), "robustness_gap_verdict"] == NONE


def test_the_summary_carries_raw_tests_and_the_verdicts_add_the_rest():
    from conftest import synthetic_profiles, synthetic_runs

    summary = summary_table(synthetic_runs(), synthetic_profiles(), "fp32").assign(dataset="mnist")
    judged = judge(summary, GAP, IMAGES, primary=summary["variant"] == "bnn").set_index("variant")
    assert judged.at["bnn", "accuracy_gap_family"] == "primary" and judged.at["bnn", "accuracy_gap_verdict"] == LOWER
    assert judged.at["fp32", "accuracy_gap_verdict"] == "not tested"  # the baseline against itself


def _committed_judged_rows():
    """Every judged row of every committed table (the snapshots' and the
    default study's metrics): (where, interval low, high, adjusted p, the
    value the interval is read against)."""
    import glob
    import json

    from conftest import REPO

    rows = []
    for path in sorted(glob.glob(str(REPO / "reports" / "experiments" / "**" / "tables" / "*.csv"), recursive=True)):
        table = pd.read_csv(path)
        for prefix in [column[:-len("_adj_low")] for column in table.columns if column.endswith("_adj_low")]:
            if f"{prefix}_p_adjusted" not in table.columns:
                continue
            reference = 1.0 if prefix == "mce" or "speedup" in prefix or "ratio" in prefix else 0.0
            for record in table.to_dict("records"):
                rows.append((f"{path}: {prefix} {record.get('dataset')} {record.get('variant', record.get('one_bit'))}",
                             record[f"{prefix}_adj_low"], record[f"{prefix}_adj_high"],
                             record[f"{prefix}_p_adjusted"], reference))
    metrics = json.loads((REPO / "reports" / "metrics.json").read_text())
    for dataset, of in metrics.items():
        for name, figures in of.items():
            for prefix, entry in ([("same_flash", value) for value in figures.values()] if name == "same_flash"
                                  else [("accuracy_gap", figures)]):
                rows.append((f"metrics.json {dataset} {name} {prefix}", entry.get(f"{prefix}_adj_low"),
                             entry.get(f"{prefix}_adj_high"), entry.get(f"{prefix}_p_adjusted"), 0.0))
    return rows


def test_every_committed_interval_excludes_zero_exactly_when_its_adjusted_p_is_below_the_level():
    judged = 0
    for where, low, high, adjusted, reference in _committed_judged_rows():
        if any(value is None or pd.isna(value) for value in (low, high, adjusted)):
            continue
        judged += 1
        excludes = low > reference or high < reference
        assert excludes == (adjusted < 0.05), f"{where}: ({low:.4g}, {high:.4g}) against adjusted p {adjusted:.3g}"
    assert judged > 900

"""Networks across widths: the same-flash comparison and its sentences on
synthetic tables where int8 wins, where the 1-bit network wins, and where
neither is told; which networks compete; where a 1-bit family's gap stops
being told."""

import math

import pandas as pd
import pytest

from stages.lib import names
from stages.lib.analysis.iso_size import (
    same_flash_sentence, same_flash_table, size_sentences, width_match_sentence, width_match_table,
)
from stages.lib.analysis.verdicts import (
    EQUIVALENT, HIGHER, LOWER, NONE, PRIMARY, SAME_FLASH, judge, primary_family, raw_tests,
)
from stages.lib.common import StudyError
from stages.lib.wording import title

IMAGES = {"mnist": 10000}
TWIN = "fp32_w0.352+int8"
# name: (precision, width, recipe, file KiB, per-seed accuracies)
BASE = {
    "fp32": ("float", 1.0, "article", 368.87, (0.9905, 0.9897, 0.9908)),
    "fp32+int8": ("int8", 1.0, "article", 100.87, (0.9903, 0.9898, 0.9909)),
    "bnn": ("1-bit", 1.0, "article", 18.80, (0.9825, 0.9824, 0.9791)),
}


def _tables(networks, validation_shift=0.0):
    """A frontier and a runs table of the networks (name -> spec); each
    validation accuracy is the test accuracy plus ``validation_shift``
    (a mapping name -> shift, or one shift for all)."""
    frontier, runs = [], []
    for name, (precision, width, recipe, kib, accuracies) in networks.items():
        shift = validation_shift.get(name, 0.0) if isinstance(validation_shift, dict) else validation_shift
        mean = sum(accuracies) / len(accuracies)
        frontier.append({"dataset": "mnist", "variant": name, "family": names.family(name)[0], "precision": precision,
                         "width": width, "recipe": recipe, "seeds": len(accuracies),
                         "validation_accuracy_mean": mean + shift, "test_accuracy_mean": mean,
                         "test_accuracy_ci95_low": mean - 0.003, "test_accuracy_ci95_high": mean + 0.003,
                         "tflite_kib": kib, "larq_kib": kib * 0.8, "ram_kib": 100 * width,
                         "latency_median_us": 40 * width})
        runs += [{"dataset": "mnist", "variant": name, "seed": seed, "test_accuracy": accuracy,
                  "validation_accuracy": accuracy + shift} for seed, accuracy in enumerate(accuracies)]
    return pd.DataFrame(frontier), pd.DataFrame(runs)


def _judged(networks, twins=None, margin=0.5, others=0):
    """The equal-flash table judged as the primary family it belongs to:
    its rows and ``others`` more primaries named (each with p = 1)."""
    frontier, runs = _tables(networks)
    table = same_flash_table(frontier, runs, {"int8": {"bnn": "fp32_w0.352"}} if twins is None else twins)
    tests = {index: raw_tests(row, SAME_FLASH, margin / 100) for index, row in table.iterrows()}
    tests.update({f"other{i}": (1.0, 1.0) for i in range(others)})
    family = primary_family(tests, {key: margin for key in tests})
    return judge(table, SAME_FLASH, table["dataset"].map(IMAGES).astype(float),
                 primary=pd.Series(True, index=table.index), family=family)


def test_where_the_int8_twin_wins():
    table = _judged({**BASE, TWIN: ("int8", 0.352, "article", 18.64, (0.9876, 0.9881, 0.9868))})
    row = table.iloc[0]
    assert row["twin"] == TWIN and row["twin_width"] == 0.352 and row["difference_df"] < 4
    assert row["same_flash_family"] == PRIMARY and row["same_flash_family_size"] == 1
    assert row["same_flash_verdict"] == HIGHER and row["same_flash_adj_low"] > 0
    sentence = same_flash_sentence(row, title)
    assert sentence.startswith("MNIST, at `bnn`'s 18.80 KiB: its equal-flash twin `fp32_w0.352+int8` (18.64 KiB, "
                               "width 0.352, fixed before training)")
    assert "Welch over separate runs, 3 seeds each" in sentence
    assert sentence.endswith("at equal flash, `fp32_w0.352+int8` is more accurate than `bnn`")


def test_where_the_1_bit_network_wins():
    table = _judged({**BASE, TWIN: ("int8", 0.352, "article", 18.64, (0.9702, 0.9711, 0.9695))})
    row = table.iloc[0]
    assert row["same_flash_verdict"] == LOWER and row["same_flash_adj_high"] < 0
    assert same_flash_sentence(row, title).endswith("at equal flash, `bnn` is more accurate than `fp32_w0.352+int8`")


def test_a_tie_is_claimed_only_inside_the_margin():
    close = {**BASE, "bnn": ("1-bit", 1.0, "article", 18.80, (0.9850, 0.9852, 0.9848)),
             TWIN: ("int8", 0.352, "article", 18.64, (0.9851, 0.9849, 0.9853))}
    row = _judged(close).iloc[0]
    assert row["same_flash_verdict"] == EQUIVALENT and row["same_flash_tost_p_adjusted"] < 0.05
    assert row["same_flash_adj_low"] > -0.005 and row["same_flash_adj_high"] < 0.005
    assert "equivalent within the 0.5 pp margin (two one-sided tests" in same_flash_sentence(row, title)
    # the same runs against a margin narrower than their interval: undecided, never a tie
    row = _judged(close, margin=0.02).iloc[0]
    assert row["same_flash_verdict"] == NONE and "undecided" in same_flash_sentence(row, title)


def test_undecided_says_what_the_seeds_detect_and_what_the_margin_needs_never_a_count_from_the_difference():
    wide = {**BASE, TWIN: ("int8", 0.352, "article", 18.64, (0.9790, 0.9850, 0.9830))}
    row = _judged(wide).iloc[0]
    assert row["same_flash_verdict"] == NONE and row["same_flash_adj_low"] < 0 < row["same_flash_adj_high"]
    sentence = same_flash_sentence(row, title)
    assert ": undecided (these seeds detect a difference of" in sentence
    assert "its 0.5 pp margin needs" in sentence and "seeds would give" not in sentence
    # shifting the twin's accuracies moves the difference, not the spread: the same figures
    shifted = {**wide, TWIN: ("int8", 0.352, "article", 18.64, (0.9795, 0.9855, 0.9835))}
    again = _judged(shifted).iloc[0]
    assert again["same_flash_detectable"] == pytest.approx(row["same_flash_detectable"])
    assert again["same_flash_seeds_for_margin"] == row["same_flash_seeds_for_margin"]


def test_a_twin_whose_file_outgrew_the_1_bit_file_stops_the_table():
    with pytest.raises(StudyError, match="it is not of equal flash"):
        _judged({**BASE, TWIN: ("int8", 0.352, "article", 19.0, (0.9876, 0.9881, 0.9868))})


def test_no_twin_in_the_study_no_row():
    assert _judged(BASE).empty


def test_a_primary_verdict_is_adjusted_over_the_primaries_named_never_over_the_variants_run():
    networks = {**BASE, TWIN: ("int8", 0.352, "article", 18.64, (0.9876, 0.9881, 0.9868))}
    alone = _judged(networks).iloc[0]
    more = _judged({**networks, "fp32_w0.5+int8": ("int8", 0.5, "article", 29.8, (0.9899, 0.9900, 0.9901)),
                    "bnn_w2": ("1-bit", 2.0, "article", 55.9, (0.9860, 0.9870, 0.9855))}).iloc[0]
    assert more["same_flash_p_adjusted"] == alone["same_flash_p_adjusted"]
    named = _judged(networks, others=3).iloc[0]
    assert named["same_flash_family_size"] == 4
    assert named["same_flash_p_adjusted"] == pytest.approx(min(1.0, 4 * named["difference_p_value"]))


def test_each_twin_form_is_one_more_primary_row_of_the_1_bit_network():
    networks = {**BASE, TWIN: ("int8", 0.352, "article", 18.64, (0.9876, 0.9881, 0.9868)),
                "fp32_w0.49+int4": ("int4", 0.49, "article", 18.77, (0.9870, 0.9872, 0.9880))}
    twins = {"int8": {"bnn": "fp32_w0.352"}, "int4": {"bnn": "fp32_w0.49"}}
    table = _judged(networks, twins)
    assert list(table["twin"]) == [TWIN, "fp32_w0.49+int4"] and list(table["one_bit"]) == ["bnn", "bnn"]
    assert list(table["twin_width"]) == [0.352, 0.49]
    # named together, adjusted together: a family of two, whichever form's row
    assert set(table["same_flash_family_size"]) == {2}
    alone = _judged(networks, {"int8": {"bnn": "fp32_w0.352"}}).iloc[0]
    assert alone["same_flash_family_size"] == 1 and alone["difference"] == table.iloc[0]["difference"]
    assert same_flash_sentence(table.iloc[1], title).startswith(
        "MNIST, at `bnn`'s 18.80 KiB: its equal-flash twin `fp32_w0.49+int4` (18.77 KiB, width 0.49")


def test_the_width_is_chosen_on_the_validation_images():
    networks = {**BASE, "fp32_w0.5+int8": ("int8", 0.5, "article", 29.8, (0.9899, 0.9900, 0.9901)),
                "bnn": ("1-bit", 1.0, "article", 18.80, (0.9810, 0.9812, 0.9808)),
                "bnn_w2": ("1-bit", 2.0, "article", 55.9, (0.9880, 0.9895, 0.9870)),
                "bnn_w0.5": ("1-bit", 0.5, "article", 8.4, (0.9680, 0.9690, 0.9670))}
    frontier, runs = _tables(networks)
    summary = pd.DataFrame({"dataset": "mnist", "variant": ["bnn_w0.5", "bnn", "bnn_w2"],
                            "accuracy_gap_vs_baseline": [-0.022, -0.009, -0.002],
                            "accuracy_gap_verdict": [LOWER, LOWER, NONE], "accuracy_gap_family_size": 15,
                            "accuracy_gap_family": "exploratory", "accuracy_gap_level": 0.05 / 15,
                            "accuracy_gap_adj_low": [-0.03, -0.015, -0.012], "accuracy_gap_adj_high": [-0.01, -0.003, 0.008],
                            "accuracy_gap_detectable": [math.nan, math.nan, 0.011]})
    row = width_match_table(frontier, summary, runs, "fp32").iloc[0]
    assert row["widths"] == "0.5, 1, 2" and row["width"] == 2 and row["matching_variant"] == "bnn_w2"
    assert row["int8_variant"] == "fp32_w0.5+int8" and row["int8_match_tflite_kib"] == 29.8
    sentence = width_match_sentence(row, "fp32", title)
    assert ("from width 2 (`bnn_w2`, chosen on the validation images) its gap to `fp32` on the test images is -0.20 pp (simultaneous 99.67% CI -1.20 pp to +0.80 pp), "
            "not told from zero (exploratory; these seeds detect a difference of 1.10 pp") in sentence
    assert "`fp32_w0.5+int8` (99.00%), needs 29.80 KiB" in sentence
    # the test accuracies do not choose: permuted across the runs, the width stays
    shuffled = runs.assign(test_accuracy=runs["test_accuracy"].sample(frac=1, random_state=1).to_numpy())
    assert width_match_table(frontier, summary, shuffled, "fp32").iloc[0]["matching_variant"] == "bnn_w2"
    # validation accuracies of bnn_w2 told below fp32's: no width matches
    frontier, runs = _tables(networks, {"bnn_w2": -0.01})
    row = width_match_table(frontier, summary, runs, "fp32").iloc[0]
    assert pd.isna(row["matching_variant"]) and row["accuracy_gap_vs_baseline"] == -0.002


def test_a_width_that_does_not_shrink_the_file_is_named():
    frontier, _ = _tables({"bnn": ("1-bit", 1.0, "article", 18.80, (0.98,) * 3),
                           "bnn_w0.5": ("1-bit", 0.5, "article", 12.0, (0.97,) * 3)})
    frontier.loc[frontier["variant"] == "bnn", "larq_kib"] = 13.19
    frontier.loc[frontier["variant"] == "bnn_w0.5", "larq_kib"] = 3.5
    sentences = size_sentences(frontier)
    assert sentences == ["`bnn`: from width 1 to 0.5 Larq's count shrinks 3.8x (13.19 KiB to 3.50 KiB), the file 1.6x "
                         "(18.80 KiB to 12.00 KiB)"]


def test_a_study_of_one_width_has_no_section_across_widths():
    from stages.report import iso_context

    frontier, _ = _tables(BASE)
    assert iso_context({"frontier": frontier}, "fp32") == {"table": ""}


def test_budget_picks_on_flash_and_on_ram_choose_across_widths():
    from stages.lib.analysis.budgets import budget_line

    summary = pd.DataFrame({
        "variant": ["fp32", "bnn", "fp32_w0.25", "fp32_w0.25+int8"],
        "architecture": ["fp32", "bnn", "fp32_w0.25", "fp32_w0.25+int8"],
        "validation_accuracy_mean": [0.9903, 0.9813, 0.9866, 0.98658],
        "test_accuracy_mean": [0.9903, 0.9813, 0.9866, 0.98658],
        "tflite_kib": [368.87, 18.80, 27.05, 12.11], "ram_kib": [105.62, 105.62, 26.41, 6.60],
        "runs_at_chance": 0, "seeds": 3})
    assert budget_line(summary, [16, 64, None], 10000) == (
        "≤ 16 KiB: `fp32_w0.25+int8` (98.66%, 12.11 KiB); ≤ 64 KiB: `fp32_w0.25+int8` (98.66%, 12.11 KiB; a tie with "
        "`fp32_w0.25`, the smaller picked); no limit: `fp32` (99.03%, 368.87 KiB)")
    assert budget_line(summary, [8, 32], 10000, "ram_kib") == (
        "≤ 8 KiB: `fp32_w0.25+int8` (98.66%, 6.60 KiB); ≤ 32 KiB: `fp32_w0.25+int8` (98.66%, 6.60 KiB; a tie with "
        "`fp32_w0.25`, the smaller picked)")
    # the picks read the validation accuracies: permuting the test accuracies changes none
    permuted = summary.assign(test_accuracy_mean=summary["test_accuracy_mean"].to_numpy()[[3, 2, 1, 0]])
    picked = [part.split("`")[1] for part in budget_line(permuted, [16, 64, None], 10000).split("; ") if "`" in part]
    assert picked[:2] == ["fp32_w0.25+int8", "fp32_w0.25+int8"] and picked[-1] == "fp32"

"""Networks across widths: the same-flash comparison and its sentences on
synthetic tables where int8 wins, where the 1-bit network wins, and where
neither is told; which networks compete; where a 1-bit family's gap stops
being told."""

import math
import pandas as pd

from stages.lib.analysis.iso_size import (
    family, same_flash_sentence, same_flash_table, size_sentences, width_match_sentence, width_match_table,
)
from stages.lib.analysis.verdicts import HIGHER, LOWER, NONE, PRIMARY, SAME_FLASH, judge
from stages.lib.reporting.wording import title

IMAGES = {"mnist": 10000}
# name: (precision, width, recipe, file KiB, per-seed accuracies)
BASE = {
    "fp32": ("float", 1.0, "article", 368.87, (0.9905, 0.9897, 0.9908)),
    "fp32+int8": ("int8", 1.0, "article", 100.87, (0.9903, 0.9898, 0.9909)),
    "bnn": ("1-bit", 1.0, "article", 18.80, (0.9825, 0.9824, 0.9791)),
}


def _tables(networks):
    """A frontier and a runs table of the networks (name -> spec)."""
    frontier, runs = [], []
    for name, (precision, width, recipe, kib, accuracies) in networks.items():
        mean = sum(accuracies) / len(accuracies)
        frontier.append({"dataset": "mnist", "variant": name, "family": family(name)[0], "precision": precision,
                         "width": width, "recipe": recipe, "seeds": len(accuracies), "test_accuracy_mean": mean,
                         "test_accuracy_ci95_low": mean - 0.003, "test_accuracy_ci95_high": mean + 0.003,
                         "tflite_kib": kib, "larq_kib": kib * 0.8, "ram_kib": 100 * width,
                         "latency_median_us": 40 * width})
        runs += [{"dataset": "mnist", "variant": name, "seed": seed, "test_accuracy": accuracy}
                 for seed, accuracy in enumerate(accuracies)]
    return pd.DataFrame(frontier), pd.DataFrame(runs)


def _judged(networks, named=("bnn",)):
    frontier, runs = _tables(networks)
    table = same_flash_table(frontier, runs, list(named), IMAGES)
    return judge(table, SAME_FLASH, table["dataset"].map(IMAGES).astype(float),
                 primary=pd.Series(True, index=table.index))


def test_names_carry_their_family_and_width():
    assert family("fp32_w0.25+int8") == ("fp32+int8", 0.25)
    assert family("bnn_fp_edges_cosine_w2") == ("bnn_fp_edges_cosine", 2.0)
    assert family("bnn") == ("bnn", 1.0)


def test_where_a_narrow_int8_network_wins():
    table = _judged({**BASE, "fp32_w0.25+int8": ("int8", 0.25, "article", 12.11, (0.9866, 0.9871, 0.9858))})
    row = table.iloc[0]
    assert row["pick"] == "fp32_w0.25+int8" and row["candidates"] == "fp32_w0.25+int8"
    assert row["same_flash_family"] == PRIMARY and row["same_flash_family_size"] == 1
    assert row["same_flash_verdict"] == HIGHER and row["same_flash_adj_low"] > 0
    sentence = same_flash_sentence(row, title)
    assert sentence.startswith("MNIST, within `bnn`'s 18.80 KiB, the most accurate float or int8 network")
    assert "`fp32_w0.25+int8` (12.11 KiB" in sentence and "Welch over separate runs, 3 seeds each" in sentence
    assert sentence.endswith("at no more flash, `fp32_w0.25+int8` is more accurate than `bnn`")


def test_where_the_1_bit_network_wins():
    table = _judged({**BASE, "fp32_w0.125+int8": ("int8", 0.125, "article", 6.70, (0.9702, 0.9711, 0.9695)),
                     "fp32_w0.125": ("float", 0.125, "article", 9.9, (0.9712, 0.9705, 0.9700))})
    row = table.iloc[0]
    assert row["pick"] == "fp32_w0.125" and row["candidates"] == "fp32_w0.125+int8, fp32_w0.125"
    assert row["same_flash_verdict"] == LOWER and row["same_flash_adj_high"] < 0
    assert same_flash_sentence(row, title).endswith(
        "`bnn` is more accurate than the best float or int8 network that fits its flash")


def test_where_the_seeds_cannot_tell_them_apart():
    table = _judged({**BASE, "fp32_w0.25+int8": ("int8", 0.25, "article", 12.11, (0.9790, 0.9850, 0.9830))})
    row = table.iloc[0]
    assert row["same_flash_verdict"] == NONE and row["same_flash_adj_low"] < 0 < row["same_flash_adj_high"]
    assert row["same_flash_seeds_needed"] > 3
    sentence = same_flash_sentence(row, title)
    assert "these seeds cannot tell them apart (about" in sentence and "seeds would give 80% power" in sentence


def test_only_networks_of_the_same_recipe_and_no_larger_file_compete():
    table = _judged({**BASE,
                     "fp32_cosine_w0.25+int8": ("int8", 0.25, "cosine", 12.11, (0.9900, 0.9910, 0.9905)),
                     "fp32_w0.5+int8": ("int8", 0.5, "article", 29.8, (0.9899, 0.9900, 0.9901)),
                     "fp32_w0.25+int8": ("int8", 0.25, "article", 12.11, (0.9866, 0.9871, 0.9858))})
    assert table.iloc[0]["pick"] == "fp32_w0.25+int8"
    assert table.iloc[0]["candidates"] == "fp32_w0.25+int8"


def test_no_network_fits_no_question_asked():
    table = _judged(BASE)
    row = table.iloc[0]
    assert pd.isna(row["pick"]) and row["same_flash_verdict"] in ("no interval", "not tested")
    assert "no float or int8 network of this study trained with recipe article fits" in same_flash_sentence(row, title)


def test_a_primary_same_flash_verdict_is_tested_alone_however_many_networks_are_named():
    networks = {**BASE, "fp32_w0.25+int8": ("int8", 0.25, "article", 12.11, (0.9866, 0.9871, 0.9858)),
                "bnn_w2": ("1-bit", 2.0, "article", 55.9, (0.9860, 0.9870, 0.9855))}
    alone = _judged(networks).iloc[0]
    both = _judged(networks, ("bnn", "bnn_w2"))
    assert list(both["one_bit"]) == ["bnn", "bnn_w2"] and (both["same_flash_family_size"] == 1).all()
    assert both.iloc[0]["same_flash_p_adjusted"] == alone["same_flash_p_adjusted"]


def test_the_width_at_which_a_1_bit_gap_is_no_longer_told():
    frontier, _ = _tables({**BASE, "fp32_w0.5+int8": ("int8", 0.5, "article", 29.8, (0.9899, 0.9900, 0.9901)),
                           "bnn_w2": ("1-bit", 2.0, "article", 55.9, (0.9880, 0.9895, 0.9870)),
                           "bnn_w0.5": ("1-bit", 0.5, "article", 8.4, (0.9680, 0.9690, 0.9670))})
    summary = pd.DataFrame({"dataset": "mnist", "variant": ["bnn_w0.5", "bnn", "bnn_w2"],
                            "accuracy_gap_vs_baseline": [-0.022, -0.009, -0.002],
                            "accuracy_gap_verdict": [LOWER, LOWER, NONE], "accuracy_gap_family_size": 15,
                            "accuracy_gap_adj_low": [-0.03, -0.015, -0.012], "accuracy_gap_adj_high": [-0.01, -0.003, 0.008],
                            "accuracy_gap_seeds_needed": [math.nan, math.nan, 12]})
    row = width_match_table(frontier, summary).iloc[0]
    assert row["widths"] == "0.5, 1, 2" and row["width"] == 2 and row["matching_variant"] == "bnn_w2"
    assert row["int8_variant"] == "fp32_w0.5+int8" and row["int8_match_tflite_kib"] == 29.8
    sentence = width_match_sentence(row, "fp32", title)
    # the interval of its verdict and the seeds a verdict would take: "not told" over a wide interval says little
    assert ("from width 2 (`bnn_w2`) its gap to `fp32` is -0.20 pp (simultaneous 99.67% CI -1.20 pp to +0.80 pp), "
            "not told from zero (exploratory; about 12 seeds would give 80% power at this level") in sentence
    assert "`fp32_w0.5+int8` (99.00%), needs 29.80 KiB" in sentence
    # a narrow width whose wide interval merely holds zero, below one told to cost, is no match
    summary["accuracy_gap_verdict"] = [NONE, LOWER, NONE]
    assert width_match_table(frontier, summary).iloc[0]["matching_variant"] == "bnn_w2"
    summary["accuracy_gap_verdict"] = LOWER
    row = width_match_table(frontier, summary).iloc[0]
    assert pd.isna(row["matching_variant"]) and row["accuracy_gap_vs_baseline"] == -0.002
    assert "at every width tried its gap to `fp32` is a cost (the widest still -0.20 pp)" in width_match_sentence(
        row, "fp32", title)


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
        "test_accuracy_mean": [0.9903, 0.9813, 0.9866, 0.98658],
        "tflite_kib": [368.87, 18.80, 27.05, 12.11], "ram_kib": [105.62, 105.62, 26.41, 6.60],
        "runs_at_chance": 0, "seeds": 3})
    assert budget_line(summary, [16, 64, None], 10000) == (
        "≤ 16 KiB: `fp32_w0.25+int8` (98.66%, 12.11 KiB); ≤ 64 KiB: `fp32_w0.25+int8` (98.66%, 12.11 KiB; a tie with "
        "`fp32_w0.25`, the smaller picked); no limit: `fp32` (99.03%, 368.87 KiB)")
    assert budget_line(summary, [8, 32], 10000, "ram_kib") == (
        "≤ 8 KiB: `fp32_w0.25+int8` (98.66%, 6.60 KiB); ≤ 32 KiB: `fp32_w0.25+int8` (98.66%, 6.60 KiB; a tie with "
        "`fp32_w0.25`, the smaller picked)")

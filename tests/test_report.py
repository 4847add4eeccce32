import math

import numpy as np
import pandas as pd
import pytest

from conftest import (
    synthetic_latency, synthetic_predictions, synthetic_profiles, synthetic_runs, write_synthetic_tables,
)
from stages.lib.analysis.accuracy import summary_table
from stages.lib.analysis.article import article_table
from stages.lib.analysis.accuracy import readable_summary
from stages.lib.analysis.budgets import budget_picks
from stages.lib.wording import interval, pct, points
from stages.lib.analysis.article import article_findings
from stages.lib.analysis.deployment import deployment_findings
from stages.lib.analysis.speed import speed_findings
from stages.lib.analysis.judged import judge_tables
from stages.lib.analysis.verdicts import GAP, judge
from stages.report import render


def _summary():
    summary = summary_table(synthetic_runs(), synthetic_profiles(), "fp32", synthetic_latency()).assign(dataset="mnist")
    return judge(summary, GAP, 10000, primary=summary["variant"] == "bnn")


def test_formatting_helpers():
    assert pct(0.98133) == "98.13%"
    assert points(-0.009) == "-0.90 pp"
    assert interval(math.nan, 0.1) == "no interval with a single seed"
    assert interval(0.97, 0.99) == "95% CI 97.00% to 99.00%"
    assert interval(0.97, 0.99, n=3) == "95% CI 97.00% to 99.00%, n = 3 seeds"
    assert interval(math.nan, math.nan, n=3) == "an interval these seeds cannot bound"


def test_sentences_fill_in_the_numbers():
    summary = _summary()
    text = " ".join(deployment_findings(summary) + speed_findings(summary, "fp32")
                    + article_findings(summary, article_table(summary)))
    assert ("`bnn`'s deployed file weighs 18.00 KiB (Larq's count of its weights: 13.19 KiB) and its activations need "
            "105.62 KiB of RAM at peak; 93.03% of its multiply-accumulates run in LCE's binary convolution, the other "
            "6.97% in float operators (CONV_2D 1)") in text
    assert ("`bnn` on this machine's CPU: one image takes 58.4 µs against `fp32`'s 116.7 µs (1 thread, options "
            "bgemm+xnnpack): 2.00x the baseline's speed, paired by round (95% interval within this benchmark run: 2.00x to 2.00x, n = 4 processes), "
            "not told apart from the baseline's speed once adjusted for the family of speed verdicts.") in text
    # the synthetic ratio is 2.00x in every process: no spread, so no t-test (the exact sign-flip test gives p = 2/2^4)
    assert "`bnn`'s profile matches on 5 of 5 figures" in text
    assert ("our mean accuracy 98.20% is +0.07 pp from its single run (98.13%), which lies inside the 95% prediction "
            "interval for one run of ours (97.14% to 98.87%, n = 3 seeds") in text


def test_speed_sentences_give_every_thread_count():
    summary = _summary()
    text = " ".join(speed_findings(summary, "fp32", synthetic_latency()))
    assert ("`bnn` on a test CPU: one image takes 58.4 µs against `fp32`'s 116.7 µs (1 thread, options bgemm+xnnpack): "
            "2.00x the baseline's speed, paired by round (95% interval within this benchmark run: 2.00x to 2.00x, n = 4 processes; Holm-adjusted p "
            "= 0.5 over the 4 speed verdicts), not told apart from the baseline's speed once adjusted for the family of speed "
            "verdicts; at 2 threads, 58.4 µs against 116.7 µs: 2.00x the "
            "baseline's speed") in text


def test_budget_picks():
    summary = _summary()
    picks = budget_picks(summary, [16, 64, None, 1])
    assert picks[0] == "Within 16 KiB of deployed file, no variant of this study fits."
    assert picks[1] == ("Within 64 KiB of deployed file, pick `bnn`: 98.20% mean test accuracy (95% CI 97.73% to 98.57%, "
                        "n = 3 seeds) in a 18.00 KiB file needing 105.62 KiB of RAM.")
    assert picks[2] == ("With no memory limit, pick `fp32`: 99.10% mean test accuracy (95% CI 98.81% to 99.32%, n = 3 "
                        "seeds) in a 370.00 KiB file needing 105.62 KiB of RAM (next best `bnn`, 98.20% in 18.00 KiB).")
    assert picks[3] == "Within 1 KiB of deployed file, no variant of this study fits."


def test_a_variant_over_budget_in_deployed_size_is_never_picked_for_it():
    # bwn: Larq counts 13.19 KiB of weights, but its deployed file is a float graph of 369 KiB
    summary = pd.DataFrame({
        "variant": ["bwn", "bnn"], "memory_kib": [13.19, 13.19], "tflite_kib": [369.1, 18.8], "ram_kib": [105.6, 105.6],
        "validation_accuracy_mean": [0.989, 0.982],
        "test_accuracy_mean": [0.989, 0.982], "test_accuracy_ci95_low": [0.985, 0.975],
        "test_accuracy_ci95_high": [0.993, 0.989], "seeds": [3, 3], "runs_at_chance": [0, 0],
        "architecture": ["bwn", "bnn"], "recipe": ["article"] * 2, "epochs": [6, 6],
    })
    assert budget_picks(summary, [16, 64, 400])[:2] == [
        "Within 16 KiB of deployed file, no variant of this study fits.",
        "Within 64 KiB of deployed file, pick `bnn`: 98.20% mean test accuracy (95% CI 97.50% to 98.90%, n = 3 seeds) "
        "in a 18.80 KiB file needing 105.60 KiB of RAM."]
    assert budget_picks(summary, [400])[0].startswith("Within 400 KiB of deployed file, pick `bwn`")


def test_budget_pick_prefers_the_smaller_on_a_tie_and_says_when_seeds_cannot_tell():
    summary = pd.DataFrame({
        "variant": ["dorefa8", "dorefa4", "bwn"], "memory_kib": [92.73, 47.28, 13.19],
        "tflite_kib": [92.73, 47.28, 13.19], "ram_kib": [100.0, 100.0, 100.0],
        "validation_accuracy_mean": [0.99, 0.99, 0.9893], "test_accuracy_mean": [0.99, 0.99, 0.9893],
        "test_accuracy_ci95_low": [0.9879, 0.9862, 0.9855], "test_accuracy_ci95_high": [0.9921, 0.9938, 0.993],
        "seeds": [3, 3, 3], "runs_at_chance": [0, 0, 0],
        "architecture": ["dorefa8", "dorefa4", "bwn"], "recipe": ["article"] * 3, "epochs": [6] * 3,
    })
    runs = pd.DataFrame({"variant": ["dorefa8"] * 3 + ["dorefa4"] * 3, "seed": [0, 1, 2] * 2,
                         "test_accuracy": [0.989, 0.990, 0.991, 0.988, 0.990, 0.992]})
    # paired differences dorefa8 - dorefa4: +0.001, 0, -0.001: mean 0, s = 0.001
    half = 4.302652729911275 * 0.001 / 3 ** 0.5
    assert budget_picks(summary, [None], runs) == [
        "With no memory limit, pick `dorefa4`: 99.00% mean test accuracy (95% CI 98.62% to 99.38%, n = 3 seeds) in a "
        "47.28 KiB file needing 100.00 KiB of "
        f"RAM (a tie within one validation image with `dorefa8`, 99.00% in 92.73 KiB, the smaller file picked; paired by "
        f"seed +0.00 pp (95% CI {-100 * half:+.2f} pp to "
        f"{100 * half:+.2f} pp, n = 3 seeds): the seeds cannot tell them apart)."]


def test_accuracies_within_one_validation_image_are_a_tie_and_the_smaller_file_is_picked():
    from stages.lib.analysis.budgets import budget_line

    # the committed default study: fp32 ahead of its int8 form by 5e-9, a float rounding, not an image
    summary = pd.DataFrame({
        "variant": ["fp32", "fp32+int8", "bnn"], "tflite_kib": [368.87, 100.87, 18.80], "ram_kib": [105.6, 26.4, 105.6],
        "validation_accuracy_mean": [0.9903333383, 0.9903333333, 0.9813],
        "test_accuracy_mean": [0.9903333383, 0.9903333333, 0.9813], "test_accuracy_ci95_low": [0.988, 0.988, 0.976],
        "test_accuracy_ci95_high": [0.9916, 0.9916, 0.9855], "seeds": [3, 3, 3], "runs_at_chance": [0, 0, 0],
        "architecture": ["fp32", "fp32+int8", "bnn"], "recipe": ["article"] * 3, "epochs": [6] * 3,
    })
    assert budget_picks(summary, [None], images=10000)[0].startswith(
        "With no memory limit, pick `fp32+int8`: 99.03% mean test accuracy")
    assert "(a tie within one validation image with `fp32`, 99.03% in 368.87 KiB, the smaller file picked)" in \
        budget_picks(summary, [None], images=10000)[0]
    assert budget_line(summary, [64, None], 10000) == (
        "≤ 64 KiB: `bnn` (98.13%, 18.80 KiB); no limit: `fp32+int8` (99.03%, 100.87 KiB; a tie with `fp32`, the "
        "smaller picked)")
    # one image apart is no longer a tie
    ahead = summary.assign(validation_accuracy_mean=[0.9904333, 0.9903333, 0.9813])
    assert budget_picks(ahead, [None], images=10000)[0].startswith("With no memory limit, pick `fp32`:")
    # the test accuracies never choose
    assert budget_picks(summary.assign(test_accuracy_mean=[0.9904333, 0.9903333, 0.9813]), [None],
                        images=10000)[0].startswith("With no memory limit, pick `fp32+int8`:")


def test_budget_pick_says_nothing_of_seeds_when_the_paired_gap_excludes_zero():
    summary = _summary()
    picks = budget_picks(summary, [None], synthetic_runs())
    # fp32 - bnn per seed: 0.010, 0.008, 0.009: bnn is worse on every seed
    assert picks[0].endswith("(next best `bnn`, 98.20% in 18.00 KiB; paired by seed -0.90 pp "
                             "(95% CI -1.15 pp to -0.65 pp, n = 3 seeds)).")


def test_readable_summary_and_render(tmp_path):
    summary = _summary()
    table = readable_summary(summary).set_index("variant")
    assert table.loc["bnn", "test accuracy (mean)"] == "98.20%"
    assert table.loc["bnn", "compression"] == "27.77x"
    assert table.loc["bnn", "Pareto"] == "yes"
    assert table.loc["fp32", "accuracy gap (paired)"] == "baseline" and table.loc["fp32", "compression"] == "baseline"
    write_synthetic_tables(tmp_path)
    report, details = render(tmp_path, "plots", "fp32", [64, None])
    assert report.startswith("# What a 1-bit network costs")
    assert "[details.md](details.md)" in report
    assert "![Test accuracy against the memory the weights take](plots/accuracy_vs_memory.png)" in report
    assert "## Speed on a test CPU\n\nMeasured on a test CPU (popcount: scalar POPCNT; LCE: portable reference kernels" \
        in report
    assert "4 fresh processes of 5\nrounds each, one after another" in report
    assert "the binding's overhead (1.0 µs at 1 thread, 1.0 µs at 2 threads)" in report
    assert "At 2 threads on this 2-core machine the interpreter uses every core" in report
    assert "| bnn | 2.00x (2.00x to 2.00x) | 2.00x (2.00x to 2.00x) |" in " ".join(report.split())
    assert "Within 64 KiB of deployed file, pick `bnn`" in report
    assert "![Where binarizing moves the answers" in report
    # every figure once
    for name in ("accuracy_vs_memory", "accuracy_vs_binarized_macs", "accuracy_vs_latency", "flash_vs_ram",
                 "training_curves", "accuracy_by_variant", "confusion_difference", "tax_by_dataset"):
        assert report.count(f"plots/{name}.png)") == 1, name
    # the details: per class, every option set, every run, the profiles
    assert "100.00% (baseline)" in details and "66.67% (-33.33 pp)" in details
    assert "| bnn | 1 | 58.4 (45.3 to 75.3) |" in " ".join(details.split())
    assert "| fp32 | 1 | 116.7 (90.5 to 150.5) | 115.7 (89.6 to 149.6) | baseline |" in " ".join(details.split())
    assert "1-bit: 93088; 32-bit: 468" in details
    assert "## Every run" in details and "## Every run" not in report


def _answer(report):
    """The report's opening screen: from its heading to the next section."""
    return report.split("## The answer\n", 1)[1].split("\n## ", 1)[0]


@pytest.mark.parametrize("datasets", [("mnist",), ("mnist", "fashion_mnist")])
def test_the_answer_fits_one_screen_and_reads_the_tables(tmp_path, datasets):
    write_synthetic_tables(tmp_path, datasets)
    report, _ = render(tmp_path, "plots", "fp32", [16, 64, None], primary=["bnn"])
    answer = _answer(report)
    assert len(answer.strip().splitlines()) + 1 <= 25
    assert answer.count("\n|") <= 2 + len(datasets) + 4  # one small table
    flat = " ".join(answer.split())
    # -0.90 pp paired (synthetic bnn is 0.8-1.0 pp below fp32 on every seed); errors per seed:
    # fp32 0.9%, bnn 1.8%: twice the errors
    assert "| MNIST test accuracy (95% CI, 3 seeds) | 99.10% (98.81% to 99.32%) | 98.20% (97.73% to 98.57%) |" in flat
    assert "-0.90 pp (-1.15 pp to -0.65 pp): a cost;" in flat
    assert "| flash: deployed file | 370.00 KiB | 18.00 KiB | 20.6x smaller |" in flat
    assert "| RAM: peak activations | 105.62 KiB | 105.62 KiB | the same |" in flat
    assert "| latency, 1 thread, a test CPU | 116.7 µs | 58.4 µs | speed 2.00x (2.00x to 2.00x): not told apart |" in flat
    assert "≤ 16 KiB: none fits; ≤ 64 KiB: `bnn` (98.20%, 18.00 KiB); no limit: `fp32` (99.10%, 370.00 KiB)" in flat
    assert "speed was measured on a test CPU" in flat
    if len(datasets) > 1:
        assert "| Fashion-MNIST test accuracy (95% CI, 3 seeds) |" in flat
        assert "on Fashion-MNIST: ≤ 16 KiB: none fits" in flat


def test_the_answer_is_about_the_article_s_1_bit_network_or_the_most_binarized():
    from stages.lib.reporting.answer import headline_variant

    summary = pd.DataFrame({"variant": ["fp32", "bwn", "bnn_full", "bnn"],
                            "binarized_mac_fraction": [0.0, 0.0, 1.0, 0.93], "test_accuracy_mean": [0.99] * 4})
    assert headline_variant(summary, "fp32") == "bnn"
    assert headline_variant(summary[summary["variant"] != "bnn"], "fp32") == "bnn_full"
    assert headline_variant(summary[summary["variant"] == "fp32"], "fp32") is None


def test_the_error_ratio_is_paired_by_seed_on_the_log_scale():
    from stages.lib.analysis.stats import error_ratio

    # 1,000 images: 10 and 20 wrong, 12 and 18, 8 and 22 on three seeds
    first, second = [0.990, 0.988, 0.992], [0.980, 0.982, 0.978]
    logs = [math.log((20.5) / (10.5)), math.log(18.5 / 12.5), math.log(22.5 / 8.5)]
    mean = sum(logs) / 3
    half = 4.302652729911275 * (sum((v - mean) ** 2 for v in logs) / 2) ** 0.5 / 3 ** 0.5
    ratio = error_ratio(second, first, 1000)
    assert ratio.value == pytest.approx(math.exp(mean))
    assert (ratio.low, ratio.high) == pytest.approx((math.exp(mean - half), math.exp(mean + half)))


def test_missing_table_says_how_to_fix(tmp_path):
    from stages.lib.common import StudyError

    with pytest.raises(StudyError, match=r"summary.csv is missing: run `dvc repro aggregate`"):
        render(tmp_path, "plots", "fp32", [None])
    assert not list(tmp_path.iterdir())


def test_a_variant_with_a_run_at_chance_is_never_picked_and_is_named():
    summary = _summary()
    summary.loc[summary.variant == "bnn", "runs_at_chance"] = 1
    picks = budget_picks(summary, [16, None])
    assert picks[0] == ("Never picked, because some of their runs learned nothing (test accuracy not significantly "
                        "above always answering the most frequent class): `bnn` (1 of 3 runs).")
    assert picks[1] == "Within 16 KiB of deployed file, no variant of this study fits."
    assert picks[2].startswith("With no memory limit, pick `fp32`") and "next best" not in picks[2]


def test_a_table_missing_a_column_is_one_line(tmp_path):
    from stages.lib.common import StudyError

    summary = write_synthetic_tables(tmp_path)["summary"]
    summary.drop(columns=["memory_kib"]).to_csv(tmp_path / "summary.csv", index=False)
    with pytest.raises(StudyError, match=r"do not hold what this stage needs \(KeyError: .*memory_kib.*\): rerun"):
        render(tmp_path, "plots", "fp32", [16, None])


def test_class_findings_say_no_class_stands_out_unless_its_adjusted_verdict_says_so():
    from stages.lib.analysis.classes import paired_images_table, per_class_table
    from stages.lib.analysis.classes import class_findings
    from stages.lib.analysis.verdicts import CLASS_GAP

    predictions = synthetic_predictions()
    per_class = per_class_table(predictions, ["fp32", "bnn"], "fp32", tuple("0123456789")).assign(dataset="mnist")
    per_class = judge(per_class, CLASS_GAP, per_class["images"])
    tests = paired_images_table(predictions, ["fp32", "bnn"], "fp32")
    sentences = class_findings(per_class, tests, "fp32")
    assert sentences == [
        "No class stands out for `bnn` against `fp32`: none of its 3 per-class gaps is told from zero once "
        "adjusted over the classes (3 seeds each); on the same 10 test images, all 3 seeds at once, 3 images go "
        "more often to `fp32` and 1 to `bnn` (exact sign test over images, McNemar's test generalized to several "
        "seeds; p = 0.62): it cannot tell these trained networks apart."]
    # a class whose verdict is a loss is named, with the interval the verdict is read from
    bnn_0 = (per_class["variant"] == "bnn") & (per_class["class"] == 0)
    per_class.loc[bnn_0, ["gap_verdict", "gap_adj_low", "gap_adj_high"]] = ["lower", -0.5, -0.2]
    named = class_findings(per_class, tests, "fp32")[0]
    assert named.startswith("The classes on which `bnn` differs from `fp32` (Bonferroni over its 3 classes, "
                            "simultaneous intervals): 0 (loses -33.33 pp (-50.00 pp to -20.00 pp));")


def test_a_study_without_pairs_to_test_renders(tmp_path):
    from stages.lib.analysis.classes import paired_images_table

    tables = write_synthetic_tables(tmp_path)
    # the baseline alone: the paired-images table has its columns and no rows
    paired_images_table(synthetic_predictions().query("variant == 'fp32'"), ["fp32"], "fp32").assign(
        dataset="mnist").to_csv(tmp_path / "paired_images.csv", index=False)
    assert tables["paired_images"].shape[0] == 1
    report, details = render(tmp_path, "plots", "fp32", [None])
    assert "the sign test over the same test images" not in report and "## MNIST: per class" in details


def test_two_datasets_give_the_answer_then_one_section_per_question(tmp_path):
    write_synthetic_tables(tmp_path, ("mnist", "fashion_mnist"))
    report, details = render(tmp_path, "plots", "fp32", [64, None], primary=["bnn"])
    headings = [line for line in report.splitlines() if line.startswith("## ")]
    assert headings == [
        "## The answer", "## What binarizing costs in accuracy", "## Where the cost falls: classes and images",
        "## What it saves: flash, and what it does not: RAM", "## Which variant under a memory budget",
        "## Speed on a test CPU", "## The other way to shrink a network: int8 post-training quantization",
        "## Corrupted inputs: does the 1-bit network break sooner?",
        "## Against the article", "## Training"]
    flat = " ".join(report.split())
    # the two datasets' primaries are one family: Holm over the two
    assert ("On Fashion-MNIST, `bnn` scores -6.90 pp against `fp32`, paired by seed (Holm-step 97.5% CI -7.26 pp to "
            "-6.54 pp, n = 3 seeds): a cost, its whole Holm-step 97.5% CI below zero (primary, Holm over the study's 2 "
            "primaries).") in flat
    assert ("For `bnn`, from MNIST to Fashion-MNIST the gap changes by -6.00 pp (Welch 95% CI -6.23 pp to -5.77 pp, "
            "n = 3 seeds; exploratory, one test, p < 0.001): the gap is wider on Fashion-MNIST.") in flat
    assert " times the cost" not in report
    assert "![The accuracy cost, paired by seed, per dataset](plots/tax_by_dataset.png)" in report
    assert "No class stands out for `bnn` against `fp32`" in details
    assert "our mean accuracy 98.20% is +0.07 pp from its single run (98.13%)" in flat
    assert "Within 64 KiB of deployed file, pick `bnn`: 84.20% mean test accuracy" in report
    assert "on Fashion-MNIST the same networks deploy to files within 0.00 KiB of these" in report
    assert [line for line in details.splitlines() if line.startswith("## ")][:2] == [
        "## MNIST: summary per variant", "## MNIST: per class"]


def test_a_study_without_mnist_says_the_article_is_not_compared(tmp_path):
    tables = write_synthetic_tables(tmp_path, ("fashion_mnist",))
    assert tables["article"].empty
    report, details = render(tmp_path, "plots", "fp32", [None])
    report = " ".join(report.split())
    assert ("The article \"Binary Neural Network Part 2\" by Mohamad Moawad published figures for MNIST only, which "
            "this study leaves out.") in report
    assert "## Fashion-MNIST: per class" in details and "| MNIST test accuracy" not in report


def _with_a_recipe_variant(tmp_path):
    """The synthetic study plus `bnn_cosine`: bnn trained with a cosine
    recipe, 0.5 pp better than bnn on every seed, in three times the time."""
    from stages.lib.analysis.accuracy import summary_table
    from stages.lib.analysis.recipe_effects import recipe_table
    from conftest import synthetic_runs_of

    runs = synthetic_runs_of("mnist")
    cosine = runs[runs["variant"] == "bnn"].assign(
        variant="bnn_cosine", recipe="cosine", epochs=18, train_time_s=180.0,
        test_accuracy=lambda frame: frame["test_accuracy"] + 0.005,
        validation_accuracy=lambda frame: frame["validation_accuracy"] + 0.005)
    runs = pd.concat([runs, cosine], ignore_index=True)
    profiles = synthetic_profiles()
    profiles = pd.concat([profiles, profiles.loc[["bnn"]].rename(index={"bnn": "bnn_cosine"})])
    latency = synthetic_latency()
    latency = pd.concat([latency, latency[latency["variant"] == "bnn"].assign(variant="bnn_cosine")])
    summary = summary_table(runs, profiles, "fp32", latency)
    return summary, runs, recipe_table(summary, runs, "fp32")


def test_recipe_findings_give_the_effect_in_points_never_a_share_of_a_gap(tmp_path):
    from stages.lib.analysis.recipe_effects import recipe_findings
    from stages.lib.analysis.verdicts import RECIPE_EFFECT

    _, _, recipes = _with_a_recipe_variant(tmp_path)
    recipes = judge(recipes.assign(dataset="mnist"), RECIPE_EFFECT, 10000)
    # bnn_cosine is 0.5 pp (50 images) above bnn on every seed: no spread, so no t-test and no verdict
    assert recipe_findings(recipes, "fp32") == [
        "`bnn_cosine` (`bnn` trained with recipe cosine, 18 epochs against `bnn`'s 6): 98.70%, -0.40 pp against "
        "`fp32` (95% CI -0.65 pp to -0.15 pp, n = 3 seeds); against `bnn` (the article's recipe, same seeds) the "
        "recipe changes accuracy by +0.50 pp (the same on every seed): the same number of images on every seed: no "
        "spread for a t-test, and the exact sign-flip test over 3 seeds gives p = 0.25 (exploratory, one test); an "
        "exact test over seeds would need 6 seeds at this level."]


def test_a_recipe_effect_with_a_spread_gets_its_verdict_and_its_interval(tmp_path):
    from stages.lib.analysis.recipe_effects import recipe_findings
    from stages.lib.analysis.verdicts import RECIPE_EFFECT

    _, _, recipes = _with_a_recipe_variant(tmp_path)
    # an effect of +0.50 pp with a spread: 95% interval +0.40 to +0.60 pp over 3 seeds
    spread = recipes.assign(dataset="mnist")
    spread.loc[spread["variant"] == "bnn_cosine", ["effect_ci95_low", "effect_ci95_high", "effect_p_value"]] = \
        [0.004, 0.006, 0.003]
    sentence = recipe_findings(judge(spread, RECIPE_EFFECT, 10000), "fp32")[0]
    assert "the recipe raises accuracy by +0.50 pp (+0.40 pp to +0.60 pp): a gain, its whole 95% CI above zero" in sentence
    assert "recovered" not in sentence and "Fieller" not in sentence


def test_budget_picks_take_each_network_s_best_recipe_and_say_so(tmp_path):
    summary, runs, _ = _with_a_recipe_variant(tmp_path)
    picks = budget_picks(summary, [64, None], runs)
    assert picks[0] == ("Each network competes once, with the best recipe measured for it: `bnn` as `bnn_cosine` "
                        "(recipe cosine, 18 epochs).")
    assert picks[1].startswith("Within 64 KiB of deployed file, pick `bnn_cosine`: 98.70% mean test accuracy")
    # bnn itself is never the runner-up of its own better recipe
    assert "next best" not in picks[1]
    assert "next best `bnn_cosine`" in picks[2]


def _random_study(rng, tmp_path):
    """Tables of a random study, written where `render` reads them: fp32,
    bnn and bnn trained with another recipe, one or two datasets, one to
    five seeds, mean accuracies anywhere from chance to perfect, spreads
    from none to wild; predictions on 40 test images drawn to match."""
    from conftest import synthetic_curves
    from stages.lib.analysis.accuracy import summary_table, tax_change_table
    from stages.lib.analysis.article import article_table
    from stages.lib.analysis.classes import confusion_table, paired_images_table, per_class_table
    from stages.lib.analysis.recipe_effects import recipe_table
    from stages.lib.analysis.robustness_tables import accuracy_table as robustness_accuracy
    from stages.lib.analysis.robustness_tables import gap_table, mce_table
    from stages.lib.data.datasets import DATASETS
    from stages.lib.analysis.tables import of_dataset, per_dataset

    seeds = list(range(int(rng.integers(1, 6))))
    datasets = ("mnist",) if rng.random() < 0.5 else ("mnist", "fashion_mnist")
    template = synthetic_runs().drop_duplicates("variant").set_index("variant")
    variants = {"fp32": "fp32", "bnn": "bnn", "bnn_cosine": "bnn"}
    labels = rng.integers(0, 10, 40)
    runs_rows, prediction_rows = [], []
    for dataset in datasets:
        for variant, network in variants.items():
            mean, spread = rng.uniform(0.05, 0.999), rng.choice([0.0, 0.001, 0.01, 0.2])
            for seed in seeds:
                accuracy = float(np.clip(mean + rng.normal(0, spread), 0.0, 1.0))
                correct = rng.random(len(labels)) < accuracy
                answers = np.where(correct, labels, (labels + rng.integers(1, 10, len(labels))) % 10)
                prediction_rows += [{"dataset": dataset, "variant": variant, "seed": seed, "image": i, "label": int(l),
                                     "predicted": int(a)} for i, (l, a) in enumerate(zip(labels, answers))]
                runs_rows.append({**template.loc[network].to_dict(), "dataset": dataset, "variant": variant,
                                  "seed": seed, "test_accuracy": float(correct.mean()),
                                  "recipe": "cosine" if variant == "bnn_cosine" else "article",
                                  "epochs": 12 if variant == "bnn_cosine" else 6, "architecture": network,
                                  "test_images": len(labels)})
    profiles = synthetic_profiles()
    profiles = pd.concat([profiles, profiles.loc[["bnn"]].rename(index={"bnn": "bnn_cosine"})])
    runs = pd.DataFrame(runs_rows).join(profiles, on="variant")
    predictions = pd.DataFrame(prediction_rows)
    latency = synthetic_latency()
    latency = pd.concat([latency, latency[latency["variant"] == "bnn"].assign(variant="bnn_cosine")])
    names = list(variants)
    summary = per_dataset(datasets, lambda d: summary_table(
        of_dataset(runs, d).drop(columns=list(profiles.columns)), profiles, "fp32", latency))
    paired = per_dataset(datasets, lambda d: paired_images_table(of_dataset(predictions, d), names, "fp32"))
    tables = {
        "runs": runs, "summary": summary, "latency": per_dataset(datasets, lambda d: latency),
        "article": article_table(summary),
        "per_class": per_dataset(datasets, lambda d: per_class_table(
            of_dataset(predictions, d), names, "fp32", DATASETS[d].class_names)),
        "confusion": per_dataset(datasets, lambda d: confusion_table(of_dataset(predictions, d), names)),
        "paired_images": paired,
        "tax_change": tax_change_table(runs, list(datasets), names, "fp32"),
        "recipes": per_dataset(datasets, lambda d: recipe_table(of_dataset(summary, d),
                                                                          of_dataset(runs, d), "fp32")),
        "curves": synthetic_curves(datasets),
    }
    corruptions = ["fog", "stripe", "shear", "inversion"][:int(rng.integers(1, 5))]
    clean = runs.set_index(["dataset", "variant", "seed"])["test_accuracy"]
    evaluations = pd.DataFrame([
        {"dataset": d, "variant": v, "seed": s, "corruption": c, "level": None, "test_images": len(labels),
         "clean_accuracy": clean[(d, v, s)], "accuracy": float(rng.uniform(0.0, clean[(d, v, s)])),
         "deployed_images": len(labels), "deployed_accuracy": 0.5, "deployed_agreement": float(rng.choice([1.0, 0.975]))}
        for d in datasets for v in names for s in seeds for c in corruptions])
    tables["robustness"] = per_dataset(datasets, lambda d: robustness_accuracy(of_dataset(evaluations, d), names))
    tables["robustness_gap"] = per_dataset(datasets, lambda d: gap_table(of_dataset(evaluations, d), names, "fp32"))
    tables["mce"] = per_dataset(datasets, lambda d: mce_table(of_dataset(evaluations, d), names, "fp32"))
    tables["int8"] = per_dataset(datasets, lambda d: _random_int8(rng, of_dataset(summary, d), of_dataset(runs, d)))
    primary = ["bnn"] if rng.random() < 0.5 else []
    for name, table in judge_tables(tables, "fp32", primary).items():
        table.to_csv(tmp_path / f"{name}.csv", index=False)
    return "\n".join(render(tmp_path, "plots", "fp32", [64, None], primary=primary))


def _random_int8(rng, summary, runs):
    """The 1-bit network against a random int8 form of fp32: its accuracy
    fp32's off by a random amount per seed, its latency a random multiple
    of fp32's with a random spread per block."""
    from conftest import synthetic_timings
    from stages.lib.analysis.int8_tables import comparison_table

    base = summary[summary["variant"] == "fp32"]
    fp32 = runs[runs["variant"] == "fp32"]
    shift, spread = rng.uniform(-0.05, 0.05), rng.choice([0.0, 0.002, 0.05])
    int8_runs = fp32.assign(variant="fp32+int8", test_accuracy=np.clip(
        fp32["test_accuracy"] + shift + rng.normal(0, spread, len(fp32)), 0, 1))
    timings = synthetic_timings()
    of_fp32 = timings[timings["variant"] == "fp32"]
    noise = rng.lognormal(0, rng.choice([0.0, 0.05, 0.5]), len(of_fp32))
    timings = pd.concat([timings, of_fp32.assign(variant="fp32+int8",
                                                 latency_us=of_fp32["latency_us"] * rng.uniform(0.2, 3) * noise)])
    return comparison_table(pd.concat([summary, base.assign(variant="fp32+int8", tflite_kib=100.0, ram_kib=26.0)]),
                            pd.concat([runs, int8_runs]), timings, "bnn", "fp32+int8", "bgemm+xnnpack", "a test CPU")


NUMBER = r"([+-]?\d+\.\d+)"


def test_reports_of_random_studies_say_no_more_than_their_numbers(tmp_path):
    import re

    from collections import Counter

    rng = np.random.default_rng(18)
    seen = Counter()
    for attempt in range(25):
        folder = tmp_path / str(attempt)
        folder.mkdir()
        report = _random_study(rng, folder)
        # every printed interval of a percentage lies within what is possible
        # (shares recovered are whole percentages, free to pass 100%, and do not match)
        for low, high in re.findall(rf"{NUMBER}% to {NUMBER}%", report):
            assert 0 <= float(low) <= float(high) <= 100, (low, high)
            seen["percentage interval"] += 1
        for low, high in re.findall(rf"{NUMBER} pp to {NUMBER} pp", report):
            assert -200 <= float(low) <= float(high) <= 200
        # a gap is a cost or a gain only when its printed interval says so
        sentences = re.findall(
            rf"scores {NUMBER} pp against `fp32`, paired by seed \(95% CI {NUMBER} pp to {NUMBER} pp[^)]*\): "
            r"(a cost|a gain|with \d+ seeds it cannot|the same number of images)", report)
        cells = [(value, low, high, verdict.replace("not told from zero", "with seeds it cannot")) for
                 value, low, high, verdict in re.findall(
                     rf"{NUMBER} pp \({NUMBER} pp to {NUMBER} pp\): (a cost|a gain|not told from zero|no verdict)",
                     report)]
        for value, low, high, verdict in sentences + cells:
            value, low, high = float(value), float(low), float(high)
            assert low <= value <= high
            seen[verdict] += 1
            if verdict == "a cost":
                assert high < 0
            elif verdict == "a gain":
                assert low > 0
            elif verdict.startswith("with"):
                assert low <= 0 <= high
        # no verdict from a spread of zero: a comparison the same on every seed is never a cost or a gain
        assert not re.search(r"\(the same on every seed\)[^.;]*: (a cost|a gain|more errors|fewer errors)", report)
        seen["the same on every seed"] += report.count("(the same on every seed)")
        for word, value, low, high in re.findall(
                rf"the recipe (raises|lowers|changes) accuracy by {NUMBER} pp \({NUMBER} pp to {NUMBER} pp\)",
                report):
            assert {"raises": float(low) > 0, "lowers": float(high) < 0,
                    "changes": True}[word], (word, value, low, high)
            seen[word] += 1
        for value, low, high, verdict in re.findall(
                rf"the gap changes by {NUMBER} pp \(Welch [^C]*CI {NUMBER} pp to {NUMBER} pp[^)]*\): "
                r"(the gap is wider|the gap is narrower|the seeds cannot)", report):
            seen[verdict] += 1
            if verdict.endswith("wider"):
                assert float(high) < 0
            elif verdict.endswith("narrower"):
                assert float(low) > 0
        # int8 against the 1-bit network: more accurate or faster only when the printed interval says so
        for value, low, high, verdict in re.findall(
                rf"accuracy: `fp32\+int8` {NUMBER} pp against `bnn`, paired by seed \(95% CI {NUMBER} pp to {NUMBER} pp"
                r"[^)]*\): (`fp32\+int8` more accurate|`bnn` more accurate|the seeds cannot tell them apart)", report):
            seen["int8 " + verdict] += 1
            assert float(low) <= float(value) <= float(high)
            assert {"`fp32+int8` more accurate": float(low) > 0, "`bnn` more accurate": float(high) < 0}.get(
                verdict, float(low) <= 0 <= float(high)), (value, low, high, verdict)
        for value, low, high, verdict in re.findall(
                rf"`fp32\+int8` runs at {NUMBER}x \({NUMBER}x to {NUMBER}x\) `bnn`'s speed \([^)]*\): "
                r"(`fp32\+int8` faster|`bnn` faster|not told apart)", report):
            seen["int8 speed " + verdict] += 1
            assert float(low) <= float(value) <= float(high)
            if verdict == "`fp32+int8` faster":
                assert float(low) > 1
            elif verdict == "`bnn` faster":
                assert float(high) < 1
        # an extra drop under a corruption is named as more or less only when its interval says so
        drop = r"([+-]\d+\.\d) pp \(([+-]\d+\.\d) pp to ([+-]\d+\.\d) pp\)"
        for sentence in re.findall(r"beyond their clean gap on [^\n]*", report):
            worse, _, rest = sentence.partition("; less on ")
            better = rest.partition("; on the other ")[0]
            for value, low, high in re.findall(drop, worse.partition("; on the other ")[0]):
                assert float(low) > 0, sentence
                seen["loses more"] += 1
            for value, low, high in re.findall(drop, better):
                assert float(high) < 0, sentence
                seen["loses less"] += 1
        for value, low, high, verdict in re.findall(
                r"mCE (\d+\.\d+)x \((\d+\.\d+)x to (\d+\.\d+)x\), (more errors|fewer errors|not told from 1.00x)",
                report):
            assert {"more errors": float(low) > 1, "fewer errors": float(high) < 1,
                    "not told from 1.00x": float(low) <= 1 <= float(high)}[verdict], (value, low, high, verdict)
            seen[f"mCE {verdict}"] += 1
        for compression in re.findall(r"(\d+\.\d)x smaller than", report):
            assert float(compression) > 1
        assert "cost on" not in report.replace("The accuracy cost by dataset", "")
        # no ratio of gaps anywhere: no share recovered, no Fieller interval
        assert not re.search(r"gap recovered|Fieller|\d% of `[^`]+`'s", report)
        assert not re.search(r"\d(\.\d+)? times the (cost|gap)", report)
        assert "1.0x smaller" not in report and "0.0% of the memory saved" not in report
    # the checks above were not vacuous: the random studies produced each kind of sentence
    assert {"percentage interval", "a cost", "a gain", "with 2 seeds it cannot", "raises", "lowers", "changes",
            "the gap is wider", "the seeds cannot", "loses more", "mCE not told from 1.00x",
            "int8 `fp32+int8` more accurate", "int8 `bnn` more accurate", "int8 the seeds cannot tell them apart",
            "int8 speed `fp32+int8` faster", "int8 speed `bnn` faster", "int8 speed not told apart"} <= set(seen) | {
                k for k in seen if k.startswith("with")}, seen


def test_within_the_margin_the_smaller_file_is_picked_never_a_larger_one_for_a_difference_nobody_acts_on():
    from stages.lib.analysis.budgets import budget_line

    # a float network 0.05 pp ahead of its int8 form on the validation images: within a 0.5 pp margin, a tie
    summary = pd.DataFrame({
        "variant": ["fp32_w0.25", "fp32_w0.25+int8"], "tflite_kib": [27.05, 12.11], "ram_kib": [26.4, 6.6],
        "validation_accuracy_mean": [0.8800, 0.8795], "test_accuracy_mean": [0.8800, 0.8795], "seeds": [3, 3],
        "runs_at_chance": [0, 0], "architecture": ["fp32_w0.25", "fp32_w0.25+int8"]})
    assert budget_line(summary, [64], 5000) == "≤ 64 KiB: `fp32_w0.25` (88.00%, 27.05 KiB)"
    assert budget_line(summary, [64], 5000, margin_pp=0.5) == (
        "≤ 64 KiB: `fp32_w0.25+int8` (87.95%, 12.11 KiB; a tie with `fp32_w0.25`, the smaller picked)")

"""Stage `report`: ``reports/report.md``, the study's findings in sentences
whose every number is read from the aggregate tables, with the tables and
plots embedded. The sentences that depend on the data are built here; the
document's structure and fixed prose live in ``report.md.j2`` beside this
module, each section led by what it found. The accuracy sections repeat for
each dataset of the study; the networks' sizes and speed, the same on every
dataset, are reported once."""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from stages.lib.tables import ARTICLE_DATASET, OVERHEAD, of_dataset, read_table, table_errors
from stages.lib.common import load_params, log, run_cli, write_text_atomic
from stages.lib.datasets import DATASETS
from stages.lib.params import baseline as checked_baseline
from stages.lib.params import memory_budgets
from stages.lib.stats import ALPHA, direction, paired_difference


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
    :func:`stages.lib.stats.direction`)."""
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
    """``Holm-adjusted p = 0.012 over the 3 <what>``."""
    if pd.isna(p_holm):
        return ""
    return f"Holm-adjusted p {p_text(p_holm)} over the {family} {what}" if family > 1 else f"p {p_text(p_holm)}"


def gap_verdict(gap: float, low: float, high: float, p_holm: float, family: int, seeds: int,
                needed: float = float("nan")) -> str:
    """What a seed-paired gap says, in words that follow its sign, its
    printed bounds and its Holm-adjusted p-value: a cost or a gain only when
    the printed interval lies wholly on one side of zero and the adjusted
    test agrees; otherwise that these seeds cannot tell it from zero, with
    how many seeds a gap this size would need, where that can be
    estimated."""
    if pd.isna(gap) or pd.isna(low):
        return ""
    side = gap_direction(low, high)
    adjusted = holm_clause(p_holm, family, "variants compared")
    if side and (pd.isna(p_holm) or p_holm < ALPHA):
        word = "a cost" if side < 0 else "a gain"
        where = "below" if side < 0 else "above"
        return f"{word}, its whole interval {where} zero" + (f" ({adjusted})" if family > 1 else "")
    if side:
        return (f"its interval excludes zero, but not once Holm-adjusted over the {family} variants compared "
                f"(p {p_text(p_holm)}): no verdict")
    sentence = f"with {seeds} seeds it cannot be told from zero"
    if not pd.isna(needed):
        sentence += f" (a true gap this size would need about {int(needed)} seeds at the measured spread, 80% power)"
    return sentence


def readable_summary(summary: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "variant": summary["variant"],
        "recipe": [f"{recipe}, {epochs} epochs" for recipe, epochs in
                   zip(summary["recipe"], summary["epochs"], strict=True)],
        "seeds": summary["seeds"],
        "test accuracy (mean)": summary["test_accuracy_mean"].map(pct),
        "std": summary["test_accuracy_std"].map(lambda v: points(v).lstrip("+")),
        "95% CI": ci_cells(summary["test_accuracy_ci95_low"], summary["test_accuracy_ci95_high"], pct),
        "params": summary["params_total"].map("{:,}".format),
        "32-bit params": summary["params_32bit"].map("{:,}".format),
        "memory (KiB)": summary["memory_kib"].map("{:.2f}".format),
        "compression": ["baseline" if is_base else "n/a" if pd.isna(v) else f"{v:.2f}x" for is_base, v in
                        zip(summary["is_baseline"], summary["compression_vs_baseline"], strict=True)],
        "MACs": summary["macs_total"].map("{:,}".format),
        "binarized MACs": summary["binarized_mac_fraction"].map(pct),
        "accuracy gap (paired)": ["baseline" if is_base else points(gap) for is_base, gap in
                                  zip(summary["is_baseline"], summary["accuracy_gap_vs_baseline"], strict=True)],
        "gap 95% CI": ["" if is_base else interval(lo, hi, points).removeprefix("95% CI ") for is_base, lo, hi in
                       zip(summary["is_baseline"], summary["accuracy_gap_ci95_low"], summary["accuracy_gap_ci95_high"],
                           strict=True)],
        "gap p (Holm)": summary["accuracy_gap_p_holm"].map(p_cell),
        "runs at chance": summary["runs_at_chance"].map(str),
        "Pareto": summary["on_pareto_frontier"].map({True: "yes", False: ""}),
    })


def _times(value: float) -> str:
    return "n/a" if pd.isna(value) else f"{value:.2f}x"


def _with_interval(value: float, low: float, high: float, fmt) -> str:
    if pd.isna(value):
        return "n/a"
    return fmt(value) + ("" if pd.isna(low) else f" ({fmt(low)} to {fmt(high)})")


def readable_deployment(summary: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "variant": summary["variant"],
        "flash: .tflite (KiB)": summary["tflite_kib"].map("{:.2f}".format),
        "of it weights (KiB)": summary["weights_kib"].map("{:.2f}".format),
        "Larq's weight memory (KiB)": summary["memory_kib"].map("{:.2f}".format),
        "RAM: peak activations (KiB)": summary["ram_kib"].map("{:.2f}".format),
        "MACs in binary operators (deployed)": summary["binary_mac_fraction_deployed"].map(pct),
        "binarized MACs (Larq)": summary["binarized_mac_fraction"].map(pct),
        "operators": summary["operators"],
        "converted accuracy (mean)": summary["converted_accuracy_mean"].map(pct),
        "agreement with Keras (worst)": summary["agreement_min"].map(pct),
    })


def threads_label(threads: int) -> str:
    return f"{threads} thread" + ("" if threads == 1 else "s")


def readable_latency(latency: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """The headline option set at every thread count, overhead model
    included; the baseline's speedups say "baseline"."""
    rows = latency[latency["headline"]]
    is_base = rows["variant"] == baseline

    def speedups(values, lows, highs):
        return ["baseline" if base else _with_interval(v, lo, hi, _times)
                for base, v, lo, hi in zip(is_base, values, lows, highs, strict=True)]

    return pd.DataFrame({
        "variant": rows["variant"],
        "threads": rows["threads"],
        "latency (95% rerun interval) µs": [_with_interval(v, lo, hi, "{:.1f}".format) for v, lo, hi in
                                zip(rows["latency_median_us"], rows["latency_rerun95_low"], rows["latency_rerun95_high"],
                                    strict=True)],
        "minus overhead (µs)": [_with_interval(v, lo, hi, "{:.1f}".format) for v, lo, hi in
                                zip(rows["net_latency_median_us"], rows["net_latency_rerun95_low"],
                                    rows["net_latency_rerun95_high"], strict=True)],
        "speedup, paired by round": speedups(rows["speedup_vs_baseline"], rows["speedup_rerun95_low"],
                                             rows["speedup_rerun95_high"]),
        "p (Holm)": rows["speedup_p_holm"].map(p_cell),
        "speedup minus overhead": speedups(rows["net_speedup_vs_baseline"], rows["net_speedup_rerun95_low"],
                                           rows["net_speedup_rerun95_high"]),
        "effective GMAC/s": rows["effective_macs_per_s"].map(lambda v: "n/a" if pd.isna(v) else f"{v / 1e9:.1f}"),
    })


def latency_by_options(latency: pd.DataFrame) -> pd.DataFrame:
    """Median latency of every (variant, threads) under each option set."""
    table = latency.pivot_table(index=["variant", "threads"], columns="options", values="latency_median_us",
                                sort=False)
    return table.map(lambda v: "not timed" if pd.isna(v) else f"{v:.1f}").reset_index()


def readable_article(article: pd.DataFrame) -> pd.DataFrame:
    def show(figure: str, value: float, signed: bool = False) -> str:
        if figure in ("test_accuracy", "binarized_mac_fraction"):
            return points(value) if signed else pct(value)
        if figure == "memory_kib":
            return f"{value:+.2f}" if signed else f"{value:.2f}"
        return f"{value:+,.0f}" if signed else f"{value:,.0f}"

    return pd.DataFrame({
        "variant": article["variant"],
        "figure": article["figure"],
        "article": [show(f, v) for f, v in zip(article["figure"], article["article"], strict=True)],
        "ours": [show(f, v) for f, v in zip(article["figure"], article["ours"], strict=True)],
        "difference": [show(f, v, signed=True) for f, v in zip(article["figure"], article["difference"], strict=True)],
    })


FLOAT_COMPUTE = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def _bits(row: dict) -> str:
    """How many of a variant's parameters are at 32 bits, in words."""
    if row["params_32bit"] == row["params_total"]:
        return "all at 32 bits"
    return f"{row['params_32bit']:,} of them at 32 bits"


def _speed(row: dict, family: int) -> str:
    """A paired speedup with its interval and what it means: faster or
    slower only when the printed interval lies wholly on one side of 1.00x
    and the Holm-adjusted test over the ``family`` of speed verdicts
    agrees."""
    speed, low, high = row["speedup_vs_baseline"], row["speedup_rerun95_low"], row["speedup_rerun95_high"]
    side = direction(low, high, "{:.2f}", reference=1.0)
    p_holm = row.get("speedup_p_holm", math.nan)
    significant = pd.isna(p_holm) or p_holm < ALPHA
    verdict = ("faster" if side > 0 and significant else "slower" if side < 0 and significant else
               "not told apart from the baseline's speed once adjusted for the family of speed verdicts"
               if side else "not told apart from the baseline's speed")
    processes = row.get("processes")
    shown = interval(low, high, _times, None if pd.isna(processes) else int(processes), "processes",
                     label="95% interval for a rerun:")
    adjusted = holm_clause(p_holm, family, "speed verdicts")
    return (f"{_times(speed)} the baseline's speed, paired by round ({shown}"
            + (f"; {adjusted}" if adjusted and family > 1 else "") + f"), {verdict}")


def deployment_sentence(row: dict) -> str:
    """What the deployed file of one variant holds, with the reason its
    speed can or cannot come from binary operators, read from them."""
    sentence = (f"`{row['variant']}`'s deployed file weighs {row['tflite_kib']:.2f} KiB "
                f"(Larq's count of its weights: {row['memory_kib']:.2f} KiB) and its activations need "
                f"{row['ram_kib']:.2f} KiB of RAM at peak")
    deployed, larq = row["binary_mac_fraction_deployed"], row["binarized_mac_fraction"]
    if deployed > 0:
        sentence += f"; {pct(deployed)} of its multiply-accumulates run in LCE's binary convolution"
        if not math.isclose(deployed, larq, abs_tol=5e-5):
            sentence += f" (Larq counts {pct(larq)} binarized)"
        if deployed < 1:
            floats = [part for part in row["operators"].split(", ") if part.split()[0] in FLOAT_COMPUTE]
            sentence += f", the other {pct(1 - deployed)} in float operators ({', '.join(floats)})"
    elif larq > 0 or row["memory_kib"] < 0.5 * row["tflite_kib"]:
        sentence += (f"; its deployed graph has no binary operator ({row['operators']}): LCE has kernels for "
                     f"binary weights with binary inputs only, so it runs as a float network and stores its "
                     f"weights as floats, whatever Larq counts")
    return sentence + "."


def speed_sentence(row: dict, base: dict, baseline: str, other_threads: pd.DataFrame | None = None,
                   family: int = 1, cpu: str = "this machine's CPU") -> str:
    """How fast one variant runs against the baseline at the headline
    option set, at every thread count timed, on ``cpu``; ``other_threads``:
    its headline rows of the latency table beyond the first thread count,
    with the baseline's latency beside (``baseline_latency_us``);
    ``family``: how many speed verdicts the Holm adjustment covers."""
    sentence = (f"`{row['variant']}` on {cpu}: one image takes {row['latency_median_us']:.1f} µs against "
                f"`{baseline}`'s {base['latency_median_us']:.1f} µs ({threads_label(int(row['latency_threads']))}, "
                f"options {row['latency_options']}): {_speed(row, family)}")
    for other in (other_threads if other_threads is not None else pd.DataFrame()).to_dict("records"):
        sentence += (f"; at {threads_label(int(other['threads']))}, {other['latency_median_us']:.1f} µs against "
                     f"{other['baseline_latency_us']:.1f} µs: {_speed(other, family)}")
    return sentence + "."


def _other_threads(latency: pd.DataFrame | None, variant: str, baseline: str, first: float) -> pd.DataFrame | None:
    if latency is None or pd.isna(first):
        return None
    headline = latency[latency["headline"]]
    base = headline[headline["variant"] == baseline].set_index("threads")["latency_median_us"]
    rows = headline[(headline["variant"] == variant) & (headline["threads"] != first)]
    return rows.assign(baseline_latency_us=rows["threads"].map(base))


def _size_against(row: dict, base: dict, baseline: str) -> str:
    """How much memory a variant's weights take against the baseline's, in
    words that follow the printed figures."""
    compression = row["compression_vs_baseline"]
    saved = 1 - row["memory_kib"] / base["memory_kib"]
    if f"{compression:.1f}" == "1.0":
        return f"the same memory as `{baseline}` to the printed precision"
    if compression > 1:
        return f"{compression:.1f}x smaller than `{baseline}`, {pct(saved, 1)} of the memory saved"
    return f"{1 / compression:.1f}x larger than `{baseline}`, {pct(-saved, 1)} more memory"


def accuracy_findings(summary: pd.DataFrame, baseline: str) -> list[str]:
    """The baseline's accuracy and size; every other variant's size, MACs,
    accuracy and paired gap to the baseline, with its verdict."""
    rows = {row["variant"]: row for row in summary.to_dict("records")}
    base = rows.get(baseline)
    family = int(summary["accuracy_gap_p_value"].notna().sum()) if "accuracy_gap_p_value" in summary else 1
    sentences = []
    if base is not None:
        sentences.append(
            f"The baseline `{baseline}` ({_bits(base)}) reaches {pct(base['test_accuracy_mean'])} test accuracy "
            f"({interval(base['test_accuracy_ci95_low'], base['test_accuracy_ci95_high'], n=base['seeds'])}) "
            f"with {base['params_total']:,} parameters in {base['memory_kib']:.2f} KiB and "
            f"{base['macs_total']:,} multiply-accumulates per image."
        )
    for name, row in rows.items():
        if name == baseline:
            continue
        sentence = (
            f"`{name}` stores its {row['params_total']:,} parameters ({row['params_32bit']:,} of them at 32 bits) "
            f"in {row['memory_kib']:.2f} KiB"
        )
        if base is not None:
            sentence += ": " + _size_against(row, base, baseline)
        sentence += (
            f". {pct(row['binarized_mac_fraction'])} of its {row['macs_total']:,} multiply-accumulates are binarized. "
            f"Its test accuracy is {pct(row['test_accuracy_mean'])} "
            f"({interval(row['test_accuracy_ci95_low'], row['test_accuracy_ci95_high'], n=row['seeds'])})"
        )
        if base is not None and not pd.isna(row["accuracy_gap_vs_baseline"]):
            low, high = row["accuracy_gap_ci95_low"], row["accuracy_gap_ci95_high"]
            sentence += (f", {points(row['accuracy_gap_vs_baseline'])} against `{baseline}` on the same seeds "
                         f"({interval(low, high, points, row['seeds'])})")
            verdict = gap_verdict(row["accuracy_gap_vs_baseline"], low, high, row["accuracy_gap_p_holm"], family,
                                  row["seeds"], row["accuracy_gap_seeds_needed"])
            if verdict:
                sentence += ": " + verdict
        sentences.append(sentence + ".")
    return sentences


def deployment_findings(summary: pd.DataFrame) -> list[str]:
    return [deployment_sentence(row) for row in summary.to_dict("records")]


def speed_findings(summary: pd.DataFrame, baseline: str, latency: pd.DataFrame | None = None) -> list[str]:
    rows = {row["variant"]: row for row in summary.to_dict("records")}
    base = rows.get(baseline)
    if base is None:
        return []
    family = int(latency["speedup_p_value"].notna().sum()) if latency is not None else 1
    cpu = latency["cpu"].iloc[0] if latency is not None and not latency.empty else "this machine's CPU"
    return [speed_sentence(row, base, baseline, _other_threads(latency, name, baseline, row["latency_threads"]),
                           family, cpu)
            for name, row in rows.items() if name != baseline and not pd.isna(row["speedup_vs_baseline"])]


def describe_cpu(latency: pd.DataFrame) -> str:
    """The CPU the benchmark ran on, with its popcount instructions and the
    LCE kernels it ran: ``AMD EPYC (popcount: scalar POPCNT, ...; LCE:
    portable reference kernels, ...)``."""
    first = latency.iloc[0]
    return f"{first['cpu']} (popcount: {first['cpu_popcount']}; LCE: {first['lce_kernels']})"


def article_findings(summary: pd.DataFrame, article: pd.DataFrame) -> list[str]:
    """Our profiles and accuracies against the article's published ones."""
    rows = {row["variant"]: row for row in summary.to_dict("records")}
    sentences = []
    for variant, group in article.groupby("variant", sort=False):
        figures = group.set_index("figure")
        exact = [f for f in figures.index if f != "test_accuracy"
                 and math.isclose(round(figures.at[f, "ours"], 2 if f == "memory_kib" else 4),
                                  figures.at[f, "article"], abs_tol=1e-9)]
        profile_figures = [f for f in figures.index if f != "test_accuracy"]
        accuracy = figures.loc["test_accuracy"] if "test_accuracy" in figures.index else None
        sentence = f"Against the article, `{variant}`'s profile matches on {len(exact)} of {len(profile_figures)} figures"
        if len(exact) < len(profile_figures):
            sentence += f" (differs on {', '.join(f for f in profile_figures if f not in exact)})"
        if accuracy is not None:
            row = rows[variant]
            # one published run against where one more run of ours would fall, not against our mean's interval
            low, high = row["test_accuracy_pi95_low"], row["test_accuracy_pi95_high"]
            inside = not pd.isna(low) and low <= accuracy["article"] <= high
            where = ("no interval with a single seed" if pd.isna(low) else
                     f"which lies {'inside' if inside else 'outside'} the 95% prediction interval for one run of ours "
                     f"({pct(low)} to {pct(high)}, n = {row['seeds']} seeds: mean ± t·s·√(1 + 1/n) on the logit "
                     "scale)")
            sentence += (
                f"; our mean accuracy {pct(accuracy['ours'])} is {points(accuracy['difference'])} from its single run "
                f"({pct(accuracy['article'])}), {where}"
            )
        sentences.append(sentence + ".")
    return sentences


def findings(summary: pd.DataFrame, article: pd.DataFrame, baseline: str,
             latency: pd.DataFrame | None = None) -> list[str]:
    """Every finding of the report, in its order."""
    return (accuracy_findings(summary, baseline) + deployment_findings(summary)
            + speed_findings(summary, baseline, latency) + article_findings(summary, article))


def budget_picks(summary: pd.DataFrame, budgets_kib: Sequence[float | None],
                 runs: pd.DataFrame | None = None) -> list[str]:
    """For each memory budget (None: unlimited), the variant with the best
    mean test accuracy whose deployed file fits in it (the smaller one on a
    tie), and whether the next best can be told apart from it with these
    seeds (from the seed-paired difference of the two, given ``runs``).
    Budgets apply to the file that ships, not to Larq's count of the
    weights, so a variant whose deployed file exceeds a budget is never
    picked for it. A variant with a run at chance level is never picked, and
    is named. Variants that differ only in their recipe deploy to the same
    network: each architecture competes once, with its best recipe
    measured, and the sentence says which."""
    sentences = []
    degenerate = summary[summary["runs_at_chance"] > 0]
    if not degenerate.empty:
        sentences.append("Never picked, because some of their runs learned nothing (test accuracy not significantly "
                         "above always answering the most frequent class): " + ", ".join(
                             f"`{row['variant']}` ({row['runs_at_chance']} of {row['seeds']} runs)"
                             for row in degenerate.to_dict("records")) + ".")
    sound = summary[summary["runs_at_chance"] == 0]
    if sound.empty:
        return sentences + ["Every variant of this study has runs at chance level, so no variant is picked for any "
                            "budget: lower the learning rate or check the data before reading any figure here."]
    best = sound.sort_values(["test_accuracy_mean", "tflite_kib"], ascending=[False, True])
    candidates = best.drop_duplicates("architecture").sort_index()
    several = [architecture for architecture, count in sound["architecture"].value_counts(sort=False).items()
               if count > 1]
    if several:
        chosen = candidates.set_index("architecture")
        sentences.append("Each network competes once, with the best recipe measured for it: " + ", ".join(
            f"`{architecture}` as `{chosen.at[architecture, 'variant']}` (recipe {chosen.at[architecture, 'recipe']}, "
            f"{chosen.at[architecture, 'epochs']} epochs)" for architecture in several if architecture in chosen.index)
            + ".")
    for budget in budgets_kib:
        fitting = candidates if budget is None else candidates[candidates["tflite_kib"] <= budget]
        label = "With no memory limit" if budget is None else f"Within {budget:g} KiB of deployed file"
        if fitting.empty:
            sentences.append(f"{label}, no variant of this study fits.")
            continue
        ranked = fitting.sort_values(["test_accuracy_mean", "tflite_kib"], ascending=[False, True])
        pick = ranked.iloc[0]
        sentence = (f"{label}, pick `{pick['variant']}`: {pct(pick['test_accuracy_mean'])} mean test accuracy "
                    f"({interval(pick['test_accuracy_ci95_low'], pick['test_accuracy_ci95_high'], n=pick['seeds'])}) "
                    f"in a {pick['tflite_kib']:.2f} KiB file needing {pick['ram_kib']:.2f} KiB of RAM")
        if len(ranked) > 1:
            runner_up = ranked.iloc[1]
            sentence += (f" (next best `{runner_up['variant']}`, {pct(runner_up['test_accuracy_mean'])} in "
                         f"{runner_up['tflite_kib']:.2f} KiB")
            if runs is not None:
                by_seed = runs.pivot_table(index="seed", columns="variant", values="test_accuracy")
                gap = paired_difference(by_seed[runner_up["variant"]], by_seed[pick["variant"]])
                if gap.bounded:
                    sentence += f"; paired by seed {points(gap.value)} ({interval(gap.low, gap.high, points, gap.n)})"
                    if not gap_direction(gap.low, gap.high):
                        sentence += ": the seeds cannot tell them apart"
            sentence += ")"
        sentences.append(sentence + ".")
    return sentences


def images_clause(test: dict, variant: str, baseline: str, family: int) -> str:
    """The paired-images test in words: how many of the same test images
    lean to each network over all seeds, the test and its adjusted
    p-value, and whether it tells the two apart."""
    p_holm = test["p_holm"] if "p_holm" in test else test["images_p_holm"]
    apart = p_holm < ALPHA
    return (f"on the same {int(test['images']):,} test images, all {int(test['seeds'])} seeds at once, "
            f"{int(test['baseline_ahead']):,} images go more often to `{baseline}` and "
            f"{int(test['variant_ahead']):,} to `{variant}` (exact sign test over images, McNemar's test generalized "
            f"to several seeds; {holm_clause(p_holm, family, 'variants tested')}): "
            + ("these trained networks answer differently" if apart else "it cannot tell these trained networks apart"))


def class_findings(per_class: pd.DataFrame, paired_images: pd.DataFrame, baseline: str) -> list[str]:
    """Per variant other than the baseline: the classes whose seed-paired
    gap to the baseline is significant once Holm-adjusted over the
    variant's classes (losses first, largest first), or that no class
    stands out; then the paired-images test on the same test images."""
    sentences = []
    tests = paired_images.set_index("variant")
    for variant, group in per_class.groupby("variant", sort=False):
        if variant == baseline or group["gap_vs_baseline"].isna().all():
            continue
        significant = group[(group["gap_p_holm"] < ALPHA)].sort_values("gap_vs_baseline")
        shown = [row for row in significant.to_dict("records")
                 if gap_direction(row["gap_ci95_low"], row["gap_ci95_high"])]
        seeds = int(group["seeds"].max())
        if shown:
            parts = [f"{row['class_name']} ({'loses' if row['gap_vs_baseline'] < 0 else 'gains'} "
                     f"{points(abs(row['gap_vs_baseline'])).lstrip('+')}, "
                     f"{interval(row['gap_ci95_low'], row['gap_ci95_high'], points, seeds)})"
                     for row in shown]
            sentence = (f"The classes on which `{variant}` differs from `{baseline}` once Holm-adjusted over its "
                        f"{len(group)} classes: " + ", ".join(parts))
        else:
            sentence = (f"No class stands out for `{variant}` against `{baseline}`: none of its {len(group)} "
                        f"per-class gaps is significant once Holm-adjusted over the classes ({seeds} seeds each)")
        if variant in tests.index:
            sentence += "; " + images_clause({**tests.loc[variant].to_dict(), "variant": variant}, variant, baseline,
                                             len(tests))
        sentences.append(sentence + ".")
    return sentences


def recipe_findings(recipes: pd.DataFrame, baseline: str) -> list[str]:
    """Per variant trained with another recipe than the article's: its
    accuracy and gap, its effect against its architecture under the
    article's recipe (paired by seed, Holm over the recipe variants), the
    share of that gap it recovers where the gap is told from zero (Fieller's
    interval), at what training cost, and the gap under matched
    recipes."""
    sentences = []
    others = recipes[recipes["recipe"] != "article"]
    family = int(others["effect_p_value"].notna().sum())
    for row in others.to_dict("records"):
        seeds = int(row["seeds"])
        twin = row["article_recipe_variant"]
        sentence = (f"`{row['variant']}` (`{row['architecture']}` trained with recipe {row['recipe']}, "
                    f"{row['epochs']} epochs")
        if not pd.isna(row["time_vs_article_recipe"]):
            sentence += f", {row['time_vs_article_recipe']:.1f}x the training time of `{twin}`"
        sentence += (f"): {pct(row['test_accuracy_mean'])}, {points(row['accuracy_gap_vs_baseline'])} against "
                     f"`{baseline}` ({interval(row['accuracy_gap_ci95_low'], row['accuracy_gap_ci95_high'], points, seeds)})")
        if not pd.isna(row["effect"]):
            side = gap_direction(row["effect_ci95_low"], row["effect_ci95_high"])
            significant = side and row["effect_p_holm"] < ALPHA
            word = ("raises" if side > 0 else "lowers") if significant else "changes"
            sentence += (f"; against `{twin}` (the article's recipe, same seeds) the recipe {word} accuracy by "
                         f"{points(row['effect'])} ({interval(row['effect_ci95_low'], row['effect_ci95_high'], points, seeds)}; "
                         f"{holm_clause(row['effect_p_holm'], family, 'recipe variants')})")
            if not significant:
                sentence += (", whose interval excludes zero but not once Holm-adjusted" if side else
                             ", which these seeds cannot tell from zero")
        if not pd.isna(row["recovered_fraction"]):
            if pd.isna(row["recovered_ci95_low"]):
                share = "an interval that cannot be bounded with these seeds"
            else:
                share = f"95% CI {whole_pct(row['recovered_ci95_low'])} to {whole_pct(row['recovered_ci95_high'])}, Fieller"
            sentence += (f"; that is {whole_pct(row['recovered_fraction'])} of `{twin}`'s "
                         f"{points(row['article_recipe_gap'])} gap recovered ({share})")
        elif not pd.isna(row["effect"]) and not pd.isna(row["article_recipe_gap"]):
            sentence += (f"; no share of `{twin}`'s gap is given: that gap ({points(row['article_recipe_gap'])}, "
                         f"{interval(row['article_recipe_gap_ci95_low'], row['article_recipe_gap_ci95_high'], points, seeds)}) "
                         "is not a cost these seeds tell from zero")
        if isinstance(row["matched_baseline"], str) and row["matched_baseline"]:
            sentence += (f"; against `{row['matched_baseline']}`, trained with the same recipe, the gap is "
                         f"{points(row['matched_gap'])} "
                         f"({interval(row['matched_gap_ci95_low'], row['matched_gap_ci95_high'], points, seeds)})")
        sentences.append(sentence + ".")
    return sentences


def readable_recipes(recipes: pd.DataFrame) -> pd.DataFrame:
    def with_interval(values, lows, highs, fmt):
        return [fmt(v) + ("" if pd.isna(lo) else f" ({fmt(lo)} to {fmt(hi)})") if not pd.isna(v) else "n/a"
                for v, lo, hi in zip(values, lows, highs, strict=True)]

    return pd.DataFrame({
        "variant": recipes["variant"],
        "network": recipes["architecture"],
        "recipe": recipes["recipe"],
        "epochs": recipes["epochs"],
        "accuracy": recipes["test_accuracy_mean"].map(pct),
        "gap to baseline (95% CI)": with_interval(recipes["accuracy_gap_vs_baseline"], recipes["accuracy_gap_ci95_low"],
                                                  recipes["accuracy_gap_ci95_high"], points),
        "training time (s)": recipes["train_time_s_mean"].map("{:.0f}".format),
        "effect of the recipe (95% CI)": with_interval(recipes["effect"], recipes["effect_ci95_low"],
                                                       recipes["effect_ci95_high"], points),
        "effect p (Holm)": recipes["effect_p_holm"].map(p_cell),
        "of the article recipe's gap recovered (Fieller 95% CI)": [
            "" if pd.isna(v) else whole_pct(v) + (" (unbounded)" if pd.isna(lo) else
                                                  f" ({whole_pct(lo)} to {whole_pct(hi)})")
            for v, lo, hi in zip(recipes["recovered_fraction"], recipes["recovered_ci95_low"],
                                 recipes["recovered_ci95_high"], strict=True)],
        "matched baseline": recipes["matched_baseline"].fillna(""),
        "gap under matched recipes (95% CI)": with_interval(recipes["matched_gap"], recipes["matched_gap_ci95_low"],
                                                            recipes["matched_gap_ci95_high"], points),
    })


def title(dataset: str) -> str:
    return DATASETS[dataset].title if dataset in DATASETS else dataset


def change_clause(row: dict) -> str:
    """How a variant's gap changes from the reference dataset to
    ``row['dataset']``: a difference with Welch's interval, larger or
    smaller only when the printed interval and the Holm-adjusted test say
    so."""
    side = gap_direction(row["gap_change_ci95_low"], row["gap_change_ci95_high"])
    significant = side and row["gap_change_p_holm"] < ALPHA
    what = (f"the gap is {'wider' if side < 0 else 'narrower'} on {title(row['dataset'])}" if significant else
            "the seeds cannot tell the gap's change from zero")
    return (f"from {title(row['reference_dataset'])} to {title(row['dataset'])} the gap changes by "
            f"{points(row['gap_change'])} ({interval(row['gap_change_ci95_low'], row['gap_change_ci95_high'], points, int(row['seeds']))}, "
            f"Welch; {holm_clause(row['gap_change_p_holm'], row['family'], 'variants')}): {what}")


def tax_findings(tax: pd.DataFrame, tax_change: pd.DataFrame | None = None) -> list[str]:
    """Per variant, its paired gap to the baseline on every dataset with
    its verdict and the paired-images test, and how the gap changes from
    the first dataset to each other one (a difference, never a ratio)."""
    sentences = []
    changes = tax_change if tax_change is not None else pd.DataFrame(columns=["variant", "dataset"])
    families = changes.groupby("dataset")["gap_change_p_value"].count() if not changes.empty else {}
    gap_families = tax.groupby("dataset")["accuracy_gap_p_holm"].count()
    for variant, group in tax.groupby("variant", sort=False):
        parts = []
        for row in group.to_dict("records"):
            verdict = gap_verdict(row["accuracy_gap_vs_baseline"], row["accuracy_gap_ci95_low"],
                                  row["accuracy_gap_ci95_high"], row["accuracy_gap_p_holm"],
                                  int(gap_families[row["dataset"]]), int(row["seeds"]),
                                  row["accuracy_gap_seeds_needed"])
            part = (f"{points(row['accuracy_gap_vs_baseline'])} on {title(row['dataset'])} "
                    f"({interval(row['accuracy_gap_ci95_low'], row['accuracy_gap_ci95_high'], points, int(row['seeds']))}"
                    + (f"; {verdict}" if verdict else "") + ")")
            parts.append(part)
        sentence = f"`{variant}` against `{group['baseline'].iloc[0]}`, paired by seed: " + "; ".join(parts)
        for row in changes[changes["variant"] == variant].to_dict("records"):
            clause = change_clause({**row, "family": int(families[row["dataset"]])})
            sentence += ". " + clause[0].upper() + clause[1:]
        sentences.append(sentence + ".")
    return sentences


def readable_tax(tax: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "dataset": tax["dataset"].map(title),
        "variant": tax["variant"],
        "seeds": tax["seeds"],
        "baseline accuracy": tax["baseline_accuracy_mean"].map(pct),
        "variant accuracy": tax["test_accuracy_mean"].map(pct),
        "gap (paired)": tax["accuracy_gap_vs_baseline"].map(points),
        "gap 95% CI": ci_cells(tax["accuracy_gap_ci95_low"], tax["accuracy_gap_ci95_high"]),
        "gap p (Holm)": tax["accuracy_gap_p_holm"].map(p_cell),
        "images leaning baseline / variant": [f"{int(b):,} / {int(v):,}" if not pd.isna(b) else "n/a" for b, v in
                                              zip(tax["baseline_ahead"], tax["variant_ahead"], strict=True)],
        "sign test p (Holm)": tax["images_p_holm"].map(p_cell),
    })


def readable_tax_change(changes: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "variant": changes["variant"],
        "from": changes["reference_dataset"].map(title),
        "to": changes["dataset"].map(title),
        "change of the gap": changes["gap_change"].map(points),
        "95% CI (Welch)": ci_cells(changes["gap_change_ci95_low"], changes["gap_change_ci95_high"]),
        "p (Holm)": changes["gap_change_p_holm"].map(p_cell),
    })


def readable_per_class(per_class: pd.DataFrame) -> pd.DataFrame:
    """Per class: each variant's mean accuracy and its seed-paired gap to
    the baseline."""
    table = per_class.assign(
        cell=[f"{pct(a)} ({'baseline' if pd.isna(g) or (g == 0 and lo == 0) else points(g)})"
              for a, g, lo in zip(per_class["accuracy_mean"], per_class["gap_vs_baseline"], per_class["gap_ci95_low"],
                                  strict=True)])
    wide = table.pivot_table(index=["class", "class_name"], columns="variant", values="cell", aggfunc="first",
                             sort=False)
    return wide[list(dict.fromkeys(per_class["variant"]))].reset_index().rename(columns={"class_name": "name"})


PLOTS = (
    ("accuracy_vs_memory.png", "Test accuracy against the memory the weights take"),
    ("accuracy_vs_binarized_macs.png", "Test accuracy against the fraction of binarized multiply-accumulates"),
    ("accuracy_vs_latency.png", "Test accuracy against deployed latency (LCE interpreter, batch 1, headline options)"),
    ("flash_vs_ram.png", "Deployed file (flash) against peak activation memory (RAM)"),
    ("training_curves.png", "Training curves (mean across seeds, Student-t 95% band)"),
    ("accuracy_by_variant.png", "Test accuracy per variant across seeds"),
    ("confusion_difference.png", "Where binarizing moves the answers: confusion matrix minus the baseline's"),
    ("accuracy_vs_training_time.png", "Test accuracy against training time, per recipe"),
)

TABLES = ("summary", "article", "runs", "latency", "per_class", "paired_images", "tax", "tax_change", "recipes")
# no MNIST in the study; the baseline alone; one dataset
MAY_BE_EMPTY = ("article", "paired_images", "tax", "tax_change", "recipes")


def render(tables_dir: str | Path, plots_rel: str, baseline: str, budgets_kib: Sequence[float | None]) -> str:
    tables_dir = Path(tables_dir)
    tables = {name: read_table(tables_dir, name, may_be_empty=name in MAY_BE_EMPTY) for name in TABLES}
    with table_errors(tables_dir):
        return _render(tables, plots_rel, baseline, budgets_kib, Path(tables_dir).as_posix())


TEMPLATE = "report.md.j2"


def benchmark_context(latency: pd.DataFrame) -> dict:
    """The benchmark's machine, settings and overhead, for the method
    paragraph: the overhead once per thread count (every dataset's rows
    carry the same overhead model)."""
    headline = latency[latency["headline"]]
    overhead = headline[headline["variant"] == OVERHEAD].drop_duplicates("threads")
    thread_counts = sorted(int(t) for t in latency["threads"].unique())
    cores = latency["cpu_cores"].iloc[0] if "cpu_cores" in latency else math.nan
    all_cores = [t for t in thread_counts if not pd.isna(cores) and t >= cores]
    return {
        "cpu": describe_cpu(latency),
        "threads": ", ".join(threads_label(t) for t in thread_counts),
        "processes": int(latency["processes"].max()),
        "rounds": int(latency["rounds"].max()),
        "options": headline["options"].iloc[0] if not headline.empty else "n/a",
        "overhead": ", ".join(f"{row['latency_median_us']:.1f} µs at {threads_label(int(row['threads']))}"
                              for row in overhead.to_dict("records")),
        "all_cores": ", ".join(threads_label(t) for t in all_cores),
        "cores": None if pd.isna(cores) else int(cores),
        "family": int(latency["speedup_p_value"].notna().sum()),
    }


def same_files_sentence(summary: pd.DataFrame) -> str:
    """Whether the deployed files weigh the same on every dataset (the
    networks are the same; only their weights' values differ)."""
    datasets = list(dict.fromkeys(summary["dataset"]))
    if len(datasets) < 2:
        return ""
    spread = summary.groupby("variant")[["tflite_kib", "ram_kib"]].agg(lambda v: v.max() - v.min()).max()
    return (f"The figures below are {title(datasets[0])}'s; on {', '.join(title(d) for d in datasets[1:])} the same "
            f"networks deploy to files within {spread['tflite_kib']:.2f} KiB of these and need the same RAM "
            f"(largest difference {spread['ram_kib']:.2f} KiB): only the weights' values differ.")


def dataset_context(dataset: str, tables: dict[str, pd.DataFrame], baseline: str,
                    budgets_kib: Sequence[float | None]) -> dict:
    """Everything the report says about one dataset."""
    of = {name: of_dataset(table, dataset) if "dataset" in table else table for name, table in tables.items()}
    summary, latency = of["summary"], of["latency"]
    return {
        "name": dataset,
        "title": title(dataset),
        "accuracy_findings": accuracy_findings(summary, baseline),
        "budget_picks": budget_picks(summary, budgets_kib, of["runs"]),
        "deployed_frontier": ", ".join(f"`{v}`" for v in summary.loc[summary["on_deployed_pareto_frontier"],
                                                                       "variant"]),
        "larq_frontier": ", ".join(f"`{v}`" for v in summary.loc[summary["on_pareto_frontier"], "variant"]),
        "summary_table": readable_summary(summary).to_markdown(index=False),
        "class_findings": class_findings(of["per_class"], of["paired_images"], baseline),
        "per_class_table": readable_per_class(of["per_class"]).to_markdown(index=False),
        "speed_findings": speed_findings(summary, baseline, latency),
        "recipe_findings": recipe_findings(of["recipes"], baseline),
        "recipes_table": readable_recipes(of["recipes"]).to_markdown(index=False),
        "latency_table": readable_latency(latency, baseline).to_markdown(index=False),
        "options_table": latency_by_options(latency).to_markdown(index=False),
    }


def _render(tables: dict[str, pd.DataFrame], plots_rel: str, baseline: str,
            budgets_kib: Sequence[float | None], tables_path: str = "reports/tables") -> str:
    import jinja2

    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent), trim_blocks=True,
                                     keep_trailing_newline=True, undefined=jinja2.StrictUndefined,
                                     autoescape=False)  # Markdown, not HTML
    summary, article, runs, tax = tables["summary"], tables["article"], tables["runs"], tables["tax"]
    datasets = list(dict.fromkeys(summary["dataset"]))
    first = summary[summary["dataset"] == datasets[0]]
    profiles = first[["variant", "params_by_bitwidth", "memory_kib", "macs_by_precision", "binarized_mac_fraction"]]
    on_article_dataset = summary[summary["dataset"] == ARTICLE_DATASET]
    context = {
        "baseline": baseline,
        "datasets": [dataset_context(dataset, tables, baseline, budgets_kib) for dataset in datasets],
        "tax_findings": tax_findings(tax, tables["tax_change"]),
        "tax_table": readable_tax(tax).to_markdown(index=False) if not tax.empty else "",
        "tax_change_table": (readable_tax_change(tables["tax_change"]).to_markdown(index=False)
                             if not tables["tax_change"].empty else ""),
        "profiles_table": profiles.rename(columns={
            "params_by_bitwidth": "parameters by bit width", "memory_kib": "memory (KiB)",
            "macs_by_precision": "MACs by precision", "binarized_mac_fraction": "binarized MAC fraction",
        }).to_markdown(index=False, floatfmt=".4f"),
        "deployment_findings": deployment_findings(first),
        "same_files": same_files_sentence(summary),
        "deployment_table": readable_deployment(first).to_markdown(index=False),
        "bench": benchmark_context(tables["latency"]),
        "article_dataset": title(ARTICLE_DATASET),
        "article_findings": article_findings(on_article_dataset, article) if not article.empty else [],
        "article_table": readable_article(article).to_markdown(index=False) if not article.empty else "",
        "runs_table": runs.assign(dataset=runs["dataset"].map(title))[
            ["dataset", "variant", "seed", "test_accuracy", "test_loss", "train_time_s", "train_images_per_s"]]
        .to_markdown(index=False, floatfmt=".4f"),
        "plots": PLOTS,
        "plots_rel": plots_rel,
        "tables_path": tables_path,
    }
    return environment.get_template(TEMPLATE).render(context)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="data/spec/report.json", help="the slice of params.yaml it reads")
    parser.add_argument("--tables", default="reports/tables")
    parser.add_argument("--plots", default="reports/plots")
    parser.add_argument("--out", default="reports/report.md")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    baseline, budgets = checked_baseline(params), memory_budgets(params)
    out = Path(args.out)
    plots_rel = Path(os.path.relpath(Path(args.plots).resolve(), out.resolve().parent))
    write_text_atomic(out, render(args.tables, plots_rel.as_posix(), baseline, budgets))
    log.info("report written to %s", out)


if __name__ == "__main__":
    raise SystemExit(run_cli(main))

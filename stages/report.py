"""Stage `report`: ``reports/report.md``, the study's findings in sentences
whose every number is read from the aggregate tables, with the tables and
plots embedded."""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from stages.aggregate import read_table, table_errors
from stages.lib.common import load_params, log, run_cli, write_text_atomic
from stages.lib.params import baseline as checked_baseline
from stages.lib.params import memory_budgets
from stages.lib.stats import t_interval


def pct(fraction: float, digits: int = 2) -> str:
    return "n/a" if pd.isna(fraction) else f"{100 * fraction:.{digits}f}%"


def points(fraction: float, digits: int = 2) -> str:
    """A difference of two accuracies, in percentage points with its sign."""
    return "n/a" if pd.isna(fraction) else f"{100 * fraction:+.{digits}f} pp"


def interval(low: float, high: float, fmt=pct) -> str:
    if pd.isna(low) or pd.isna(high):
        return "no interval with a single seed"
    return f"95% CI {fmt(low)} to {fmt(high)}"


def readable_summary(summary: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "variant": summary["variant"],
        "seeds": summary["seeds"],
        "test accuracy (mean)": summary["test_accuracy_mean"].map(pct),
        "std": summary["test_accuracy_std"].map(lambda v: points(v).lstrip("+")),
        "95% CI": [interval(lo, hi).removeprefix("95% CI ") for lo, hi in
                   zip(summary["test_accuracy_ci95_low"], summary["test_accuracy_ci95_high"], strict=True)],
        "params": summary["params_total"].map("{:,}".format),
        "32-bit params": summary["params_32bit"].map("{:,}".format),
        "memory (KiB)": summary["memory_kib"].map("{:.2f}".format),
        "compression": summary["compression_vs_baseline"].map(lambda v: "n/a" if pd.isna(v) else f"{v:.2f}x"),
        "MACs": summary["macs_total"].map("{:,}".format),
        "binarized MACs": summary["binarized_mac_fraction"].map(pct),
        "accuracy gap (paired)": summary["accuracy_gap_vs_baseline"].map(points),
        "gap 95% CI": [interval(lo, hi, points).removeprefix("95% CI ") for lo, hi in
                       zip(summary["accuracy_gap_ci95_low"], summary["accuracy_gap_ci95_high"], strict=True)],
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


def readable_latency(latency: pd.DataFrame) -> pd.DataFrame:
    """The headline option set at every thread count, overhead model
    included."""
    rows = latency[latency["headline"]]
    return pd.DataFrame({
        "variant": rows["variant"],
        "threads": rows["threads"],
        "latency, median (95% CI) µs": [_with_interval(v, lo, hi, "{:.1f}".format) for v, lo, hi in
                                        zip(rows["latency_median_us"], rows["latency_ci95_low"],
                                            rows["latency_ci95_high"], strict=True)],
        "minus overhead (µs)": [_with_interval(v, lo, hi, "{:.1f}".format) for v, lo, hi in
                                zip(rows["net_latency_median_us"], rows["net_latency_ci95_low"],
                                    rows["net_latency_ci95_high"], strict=True)],
        "speedup, paired by round": [_with_interval(v, lo, hi, _times) for v, lo, hi in
                                     zip(rows["speedup_vs_baseline"], rows["speedup_ci95_low"],
                                         rows["speedup_ci95_high"], strict=True)],
        "speedup minus overhead": [_with_interval(v, lo, hi, _times) for v, lo, hi in
                                   zip(rows["net_speedup_vs_baseline"], rows["net_speedup_ci95_low"],
                                       rows["net_speedup_ci95_high"], strict=True)],
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


def _speed(row: dict) -> str:
    """A paired speedup with its interval and what it means."""
    speed, low, high = row["speedup_vs_baseline"], row["speedup_ci95_low"], row["speedup_ci95_high"]
    verdict = ("faster" if not pd.isna(low) and low > 1 else
               "slower" if not pd.isna(high) and high < 1 else "not told apart from the baseline's speed")
    return f"{_times(speed)} the baseline's speed, paired by round ({interval(low, high, _times)}), {verdict}"


def deployment_sentence(row: dict, base: dict | None, baseline: str,
                        other_threads: pd.DataFrame | None = None) -> str:
    """What the deployed file of one variant holds and how fast it runs,
    with the reason read from its operators; ``other_threads``: its
    headline rows of the latency table at the other thread counts, with the
    baseline's latency beside (``baseline_latency_us``)."""
    sentence = (f"Deployed with Larq Compute Engine, `{row['variant']}`'s file weighs {row['tflite_kib']:.2f} KiB "
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
    if base is not None and row["variant"] != baseline and not pd.isna(row["speedup_vs_baseline"]):
        sentence += (f". One image takes {row['latency_median_us']:.1f} µs against `{baseline}`'s "
                     f"{base['latency_median_us']:.1f} µs ({threads_label(int(row['latency_threads']))}, options "
                     f"{row['latency_options']}): {_speed(row)}")
        for other in (other_threads if other_threads is not None else pd.DataFrame()).to_dict("records"):
            base_latency = other["baseline_latency_us"]
            sentence += (f"; at {threads_label(int(other['threads']))}, {other['latency_median_us']:.1f} µs against "
                         f"{base_latency:.1f} µs: {_speed(other)}")
    return sentence + "."


def _other_threads(latency: pd.DataFrame | None, variant: str, baseline: str, first: float) -> pd.DataFrame | None:
    if latency is None or pd.isna(first):
        return None
    headline = latency[latency["headline"]]
    base = headline[headline["variant"] == baseline].set_index("threads")["latency_median_us"]
    rows = headline[(headline["variant"] == variant) & (headline["threads"] != first)]
    return rows.assign(baseline_latency_us=rows["threads"].map(base))


def findings(summary: pd.DataFrame, article: pd.DataFrame, baseline: str,
             latency: pd.DataFrame | None = None) -> list[str]:
    rows = {row["variant"]: row for row in summary.to_dict("records")}
    base = rows.get(baseline)
    sentences = []
    if base is not None:
        sentences.append(
            f"The baseline `{baseline}` ({_bits(base)}) reaches {pct(base['test_accuracy_mean'])} test accuracy over "
            f"{base['seeds']} seeds ({interval(base['test_accuracy_ci95_low'], base['test_accuracy_ci95_high'])}) "
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
            saved = 1 - row["memory_kib"] / base["memory_kib"]
            sentence += f": {row['compression_vs_baseline']:.1f}x smaller than `{baseline}`, {pct(saved, 1)} of the memory saved"
        sentence += (
            f". {pct(row['binarized_mac_fraction'])} of its {row['macs_total']:,} multiply-accumulates are binarized. "
            f"Its test accuracy is {pct(row['test_accuracy_mean'])} over {row['seeds']} seeds "
            f"({interval(row['test_accuracy_ci95_low'], row['test_accuracy_ci95_high'])})"
        )
        if base is not None and not pd.isna(row["accuracy_gap_vs_baseline"]):
            gap = row["accuracy_gap_vs_baseline"]
            low, high = row["accuracy_gap_ci95_low"], row["accuracy_gap_ci95_high"]
            sentence += (
                f", {points(gap)} against `{baseline}` on the same seeds "
                f"({interval(low, high, points)})"
            )
            if not pd.isna(low) and high < 0:
                sentence += ": a real accuracy cost, the whole interval lies below zero"
            elif not pd.isna(low) and low <= 0 <= high:
                sentence += ": with these seeds the cost cannot be told from zero"
        sentences.append(sentence + ".")
    sentences += [deployment_sentence(row, base, baseline,
                                      _other_threads(latency, name, baseline, row["latency_threads"]))
                  for name, row in rows.items()]
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
                     f"({pct(low)} to {pct(high)}: mean ± t·s·√(1 + 1/n))")
            sentence += (
                f"; our mean accuracy {pct(accuracy['ours'])} is {points(accuracy['difference'])} from its single run "
                f"({pct(accuracy['article'])}), {where}"
            )
        sentences.append(sentence + ".")
    return sentences


def _paired_difference(runs: pd.DataFrame | None, first: str, second: str) -> tuple[float, float, float]:
    """Mean and Student-t interval of ``second`` minus ``first`` test
    accuracy over the seeds both ran."""
    if runs is None:
        return math.nan, math.nan, math.nan
    by_seed = runs.pivot_table(index="seed", columns="variant", values="test_accuracy")
    if first not in by_seed or second not in by_seed:
        return math.nan, math.nan, math.nan
    return t_interval((by_seed[second] - by_seed[first]).dropna())


def budget_picks(summary: pd.DataFrame, budgets_kib: Sequence[float | None],
                 runs: pd.DataFrame | None = None) -> list[str]:
    """For each memory budget (None: unlimited), the variant with the best
    mean test accuracy whose deployed file fits in it (the smaller one on a
    tie), and whether the next best can be told apart from it with these
    seeds (from the seed-paired difference of the two, given ``runs``).
    Budgets apply to the file that ships, not to Larq's count of the
    weights, so a variant whose deployed file exceeds a budget is never
    picked for it. A variant with a run at chance level is never picked, and
    is named."""
    sentences = []
    degenerate = summary[summary["runs_at_chance"] > 0]
    if not degenerate.empty:
        sentences.append("Never picked, because some of their runs learned nothing (test accuracy not significantly "
                         "above always answering the most frequent class): " + ", ".join(
                             f"`{row['variant']}` ({row['runs_at_chance']} of {row['seeds']} runs)"
                             for row in degenerate.to_dict("records")) + ".")
    candidates = summary[summary["runs_at_chance"] == 0]
    for budget in budgets_kib:
        fitting = candidates if budget is None else candidates[candidates["tflite_kib"] <= budget]
        label = "With no memory limit" if budget is None else f"Within {budget:g} KiB of deployed file"
        if fitting.empty:
            sentences.append(f"{label}, no variant of this study fits.")
            continue
        ranked = fitting.sort_values(["test_accuracy_mean", "tflite_kib"], ascending=[False, True])
        pick = ranked.iloc[0]
        sentence = (f"{label}, pick `{pick['variant']}`: {pct(pick['test_accuracy_mean'])} mean test accuracy "
                    f"in a {pick['tflite_kib']:.2f} KiB file needing {pick['ram_kib']:.2f} KiB of RAM")
        if len(ranked) > 1:
            runner_up = ranked.iloc[1]
            sentence += (f" (next best `{runner_up['variant']}`, {pct(runner_up['test_accuracy_mean'])} in "
                         f"{runner_up['tflite_kib']:.2f} KiB")
            gap, low, high = _paired_difference(runs, pick["variant"], runner_up["variant"])
            if not pd.isna(low):
                sentence += f"; paired by seed {points(gap)} ({interval(low, high, points)})"
                if low <= 0 <= high:
                    sentence += ": the seeds cannot tell them apart"
            sentence += ")"
        sentences.append(sentence + ".")
    return sentences


LOSING_CLASSES = 3


def class_findings(per_class: pd.DataFrame, mcnemar: pd.DataFrame, baseline: str) -> list[str]:
    """Per variant other than the baseline: the classes that lose most
    against the baseline (by the mean seed-paired gap), and McNemar's test on
    the same test images, seed by seed."""
    sentences = []
    for variant, group in per_class.groupby("variant", sort=False):
        if variant == baseline or group["gap_vs_baseline"].isna().all():
            continue
        worst = group.sort_values("gap_vs_baseline").head(LOSING_CLASSES)
        parts = [f"{row['class_name']} ({points(row['gap_vs_baseline'])}, "
                 f"{interval(row['gap_ci95_low'], row['gap_ci95_high'], points)})"
                 for row in worst.to_dict("records")]
        sentence = f"The classes `{variant}` loses most against `{baseline}`: " + ", ".join(parts)
        tests = mcnemar[mcnemar["variant"] == variant]
        if not tests.empty:
            seeds = "; ".join(
                f"seed {row['seed']}: {row['baseline_only']:,} images only `{baseline}` gets right, "
                f"{row['variant_only']:,} only `{variant}`, p = {row['p_value']:.2g}"
                for row in tests.to_dict("records"))
            significant = int((tests["p_value"] < 0.05).sum())
            sentence += (f". On the same {int(tests['images'].iloc[0]):,} test images, McNemar's exact test "
                         f"({seeds}) finds the two apart at p < 0.05 in {significant} of {len(tests)} seeds")
        sentences.append(sentence + ".")
    return sentences


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
)

OVERHEAD = "overhead"

RAM_METHOD = (
    "RAM is the peak of activation bytes alive at once during one inference, computed from the converted graph: "
    "liveness over the operators in execution order (a tensor lives from the operator that writes it to the last "
    "that reads it; the input from the start, the output to the end). It is what an ideal planner needs for "
    "activations; it leaves out kernels' scratch buffers (im2col, LCE's bitpacked copies), XNNPACK's repacked "
    "weights, alignment, the interpreter's own structures and the code, and assumes no operator works in place. "
    "Flash is the `.tflite` file without debug names; its weights are the constant data in it."
)


def render(tables_dir: str | Path, plots_rel: str, baseline: str, budgets_kib: Sequence[float | None]) -> str:
    tables_dir = Path(tables_dir)
    summary, article = read_table(tables_dir, "summary"), read_table(tables_dir, "article")
    runs, latency = read_table(tables_dir, "runs"), read_table(tables_dir, "latency")
    per_class = read_table(tables_dir, "per_class")
    mcnemar_path = tables_dir / "mcnemar.csv"
    with table_errors(tables_dir):
        # a study of the baseline alone has no pairs to test: an empty table
        mcnemar = read_table(tables_dir, "mcnemar") if mcnemar_path.is_file() and mcnemar_path.stat().st_size > 1 \
            and len(mcnemar_path.read_text().splitlines()) > 1 else pd.DataFrame(columns=["variant"])
        return _render(summary, article, runs, latency, per_class, mcnemar, plots_rel, baseline, budgets_kib)


def benchmark_method(latency: pd.DataFrame) -> str:
    headline = latency[latency["headline"]]
    overhead = headline[headline["variant"] == OVERHEAD]
    options = headline["options"].iloc[0] if not headline.empty else "n/a"
    threads = ", ".join(threads_label(int(t)) for t in sorted(latency["threads"].unique()))
    text = (
        f"Timed by the `benchmark` stage on {latency['cpu'].iloc[0]}: every deployed model of every seed in one "
        f"process, with LCE's interpreter at batch 1 under each of its four option sets and at {threads}; "
        f"{int(latency['rounds'].max())} rounds, in each of which every combination runs one block of calls in an "
        "order shuffled per round, after a warm-up. A latency is the median across rounds of the block medians "
        "(a variant's seeds averaged within the round), with a distribution-free 95% interval; a speedup is the "
        "baseline's latency over the variant's within each round, paired, and its median across rounds. "
        f"The headline figures use the option set `{options}` (`benchmark.headline_options`), fixed in "
        "params.yaml before measuring, not the fastest of noisy results. Every call goes through LCE's Python "
        "binding; a trivial model with the same input and output (one slice, no weights) timed in the same rounds "
        "measures its overhead"
    )
    if not overhead.empty:
        text += ": " + ", ".join(f"{row['latency_median_us']:.1f} µs at {threads_label(int(row['threads']))}"
                                 for row in overhead.to_dict("records"))
    text += (". LCE's optimized binary kernels target 64-bit Arm; other CPUs run its portable kernels, so "
             "these are this machine's figures, not a datasheet's.")
    cores = latency["cpu_cores"].iloc[0] if "cpu_cores" in latency else None
    busy = [int(t) for t in sorted(latency["threads"].unique()) if not pd.isna(cores) and cores and t >= cores]
    if busy:
        text += (f" At {', '.join(threads_label(t) for t in busy)} on this {int(cores)}-core machine the interpreter "
                 "uses every core, so whatever else runs shares them: those figures depend on the machine's load "
                 "far more than single-thread ones (`benchmarks/deploy_stability.py` measures by how much).")
    return text


def _render(summary: pd.DataFrame, article: pd.DataFrame, runs: pd.DataFrame, latency: pd.DataFrame,
            per_class: pd.DataFrame, mcnemar: pd.DataFrame, plots_rel: str, baseline: str,
            budgets_kib: Sequence[float | None]) -> str:
    larq_frontier = ", ".join(f"`{v}`" for v in summary.loc[summary["on_pareto_frontier"], "variant"])
    deployed_frontier = ", ".join(f"`{v}`" for v in summary.loc[summary["on_deployed_pareto_frontier"], "variant"])
    lines = ["# What a 1-bit network costs and saves against its 32-bit twin", "",
             "Generated by `dvc repro` from the tables in `reports/tables/`; every number below is read from them.",
             "", "## Findings", ""]
    lines += [f"- {s}" for s in findings(summary, article, baseline, latency)]
    lines += [f"- {s}" for s in class_findings(per_class, mcnemar, baseline)]
    lines += ["", "## Which variant under a memory budget", "",
              "Chosen from the measured mean test accuracies, on the size of the deployed file (what a device "
              f"stores), not on Larq's count of the weights. Pareto frontier of accuracy against the deployed file: "
              f"{deployed_frontier}; against Larq's weight memory: {larq_frontier}.", ""]
    lines += [f"- {s}" for s in budget_picks(summary, budgets_kib, runs)]
    lines += ["", "## Summary per variant", "", readable_summary(summary).to_markdown(index=False), "",
              "Compression and accuracy gap are against `" + baseline + "`; the gap's interval comes from the "
              "seed-paired differences (Student t). Memory and Pareto here are Larq's theoretical figures.", "",
              "## Per class", "",
              "Test accuracy on each class, mean over seeds, and in brackets the gap to `" + baseline + "` on the "
              "same class, paired by seed. McNemar's exact test compares two models' answers image by image on the "
              "same test images (the images exactly one of them gets right are fair coins under the null "
              "hypothesis): far more evidence than a few seeds, but about these trained models, not about "
              "retraining; the seed interval above is about retraining.", "",
              readable_per_class(per_class).to_markdown(index=False), "",
              "## Larq profiles", "",
              "Larq counts each multiply-accumulate at the larger bit width of its two inputs and calls only 1-bit "
              "ones binarized. Other widths (2-bit for ternary, k-bit for DoReFa) are listed as Larq reports them; "
              "Larq has no cost model for them, so they are counts, not speeds.", "",
              summary[["variant", "params_by_bitwidth", "memory_kib", "macs_by_precision", "binarized_mac_fraction"]]
              .rename(columns={"params_by_bitwidth": "parameters by bit width", "memory_kib": "memory (KiB)",
                               "macs_by_precision": "MACs by precision",
                               "binarized_mac_fraction": "binarized MAC fraction"})
              .to_markdown(index=False, floatfmt=".4f"), "",
              "## Deployed with Larq Compute Engine: flash, RAM, operators", "",
              RAM_METHOD, "", readable_deployment(summary).to_markdown(index=False), "",
              "## Deployed with Larq Compute Engine: speed", "",
              benchmark_method(latency), "",
              readable_latency(latency).to_markdown(index=False), "",
              "Median latency (µs) under every option set (`bgemm`: LCE's indirect BGEMM kernels; `xnnpack`: "
              "TensorFlow Lite's XNNPACK delegate for float operators); an option set under which a model's "
              "predictions disagree with Keras is not timed:", "",
              latency_by_options(latency).to_markdown(index=False), "",
              "## Against the article", "",
              "The published figures are those of the article \"Binary Neural Network Part 2\" by Mohamad Moawad, "
              "whose two networks follow Larq's MNIST example (\"Introduction to BNNs with Larq\", which shows only "
              "the 1-bit network); its accuracies are single runs.", "",
              readable_article(article).to_markdown(index=False), "",
              "## Every run", "",
              runs[["variant", "seed", "test_accuracy", "test_loss", "train_time_s", "train_images_per_s"]]
              .to_markdown(index=False, floatfmt=".4f"), "", "## Plots", ""]
    for name, title in PLOTS:
        lines += [f"### {title}", "", f"![{title}]({plots_rel}/{name})", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params.yaml")
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

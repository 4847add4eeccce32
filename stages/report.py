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


def readable_deployment(summary: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "variant": summary["variant"],
        ".tflite (KiB)": summary["tflite_kib"].map("{:.2f}".format),
        "converted accuracy (mean)": summary["converted_accuracy_mean"].map(pct),
        "agreement with Keras (worst seed)": summary["agreement_min"].map(lambda v: pct(v, 2)),
        "latency median (µs)": summary["latency_median_us"].map("{:.1f}".format),
        "latency p90 (µs)": summary["latency_p90_us"].map("{:.1f}".format),
        "throughput (images/s)": summary["throughput_images_per_s"].map("{:,.0f}".format),
        "speedup": summary["speedup_vs_baseline"].map(lambda v: "n/a" if pd.isna(v) else f"{v:.2f}x"),
        "fastest interpreter options": summary["best_options"],
    })


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


def findings(summary: pd.DataFrame, article: pd.DataFrame, baseline: str) -> list[str]:
    rows = {row["variant"]: row for row in summary.to_dict("records")}
    base = rows.get(baseline)
    sentences = []
    if base is not None:
        sentences.append(
            f"The 32-bit baseline `{baseline}` reaches {pct(base['test_accuracy_mean'])} test accuracy over "
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
        sentence += (
            f". Deployed with Larq Compute Engine its file weighs {row['tflite_kib']:.2f} KiB"
        )
        if base is not None:
            sentence += (
                f" against {base['tflite_kib']:.2f} KiB ({base['tflite_kib'] / row['tflite_kib']:.1f}x smaller), "
                f"and one image takes {row['latency_median_us']:.1f} µs against {base['latency_median_us']:.1f} µs "
                f"(median, one thread): {row['speedup_vs_baseline']:.2f}x "
                + ("faster" if row["speedup_vs_baseline"] >= 1 else "slower, i.e. no speed-up on this CPU")
            )
        sentences.append(sentence + ".")
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
            inside = (not pd.isna(row["test_accuracy_ci95_low"])
                      and row["test_accuracy_ci95_low"] <= accuracy["article"] <= row["test_accuracy_ci95_high"])
            sentence += (
                f"; our mean accuracy {pct(accuracy['ours'])} is {points(accuracy['difference'])} from its single run "
                f"({pct(accuracy['article'])}), which lies {'inside' if inside else 'outside'} our 95% interval"
            )
        sentences.append(sentence + ".")
    return sentences


def budget_picks(summary: pd.DataFrame, budgets_kib: Sequence[float | None]) -> list[str]:
    """For each memory budget (None: unlimited), the variant with the best
    mean test accuracy whose weights fit in it (the smaller one on a tie),
    and whether the next best can be told apart from it with these seeds.
    A variant with a run at chance level is never picked, and is named."""
    sentences = []
    degenerate = summary[summary["runs_at_chance"] > 0]
    if not degenerate.empty:
        sentences.append("Never picked, because some of their runs learned nothing (test accuracy not significantly "
                         "above always answering the most frequent class): " + ", ".join(
                             f"`{row['variant']}` ({row['runs_at_chance']} of {row['seeds']} runs)"
                             for row in degenerate.to_dict("records")) + ".")
    candidates = summary[summary["runs_at_chance"] == 0]
    for budget in budgets_kib:
        fitting = candidates if budget is None else candidates[candidates["memory_kib"] <= budget]
        label = "With no memory limit" if budget is None else f"Within {budget:g} KiB of weights"
        if fitting.empty:
            sentences.append(f"{label}, no variant of this study fits.")
            continue
        ranked = fitting.sort_values(["test_accuracy_mean", "memory_kib"], ascending=[False, True])
        pick = ranked.iloc[0]
        sentence = (f"{label}, pick `{pick['variant']}`: {pct(pick['test_accuracy_mean'])} mean test accuracy "
                    f"in {pick['memory_kib']:.2f} KiB")
        if len(ranked) > 1:
            runner_up = ranked.iloc[1]
            sentence += (f" (next best `{runner_up['variant']}`, {pct(runner_up['test_accuracy_mean'])} in "
                         f"{runner_up['memory_kib']:.2f} KiB")
            low, high = pick["test_accuracy_ci95_low"], pick["test_accuracy_ci95_high"]
            if not pd.isna(low) and low <= runner_up["test_accuracy_mean"] <= high:
                sentence += ", inside the pick's 95% interval: the seeds cannot tell them apart"
            sentence += ")"
        sentences.append(sentence + ".")
    return sentences


PLOTS = (
    ("accuracy_vs_memory.png", "Test accuracy against the memory the weights take"),
    ("accuracy_vs_binarized_macs.png", "Test accuracy against the fraction of binarized multiply-accumulates"),
    ("accuracy_vs_latency.png", "Test accuracy against deployed latency (LCE interpreter, batch 1, one thread)"),
    ("training_curves.png", "Training curves (mean across seeds, 95% band)"),
    ("accuracy_by_variant.png", "Test accuracy per variant across seeds"),
)


def render(tables_dir: str | Path, plots_rel: str, baseline: str, budgets_kib: Sequence[float | None]) -> str:
    tables_dir = Path(tables_dir)
    summary, article = read_table(tables_dir, "summary"), read_table(tables_dir, "article")
    runs = read_table(tables_dir, "runs")
    with table_errors(tables_dir):
        return _render(summary, article, runs, plots_rel, baseline, budgets_kib)


def _render(summary: pd.DataFrame, article: pd.DataFrame, runs: pd.DataFrame, plots_rel: str, baseline: str,
            budgets_kib: Sequence[float | None]) -> str:
    lines = ["# What a 1-bit network costs and saves against its 32-bit twin", "",
             "Generated by `dvc repro` from the tables in `reports/tables/`; every number below is read from them.",
             "", "## Findings", ""]
    lines += [f"- {s}" for s in findings(summary, article, baseline)]
    lines += ["", "## Which variant under a memory budget", "",
              "Chosen from the measured mean test accuracies; variants on the Pareto frontier of accuracy against "
              "memory: " + ", ".join(f"`{v}`" for v in summary.loc[summary["on_pareto_frontier"], "variant"]) + ".",
              ""]
    lines += [f"- {s}" for s in budget_picks(summary, budgets_kib)]
    lines += ["", "## Summary per variant", "", readable_summary(summary).to_markdown(index=False), "",
              "Compression and accuracy gap are against `" + baseline + "`; the gap's interval comes from the "
              "seed-paired differences (Student t).", "",
              "## Larq profiles", "",
              "Larq counts each multiply-accumulate at the larger bit width of its two inputs and calls only 1-bit "
              "ones binarized. Other widths (2-bit for ternary, k-bit for DoReFa) are listed as Larq reports them; "
              "Larq has no cost model for them, so they are counts, not speeds.", "",
              summary[["variant", "params_by_bitwidth", "memory_kib", "macs_by_precision", "binarized_mac_fraction"]]
              .rename(columns={"params_by_bitwidth": "parameters by bit width", "memory_kib": "memory (KiB)",
                               "macs_by_precision": "MACs by precision",
                               "binarized_mac_fraction": "binarized MAC fraction"})
              .to_markdown(index=False, floatfmt=".4f"), "",
              "## Deployed with Larq Compute Engine", "",
              f"Measured on {runs['cpu'].iloc[0]} with LCE's interpreter, batch 1, one thread; each model's "
              "fastest interpreter options whose predictions agree with Keras. LCE's optimized binary kernels "
              "target 64-bit Arm; other CPUs run its portable kernels, so these are this machine's figures, not a "
              "datasheet's. Latencies include the Python binding's per-call overhead.", "",
              readable_deployment(summary).to_markdown(index=False), "",
              "## Against the article", "", readable_article(article).to_markdown(index=False), "",
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

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

from stages.common import StudyError, log, run_cli, write_text_atomic


def pct(fraction: float, digits: int = 2) -> str:
    return "n/a" if pd.isna(fraction) else f"{100 * fraction:.{digits}f}%"


def points(fraction: float, digits: int = 2) -> str:
    """A difference of two accuracies, in percentage points with its sign."""
    return "n/a" if pd.isna(fraction) else f"{100 * fraction:+.{digits}f} pp"


def interval(low: float, high: float, fmt=pct) -> str:
    if pd.isna(low) or pd.isna(high):
        return "no interval with a single seed"
    return f"95% CI {fmt(low)} to {fmt(high)}"


def _read(tables_dir: Path, name: str) -> pd.DataFrame:
    path = tables_dir / f"{name}.csv"
    try:
        return pd.read_csv(path)
    except FileNotFoundError:
        raise StudyError(f"{path} is missing: run `dvc repro aggregate`") from None


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


PLOTS = (
    ("accuracy_vs_memory.png", "Test accuracy against the memory the weights take"),
    ("accuracy_vs_binarized_macs.png", "Test accuracy against the fraction of binarized multiply-accumulates"),
    ("training_curves.png", "Training curves (mean across seeds, 95% band)"),
    ("accuracy_by_variant.png", "Test accuracy per variant across seeds"),
)


def render(tables_dir: str | Path, plots_rel: str, baseline: str) -> str:
    tables_dir = Path(tables_dir)
    summary, article = _read(tables_dir, "summary"), _read(tables_dir, "article")
    runs = _read(tables_dir, "runs")
    lines = ["# What a 1-bit network costs and saves against its 32-bit twin", "",
             "Generated by `dvc repro` from the tables in `reports/tables/`; every number below is read from them.",
             "", "## Findings", ""]
    lines += [f"- {s}" for s in findings(summary, article, baseline)]
    lines += ["", "## Summary per variant", "", readable_summary(summary).to_markdown(index=False), "",
              "Compression and accuracy gap are against `" + baseline + "`; the gap's interval comes from the "
              "seed-paired differences (Student t).", "",
              "## Against the article", "", readable_article(article).to_markdown(index=False), "",
              "## Every run", "",
              runs[["variant", "seed", "test_accuracy", "test_loss", "train_time_s", "train_images_per_s"]]
              .to_markdown(index=False, floatfmt=".4f"), "", "## Plots", ""]
    for name, title in PLOTS:
        lines += [f"### {title}", "", f"![{title}]({plots_rel}/{name})", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    from stages.common import load_params

    parser = argparse.ArgumentParser(prog="python -m stages.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--tables", default="reports/tables")
    parser.add_argument("--plots", default="reports/plots")
    parser.add_argument("--out", default="reports/report.md")
    args = parser.parse_args(argv)
    baseline = (load_params(args.params).get("aggregate") or {}).get("baseline", "fp32")
    out = Path(args.out)
    plots_rel = Path(os.path.relpath(Path(args.plots).resolve(), out.resolve().parent))
    write_text_atomic(out, render(args.tables, plots_rel.as_posix(), baseline))
    log.info("report written to %s", out)


if __name__ == "__main__":
    raise SystemExit(run_cli(main))

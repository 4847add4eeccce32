"""The reference article, "Binary Neural Network Part 2" by Mohamad Moawad:
its printed profiles and single-run accuracies beside ours, and the
sentences comparing them (our prediction interval for one run)."""

from __future__ import annotations

import math

import pandas as pd

from stages.lib.analysis.tables import ARTICLE_DATASET
from stages.lib.wording import pct, points


# The dataset of the reference article, "Binary Neural Network Part 2" by Mohamad Moawad,
# whose two networks follow Larq's MNIST example ("Introduction to BNNs with
# Larq", which shows only the 1-bit network): the article's printed profiles
# and its single-run test accuracies.
ARTICLE = {
    "fp32": {
        "params_total": 93770, "params_32bit": 93770, "memory_kib": 366.29,
        "macs_total": 2794240, "binarized_mac_fraction": 0.0, "test_accuracy": 0.9906,
    },
    "bnn": {
        "params_total": 93556, "params_32bit": 468, "memory_kib": 13.19,
        "macs_total": 2794240, "binarized_mac_fraction": 0.9303, "test_accuracy": 0.9813,
    },
}


def article_table(summary: pd.DataFrame) -> pd.DataFrame:
    """For each variant the article published: its figure, ours on the
    article's dataset, and the difference (ours minus article); no rows when
    the study leaves that dataset out."""
    ours_column = {"test_accuracy": "test_accuracy_mean"}
    rows = []
    for _, row in summary[summary["dataset"] == ARTICLE_DATASET].iterrows():
        published = ARTICLE.get(row["variant"])
        if published is None:
            continue
        for figure, article_value in published.items():
            ours = float(row[ours_column.get(figure, figure)])
            rows.append({
                "dataset": ARTICLE_DATASET, "variant": row["variant"], "figure": figure,
                "article": article_value, "ours": ours, "difference": ours - article_value,
            })
    return pd.DataFrame(rows, columns=["dataset", "variant", "figure", "article", "ours", "difference"])


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

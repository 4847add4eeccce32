"""The robustness figures the `plots` stage draws: one test image under
every corruption, and the heatmap of each variant's robustness gap against
the baseline (:mod:`stages.lib.analysis.robustness_tables` makes their tables)."""

from __future__ import annotations

import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from stages.lib.analysis.verdicts import HIGHER, LOWER  # noqa: E402
from stages.lib.reporting.figures import title  # noqa: E402


def corruption_examples(examples: pd.DataFrame):
    """Per dataset, rows of up to nine images: its first test image, clean
    and under every corruption, with the corruption's name and level."""
    per_row = 9
    datasets = list(dict.fromkeys(examples["dataset"]))
    shown = {d: examples[examples["dataset"] == d].to_dict("records") for d in datasets}
    rows = sum(-(-len(shown[d]) // per_row) for d in datasets)
    fig, axes = plt.subplots(rows, per_row, figsize=(1.3 * per_row, 1.6 * rows), squeeze=False, layout="constrained")
    slots = iter(axes)
    for dataset in datasets:
        for start in range(0, len(shown[dataset]), per_row):
            row = next(slots)
            for ax, example in zip(row, shown[dataset][start:start + per_row], strict=False):
                pixels = np.array(example["pixels"].split(), dtype=np.uint8).reshape(28, 28)
                ax.imshow(pixels, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
                level = "" if pd.isna(example["level"]) else f" ({int(example['level'])})"
                ax.set_title(example["corruption"].replace("_", " ") + level, fontsize=8)
                ax.set_xticks([])
                ax.set_yticks([])
            for ax in row[len(shown[dataset][start:start + per_row]):]:
                ax.axis("off")
            row[0].set_ylabel(title(dataset), fontsize=9)
    fig.suptitle("One test image under every corruption (level in brackets)", fontsize=10)
    return fig


def robustness_gaps(gaps: pd.DataFrame):
    """One panel per dataset: each variant's robustness gap against the
    baseline on each corruption (its accuracy drop minus the baseline's, in
    percentage points, mean over seeds) and below it the half-width of its
    simultaneous interval (Bonferroni over the variant's corruptions); a star
    marks a gap whose verdict tells it from zero. Only those are coloured:
    a gap whose interval spans zero stays grey, whatever its point estimate,
    so that colour never shows a difference the seeds do not tell. The
    colour scale spans the largest told gap, so none saturates."""
    datasets = list(dict.fromkeys(gaps["dataset"]))
    corruptions = list(dict.fromkeys(gaps["corruption"]))
    variants = list(dict.fromkeys(gaps["variant"]))
    told_gaps = gaps.loc[gaps["robustness_gap_verdict"].isin([HIGHER, LOWER]), "robustness_gap"]
    limit = max(1.0, float(np.nanmax(np.abs(100 * told_gaps), initial=0.0)))
    fig, axes = plt.subplots(len(datasets), 1, figsize=(0.7 * len(corruptions) + 3.6, 0.62 * len(variants) + 2.2),
                             squeeze=False, layout="constrained")
    for ax, dataset in zip(axes[:, 0], datasets, strict=True):
        rows = gaps[gaps["dataset"] == dataset].assign(
            told=lambda frame: frame["robustness_gap_verdict"].isin([HIGHER, LOWER]),
            half=lambda frame: 100 * (frame["robustness_gap_adj_high"] - frame["robustness_gap_adj_low"]) / 2)
        grid = {column: rows.pivot(index="variant", columns="corruption", values=column).loc[variants, corruptions]
                for column in ("robustness_gap", "told", "half")}
        labels = [[f"{round(100 * v):+d}{'*' if star else ''}" + ("" if np.isnan(h) else f"\n±{h:.0f}")
                   for v, star, h in zip(vrow, srow, hrow, strict=True)]
                  for vrow, srow, hrow in zip(*(grid[c].to_numpy() for c in ("robustness_gap", "told", "half")),
                                              strict=True)]
        told = grid["told"].to_numpy(dtype=bool)
        sns.heatmap((100 * grid["robustness_gap"]).where(grid["told"].astype(bool)), ax=ax, cmap="RdBu_r",
                    vmin=-limit, vmax=limit, center=0, annot=np.array(labels), fmt="", annot_kws={"fontsize": 6.5},
                    cbar_kws={"label": "pp", "shrink": 0.9}, linewidths=0.5, linecolor="white")
        ax.set_facecolor("#ececec")  # the cells left uncoloured: not told from zero
        ax.grid(False)
        for i, j in zip(*np.nonzero(~told), strict=True):  # seaborn writes no value in a cell it leaves blank
            ax.text(j + 0.5, i + 0.5, labels[i][j], ha="center", va="center", fontsize=6.5, color="#444444")
        ax.set_xticklabels([c.replace("_", " ") for c in corruptions], rotation=45, ha="right", fontsize=8)
        ax.set_yticklabels(variants, rotation=0, fontsize=8)
        ax.set_xlabel("")
        ax.set_ylabel("")
        seeds = int(rows["seeds"].max())
        ax.set_title(f"{title(dataset)} ({seeds} seed{'s' if seeds != 1 else ''})", fontsize=9)
    fig.suptitle(textwrap.fill(
        f"Extra accuracy drop against {_baseline_of(gaps)} (pp, paired by seed; red: loses more), ± the half-width of "
        "its simultaneous interval over the variant's corruptions; * told from zero, and only those coloured "
        "(grey: not told)", int(fig.get_figwidth() * 13)),
        fontsize=8.5)
    return fig


def _baseline_of(gaps: pd.DataFrame) -> str:
    return str(gaps["baseline"].iloc[0]) if "baseline" in gaps and len(gaps) else "the baseline"

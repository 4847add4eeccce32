"""The robustness figures the `plots` stage draws: one test image under
every corruption, and the heatmap of each variant's robustness gap against
the baseline (:mod:`stages.lib.analysis.robustness_tables` makes their tables)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

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
    percentage points, mean over seeds); a star marks a gap whose interval
    excludes zero and whose Holm-adjusted p-value is below 0.05."""
    datasets = list(dict.fromkeys(gaps["dataset"]))
    corruptions = list(dict.fromkeys(gaps["corruption"]))
    variants = list(dict.fromkeys(gaps["variant"]))
    limit = max(1.0, float(np.nanmax(np.abs(100 * gaps["robustness_gap"]))))
    fig, axes = plt.subplots(len(datasets), 1, figsize=(0.62 * len(corruptions) + 3.2, 0.55 * len(variants) + 1.9),
                             squeeze=False, layout="constrained")
    for ax, dataset in zip(axes[:, 0], datasets, strict=True):
        rows = gaps[gaps["dataset"] == dataset]
        values = rows.pivot(index="variant", columns="corruption", values="robustness_gap").loc[variants, corruptions]
        told = rows.assign(told=(rows["robustness_gap_p_holm"] < 0.05)
                           & ((rows["robustness_gap_ci95_low"] > 0) | (rows["robustness_gap_ci95_high"] < 0)))
        stars = told.pivot(index="variant", columns="corruption", values="told").loc[variants, corruptions]
        labels = [[f"{int(round(100 * v)):+d}" + ("*" if star else "") for v, star in zip(vrow, srow, strict=True)]
                  for vrow, srow in zip(values.to_numpy(), stars.to_numpy(), strict=True)]
        sns.heatmap(100 * values, ax=ax, cmap="RdBu_r", vmin=-limit, vmax=limit, center=0, annot=np.array(labels),
                    fmt="", annot_kws={"fontsize": 7},
                    cbar_kws={"label": "extra drop (pp)", "shrink": 0.9})
        ax.set_xticklabels([c.replace("_", " ") for c in corruptions], rotation=45, ha="right", fontsize=8)
        ax.set_yticklabels(variants, rotation=0, fontsize=8)
        ax.set_xlabel("")
        ax.set_ylabel("")
        seeds = int(rows["seeds"].max())
        ax.set_title(f"{title(dataset)}: accuracy drop from clean minus {_baseline_of(gaps)}'s, paired by seed "
                     f"({seeds} seed{'s' if seeds != 1 else ''}); red: loses more; * Holm p < 0.05", fontsize=9)
    return fig


def _baseline_of(gaps: pd.DataFrame) -> str:
    return str(gaps["baseline"].iloc[0]) if "baseline" in gaps and len(gaps) else "the baseline"

"""Stage `plots`: the study's figures, drawn with seaborn from the aggregate
tables (PNG, readable at 100%). A figure of accuracies has one panel per
dataset: networks are compared only on the dataset they learned.

- ``accuracy_vs_memory.png``: every seed a point, each variant's mean with
  its 95% interval, memory on a log scale, the Pareto frontier dotted;
- ``accuracy_vs_binarized_macs.png``: the same accuracies against the
  fraction of multiply-accumulates that are binarized;
- ``accuracy_vs_latency.png``: the same against the deployed model's
  batch-1 latency in Larq Compute Engine's interpreter (the benchmark's
  headline option set and first thread count), with the 95% interval a
  rerun of the benchmark would land in;
- ``flash_vs_ram.png``: per variant, the deployed file's size (flash)
  against the peak RAM its activations need, beside Larq's theoretical
  weight memory;
- ``training_curves.png``: accuracy and loss per epoch on the training and
  test sets, mean across seeds with the same 95% intervals as the tables
  (accuracy: Student t on the logit scale, never beyond 0-100%; loss:
  Student t), no band for a single seed;
- ``accuracy_by_variant.png``: test accuracy per variant across seeds;
- ``confusion_difference.png``: per (dataset, variant), its confusion matrix
  minus the baseline's (test images, mean over seeds): where binarizing
  moves the answers;
- ``accuracy_vs_training_time.png``: per dataset, every run's test accuracy
  against its training time, colour by architecture, marker by recipe, each
  variant's mean with its 95% interval: what a better recipe costs to train;
- ``tax_by_dataset.png``: the 1-bit tax by dataset: every variant's paired
  accuracy gap to the baseline with its 95% interval, datasets side by side.
"""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from stages.lib.tables import read_table, table_errors  # noqa: E402
from stages.lib.common import atomic_directory, log, run_cli  # noqa: E402
from stages.lib.datasets import DATASETS  # noqa: E402
from stages.lib.stats import accuracy_interval, mean_interval  # noqa: E402

# seaborn 0.13's boxplot still passes matplotlib 3.11 the deprecated `vert`.
warnings.filterwarnings("ignore", category=matplotlib.MatplotlibDeprecationWarning, module="seaborn")
# seaborn 0.13's heatmap still calls the colormap's set_bad, which matplotlib 3.11 plans to retire.
warnings.filterwarnings("ignore", message="The set_bad function", category=PendingDeprecationWarning)

DPI = 110


def _palette(variants: Sequence[str]) -> dict[str, tuple]:
    return dict(zip(variants, sns.color_palette("colorblind", len(variants)), strict=False))


def _log2_x(ax) -> None:
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def _title(dataset: str) -> str:
    return DATASETS[dataset].title if dataset in DATASETS else dataset


def _datasets(summary: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(summary["dataset"]))


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def _accuracy_scatter(runs: pd.DataFrame, summary: pd.DataFrame, x: str, xlabel: str, path: Path,
                      log_x: bool = False, x_scale: float = 1.0, frontier: bool = False,
                      x_interval: tuple[str, str] | None = None) -> None:
    """One panel per dataset, see :func:`_accuracy_panel`."""
    datasets = _datasets(summary)
    palette = _palette(list(dict.fromkeys(summary["variant"])))
    fig, axes = plt.subplots(1, len(datasets), figsize=(7 * len(datasets), 4.5), squeeze=False)
    for ax, dataset in zip(axes.flat, datasets, strict=True):
        _accuracy_panel(ax, runs[runs["dataset"] == dataset], summary[summary["dataset"] == dataset], x, xlabel,
                        palette, log_x, x_scale, frontier, x_interval)
        ax.set_title(_title(dataset))
    _save(fig, path)


def _accuracy_panel(ax, runs: pd.DataFrame, summary: pd.DataFrame, x: str, xlabel: str, palette: dict,
                    log_x: bool, x_scale: float, frontier: bool, x_interval: tuple[str, str] | None) -> None:
    """Every seed a small dot, each variant's mean a diamond with its 95%
    interval (and ``x_interval``'s, if given), on one dataset."""
    variants = list(summary["variant"])
    if x not in runs:  # a per-variant figure: every seed at its variant's x
        runs = runs.merge(summary[["variant", x]], on="variant")
    points = runs.assign(x=runs[x] * x_scale, accuracy_pct=100 * runs["test_accuracy"])
    sns.scatterplot(data=points, x="x", y="accuracy_pct", hue="variant", hue_order=variants,
                    palette={v: palette[v] for v in variants},
                    alpha=0.45, s=40, ax=ax, legend=False)
    for row in summary.to_dict("records"):
        mean = 100 * row["test_accuracy_mean"]
        low, high = 100 * row["test_accuracy_ci95_low"], 100 * row["test_accuracy_ci95_high"]
        has_interval = pd.notna(low)
        xerr = None
        if x_interval and pd.notna(row[x_interval[0]]):
            xerr = [[(row[x] - row[x_interval[0]]) * x_scale], [(row[x_interval[1]] - row[x]) * x_scale]]
        ax.errorbar(row[x] * x_scale, mean, yerr=[[mean - low], [high - mean]] if has_interval else None, xerr=xerr,
                    fmt="D", ms=8, capsize=5, color=palette[row["variant"]], markeredgecolor="black",
                    label=f"{row['variant']}: mean" + (" ± 95% CI" if has_interval else "") + f" ({row['seeds']} seeds)")
    if frontier and "on_pareto_frontier" in summary:
        best = summary[summary["on_pareto_frontier"]].sort_values(x)
        ax.step(best[x] * x_scale, 100 * best["test_accuracy_mean"], where="post", color="black", linestyle=":",
                linewidth=1.2, label="Pareto frontier (mean accuracy vs memory)", zorder=0)
    for row in summary.to_dict("records"):
        ax.annotate(row["variant"], (row[x] * x_scale, 100 * row["test_accuracy_mean"]), textcoords="offset points",
                    xytext=(7, -12), fontsize=8)
    if log_x:
        _log2_x(ax)
    ax.margins(x=0.12)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test accuracy (%)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(title="variant (small dots: single seeds)", loc="best", fontsize=9)


def accuracy_vs_memory(runs, summary, path: Path) -> None:
    _accuracy_scatter(runs, summary, "memory_kib", "model weights in memory (KiB, log scale)", path, log_x=True,
                      frontier=True)


def accuracy_vs_binarized(runs, summary, path: Path) -> None:
    _accuracy_scatter(runs, summary, "binarized_mac_fraction", "binarized multiply-accumulates (% of all MACs)",
                      path, x_scale=100.0)


def accuracy_vs_latency(runs, summary, path: Path) -> None:
    first = summary.dropna(subset=["latency_threads"]).iloc[0]
    threads = f"{int(first['latency_threads'])} thread" + ("" if int(first["latency_threads"]) == 1 else "s")
    _accuracy_scatter(runs, summary, "latency_median_us",
                      f"deployed latency (µs; geometric mean across benchmark processes, 95% rerun interval)\n"
                      f"LCE interpreter, batch 1, {threads}, options {first['latency_options']}", path,
                      x_interval=("latency_rerun95_low", "latency_rerun95_high"))


def flash_vs_ram(summary: pd.DataFrame, path: Path) -> None:
    """From the first dataset's rows: the networks, and so their files'
    sizes and RAM, are the same on every dataset."""
    summary = summary[summary["dataset"] == _datasets(summary)[0]]
    variants = list(summary["variant"])
    palette = _palette(variants)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for row in summary.to_dict("records"):
        color = palette[row["variant"]]
        ax.plot([row["memory_kib"], row["tflite_kib"]], [row["ram_kib"]] * 2, color=color, linewidth=1, alpha=0.6)
        ax.scatter(row["memory_kib"], row["ram_kib"], s=50, facecolors="none", edgecolors=color, linewidths=1.5)
        ax.scatter(row["tflite_kib"], row["ram_kib"], s=70, color=color, edgecolors="black", marker="D",
                   label=row["variant"])
        ax.annotate(row["variant"], (row["tflite_kib"], row["ram_kib"]), textcoords="offset points", xytext=(7, 5),
                    fontsize=8)
    ax.scatter([], [], s=50, facecolors="none", edgecolors="grey", label="Larq's weight memory (theory)")
    _log2_x(ax)
    ax.margins(x=0.15, y=0.15)
    ax.set_xlabel("flash: deployed .tflite file (KiB, log scale)")
    ax.set_ylabel("RAM: peak activations (KiB)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(title="variant (diamond: deployed file)", loc="best", fontsize=8)
    _save(fig, path)


def _band(values: pd.Series, metric: str, images: int) -> tuple[float, float]:
    """The 95% interval of the mean across seeds the tables use: for an
    accuracy in percent, on the logit scale (``images``: how many it was
    measured on); for a loss, Student t."""
    if metric == "accuracy":
        estimate = accuracy_interval(values / 100, images)
        return 100 * estimate.low, 100 * estimate.high
    estimate = mean_interval(values)
    return estimate.low, estimate.high


def training_curves(curves: pd.DataFrame, variants: Sequence[str], images: dict[tuple[str, str], int],
                    path: Path) -> None:
    """``images``: per (dataset, split), how many images an accuracy of that
    split is measured on."""
    long = curves.melt(id_vars=["dataset", "variant", "seed", "epoch", "split"], value_vars=["accuracy", "loss"],
                       var_name="metric", value_name="value")
    long.loc[long["metric"] == "accuracy", "value"] *= 100
    long["raw_dataset"] = long["dataset"]
    long["dataset"] = long["dataset"].map(_title)
    palette = _palette(variants)
    grid = sns.relplot(data=long, kind="line", x="epoch", y="value", hue="variant", hue_order=list(variants),
                       palette=palette, style="split", style_order=["train", "test"], row="metric",
                       col="dataset", errorbar=None, markers=True, dashes=True, height=3.2, aspect=2.0,
                       facet_kws={"sharey": False})
    for (metric, dataset_title), ax in grid.axes_dict.items():
        cell = long[(long["metric"] == metric) & (long["dataset"] == dataset_title)]
        for (variant, split, dataset), group in cell.groupby(["variant", "split", "raw_dataset"], sort=False):
            bands = group.groupby("epoch")["value"].apply(lambda v: _band(v, metric, images[dataset, split]))
            if group["seed"].nunique() > 1:
                ax.fill_between(bands.index, [b[0] for b in bands], [b[1] for b in bands], color=palette[variant],
                                alpha=0.15, linewidth=0)
    for column in range(grid.axes.shape[1]):
        grid.axes[1, column].set_xlabel("epoch")
    grid.axes[0, 0].set_ylabel("accuracy (%)")
    grid.axes[1, 0].set_ylabel("cross-entropy loss")
    grid.set_titles("{col_name}: {row_name} per epoch (mean, 95% band)")
    for ax in grid.axes.flat:
        ax.grid(True, alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    grid.savefig(path, dpi=DPI)
    plt.close(grid.figure)


def accuracy_by_variant(runs: pd.DataFrame, variants: Sequence[str], path: Path) -> None:
    datasets = list(dict.fromkeys(runs["dataset"]))
    fig, axes = plt.subplots(1, len(datasets), figsize=(6 * len(datasets), 4), squeeze=False)
    for ax, dataset in zip(axes.flat, datasets, strict=True):
        of_dataset = runs[runs["dataset"] == dataset]
        _accuracy_boxes(ax, of_dataset.assign(accuracy_pct=100 * of_dataset["test_accuracy"]), variants)
        ax.set_title(_title(dataset))
    _save(fig, path)


def _accuracy_boxes(ax, data: pd.DataFrame, variants: Sequence[str]) -> None:
    sns.boxplot(data=data, x="variant", y="accuracy_pct", order=list(variants), hue="variant", hue_order=list(variants),
                palette=_palette(variants), width=0.5, fliersize=0, boxprops={"alpha": 0.35}, ax=ax, legend=False)
    sns.stripplot(data=data, x="variant", y="accuracy_pct", order=list(variants), hue="variant",
                  hue_order=list(variants), palette=_palette(variants), size=7, jitter=0.08, edgecolor="black",
                  linewidth=0.6, ax=ax, legend=True)
    ax.set_xlabel("precision variant")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(title="variant (one dot per seed)", fontsize=9)


def confusion_difference(confusion: pd.DataFrame, summary: pd.DataFrame, path: Path) -> None:
    """One row of panels per dataset: each variant's matrix minus the
    baseline's (the baseline's own matrix when it is alone)."""
    baseline = summary.loc[summary["is_baseline"], "variant"]
    baseline = baseline.iloc[0] if len(baseline) else None
    panels = []
    for dataset in _datasets(summary):
        of_dataset = confusion[confusion["dataset"] == dataset]
        matrix = {v: g.pivot(index="label", columns="predicted", values="images")
                  for v, g in of_dataset.groupby("variant")}
        variants = list(summary.loc[summary["dataset"] == dataset, "variant"])
        others = [v for v in variants if v != baseline]
        if baseline in matrix and others:
            panels.append([(f"{_title(dataset)}: {v} minus {baseline}", matrix[v] - matrix[baseline]) for v in others])
        else:  # nothing to compare: the first variant's own matrix
            panels.append([(f"{_title(dataset)}: {variants[0]}", matrix[variants[0]])])
    columns = min(max(len(row) for row in panels), 3)
    rows = sum(-(-len(row) // columns) for row in panels)
    fig, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 4.6 * rows), squeeze=False)
    slots = iter(range(rows))
    for row_panels in panels:
        for start in range(0, len(row_panels), columns):
            axis_row = axes[next(slots)]
            for ax, (title, diff) in zip(axis_row, row_panels[start:start + columns], strict=False):
                limit = max(1.0, float(np.abs(diff.to_numpy()).max()))
                sns.heatmap(diff, ax=ax, cmap="RdBu_r", vmin=-limit, vmax=limit, center=0, annot=True, fmt=".1f",
                            annot_kws={"fontsize": 6}, cbar_kws={"label": "test images (mean over seeds)"},
                            square=True)
                ax.set_title(title, fontsize=10)
                ax.set_xlabel("predicted class")
                ax.set_ylabel("true class")
            for ax in axis_row[len(row_panels[start:start + columns]):]:
                ax.axis("off")
    _save(fig, path)


RECIPE_MARKERS = ("o", "s", "^", "v", "P", "X", "*")


def accuracy_vs_training_time(runs: pd.DataFrame, summary: pd.DataFrame, path: Path) -> None:
    datasets = _datasets(summary)
    architectures = list(dict.fromkeys(summary["architecture"]))
    recipes = list(dict.fromkeys(summary["recipe"]))
    colors = _palette(architectures)
    markers = dict(zip(recipes, RECIPE_MARKERS * (1 + len(recipes) // len(RECIPE_MARKERS)), strict=False))
    fig, axes = plt.subplots(1, len(datasets), figsize=(7 * len(datasets), 4.5), squeeze=False)
    for ax, dataset in zip(axes.flat, datasets, strict=True):
        of_runs = runs[runs["dataset"] == dataset]
        for row in summary[summary["dataset"] == dataset].to_dict("records"):
            color, marker = colors[row["architecture"]], markers[row["recipe"]]
            seeds = of_runs[of_runs["variant"] == row["variant"]]
            ax.scatter(seeds["train_time_s"], 100 * seeds["test_accuracy"], color=color, marker=marker, alpha=0.4,
                       s=30)
            mean = 100 * row["test_accuracy_mean"]
            low, high = 100 * row["test_accuracy_ci95_low"], 100 * row["test_accuracy_ci95_high"]
            ax.errorbar(row["train_time_s_mean"], mean, yerr=[[mean - low], [high - mean]] if pd.notna(low) else None,
                        fmt=marker, ms=9, capsize=4, color=color, markeredgecolor="black",
                        label=f"{row['variant']} ({row['recipe']}, {row['epochs']} epochs)")
        _log2_x(ax)
        ax.margins(x=0.15)
        ax.set_xlabel("training time per run (s, log scale)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"{_title(dataset)}: colour = architecture, marker = recipe", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(title="variant (recipe): mean ± 95% CI", fontsize=8)
    _save(fig, path)


def tax_by_dataset(tax: pd.DataFrame, path: Path) -> None:
    """Every variant's seed-paired accuracy gap to the baseline, with its
    Student-t 95% interval, one colour per dataset side by side."""
    datasets = list(dict.fromkeys(tax["dataset"]))
    variants = list(dict.fromkeys(tax["variant"]))
    colors = dict(zip(datasets, sns.color_palette("dark", len(datasets)), strict=False))
    width = 0.7 / max(len(datasets), 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(variants) + 3), 4.5))
    for index, dataset in enumerate(datasets):
        rows = tax[tax["dataset"] == dataset].set_index("variant").reindex(variants)
        x = np.arange(len(variants)) - 0.35 + width * (index + 0.5)
        gap = 100 * rows["accuracy_gap_vs_baseline"].to_numpy()
        low = 100 * rows["accuracy_gap_ci95_low"].to_numpy()
        high = 100 * rows["accuracy_gap_ci95_high"].to_numpy()
        yerr = np.vstack([gap - low, high - gap])
        ax.bar(x, gap, width=width * 0.9, color=colors[dataset], alpha=0.35)
        ax.errorbar(x, gap, yerr=np.where(np.isnan(yerr), 0, yerr), fmt="D", color=colors[dataset], capsize=4,
                    markeredgecolor="black", label=f"{_title(dataset)}")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(np.arange(len(variants)), variants)
    baseline = tax["baseline"].iloc[0] if len(tax) else "the baseline"
    ax.set_xlabel("precision variant")
    ax.set_ylabel(f"test accuracy minus {baseline}'s (pp)")
    ax.set_title("The accuracy cost by dataset: seed-paired gap, mean ± Student-t 95% CI", fontsize=10)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(title="dataset", fontsize=9)
    _save(fig, path)


def draw_all(tables_dir: str | Path, out_dir: str | Path) -> list[str]:
    tables_dir = Path(tables_dir)
    runs = read_table(tables_dir, "runs")
    summary = read_table(tables_dir, "summary")
    curves = read_table(tables_dir, "curves")
    confusion = read_table(tables_dir, "confusion")
    tax = read_table(tables_dir, "tax", may_be_empty=True)
    variants = list(dict.fromkeys(summary["variant"]))
    sns.set_theme(style="whitegrid", context="notebook")
    # seaborn's strip jitter draws from NumPy's global generator: seeded, the
    # same tables give the same PNG bytes anywhere.
    np.random.seed(0)
    with table_errors(tables_dir), atomic_directory(out_dir) as tmp:
        accuracy_vs_memory(runs, summary, tmp / "accuracy_vs_memory.png")
        accuracy_vs_binarized(runs, summary, tmp / "accuracy_vs_binarized_macs.png")
        accuracy_vs_latency(runs, summary, tmp / "accuracy_vs_latency.png")
        flash_vs_ram(summary, tmp / "flash_vs_ram.png")
        images = {(row["dataset"], split): int(row[f"{split}_images"]) for row in runs.to_dict("records")
                  for split in ("train", "test")}
        training_curves(curves, variants, images, tmp / "training_curves.png")
        accuracy_by_variant(runs, variants, tmp / "accuracy_by_variant.png")
        confusion_difference(confusion, summary, tmp / "confusion_difference.png")
        accuracy_vs_training_time(runs, summary, tmp / "accuracy_vs_training_time.png")
        if not tax.empty:
            tax_by_dataset(tax, tmp / "tax_by_dataset.png")
        names = sorted(p.name for p in tmp.iterdir())
    log.info("plots in %s: %s", out_dir, ", ".join(names))
    return names


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.plots", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", default="reports/tables", help="folder written by the aggregate stage")
    parser.add_argument("--out", default="reports/plots")
    args = parser.parse_args(argv)
    draw_all(args.tables, args.out)


if __name__ == "__main__":
    raise SystemExit(run_cli(main))

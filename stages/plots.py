"""Stage `plots`: the study's figures, drawn with seaborn from the aggregate
tables (PNG, readable at 100%). A figure of accuracies has one panel per
dataset: networks are compared only on the dataset they learned. Every
variant keeps one colour (its network) and one marker (its recipe) in every
figure; one legend per figure, outside the panels, says once what the
markers and bars are (stages/lib/reporting/figures.py).

- ``accuracy_vs_memory.png``: every seed a point, each variant's mean with
  its 95% interval, memory on a log scale, the Pareto frontier dotted;
- ``accuracy_vs_binarized_macs.png``: the same accuracies against the
  fraction of multiply-accumulates that are binarized;
- ``accuracy_vs_latency.png``: the same against the deployed model's
  batch-1 latency in Larq Compute Engine's interpreter (the benchmark's
  headline option set and first thread count) on the CPU it names, with the
  95% interval across the benchmark's processes;
- ``flash_vs_ram.png``: per variant, the deployed file's size (flash)
  against the peak RAM its activations need, beside Larq's theoretical
  weight memory;
- ``training_curves.png``: accuracy and loss per epoch on the training and
  validation images, mean across seeds with the same 95% intervals as the tables
  (accuracy: Student t on the logit scale, never beyond 0-100%; loss:
  Student t), no band for a single seed;
- ``accuracy_by_variant.png``: test accuracy per variant, each seed a dot,
  a line joining each seed's runs across the variants (the pairs every gap
  is computed from), each variant's mean with its 95% interval;
- ``confusion_difference.png``: per (dataset, variant), its confusion matrix
  minus the baseline's (test images, mean over seeds), classes by name, one
  colour scale per dataset: where binarizing moves the answers;
- ``tax_by_dataset.png``: the 1-bit tax by dataset: every variant's paired
  accuracy gap to the baseline with the interval its verdict is read from
  (95% for a primary comparison, simultaneous for an exploratory one),
  datasets side by side;
- ``corruption_examples.png``: one test image per dataset, clean and under
  every corruption the study evaluates;
- ``frontier.png`` (when a family has more than one width): per dataset,
  test accuracy against flash, RAM and latency at 1 thread, each precision
  family a line through its widths (stages/lib/analysis/iso_size.py);
- ``robustness_gaps.png``: a heatmap per dataset of each variant's
  robustness gap against the baseline on each corruption (extra accuracy
  drop in percentage points, ± the half-width of its simultaneous interval
  over the variant's corruptions; a star where that interval excludes zero).

Wall-clock training times are not drawn: they follow the machine's load as
much as the recipe (the details file lists them per run).
"""

from __future__ import annotations

import argparse
import textwrap
import warnings
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from stages.lib.common import atomic_directory, log, run_cli  # noqa: E402
from stages.lib.reporting.figures import (  # noqa: E402
    MEAN_MARKER, accuracy_axis, dodge, figure, label_points, legend_outside, log2_x, save, seeds_caption, shifted,
    title, title_beside_legend, variant_handles, variant_styles,
)
from stages.lib.reporting.width_figures import frontier_figure  # noqa: E402
from stages.lib.analysis.iso_size import frontier_table  # noqa: E402
from stages.lib.reporting.robustness_figures import corruption_examples, robustness_gaps  # noqa: E402
from stages.lib.analysis.stats import ALPHA, accuracy_interval, mean_interval  # noqa: E402
from stages.lib.analysis.judged import test_images  # noqa: E402
from stages.lib.data.datasets import DATASETS  # noqa: E402
from stages.lib.forms.registry import form_of, runtime_of  # noqa: E402
from stages.lib.analysis.tables import read_table, table_errors  # noqa: E402
from stages.lib.analysis.verdicts import ROBUSTNESS_GAP, judge  # noqa: E402

# seaborn 0.13's boxplot still passes matplotlib 3.11 the deprecated `vert`.
warnings.filterwarnings("ignore", category=matplotlib.MatplotlibDeprecationWarning, module="seaborn")
# seaborn 0.13's heatmap still calls the colormap's set_bad, which matplotlib 3.11 plans to retire.
warnings.filterwarnings("ignore", message="The set_bad function", category=PendingDeprecationWarning)


def _datasets(summary: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(summary["dataset"]))


def _accuracy_scatter(runs: pd.DataFrame, summary: pd.DataFrame, x: str, xlabel: str, log_x: bool = False,
                      x_scale: float = 1.0, frontier: bool = False, x_interval: tuple[str, str] | None = None):
    """One panel per dataset: every seed a small dot, each variant's mean in
    its colour and marker with its 95% interval (and ``x_interval``'s, if
    given), named beside it where the name fits. Means whose markers would
    hide each other are set side by side (:func:`dodge`), their seeds and
    intervals with them; the legend says so when it happens."""
    datasets = _datasets(summary)
    styles = variant_styles(summary)
    fig, axes = figure(len(datasets))
    panels = []
    # first every panel's scales, limits and labels, and the legend, and the layout they make: markers are set
    # apart in pixels, which the layout decides
    for ax, dataset in zip(axes.flat, datasets, strict=True):
        rows = summary[summary["dataset"] == dataset].reset_index(drop=True)
        seeds = runs[runs["dataset"] == dataset]
        if x not in seeds:  # a per-variant figure: every seed at its variant's x
            seeds = seeds.merge(rows[["variant", x]], on="variant")
        xs, means = rows[x] * x_scale, 100 * rows["test_accuracy_mean"]
        extent_x = [*xs, *(seeds[x] * x_scale)]
        if x_interval:
            extent_x += [*(rows[x_interval[0]].dropna() * x_scale), *(rows[x_interval[1]].dropna() * x_scale)]
        extent_y = [*means, *(100 * seeds["test_accuracy"]), *(100 * rows["test_accuracy_ci95_low"].dropna()),
                    *(100 * rows["test_accuracy_ci95_high"].dropna())]
        ax.update_datalim(np.column_stack([[min(extent_x), max(extent_x)], [min(extent_y), max(extent_y)]]))
        if log_x:
            log2_x(ax)
        ax.margins(x=0.12, y=0.08)
        ax.autoscale_view()
        accuracy_axis(ax)
        ax.set_xlim(ax.get_xlim())
        ax.set_xlabel(xlabel)
        ax.set_ylabel("test accuracy (%, logit scale)")
        ax.set_title(title(dataset))
        ax.grid(True, which="both", alpha=0.3)
        panels.append((ax, rows, seeds, xs, means))
    handles = variant_handles(styles, list(styles))
    if frontier:
        handles.append(Line2D([], [], color="black", linestyle=":", label="Pareto frontier"))
    caption = f"variant: mean and 95% CI\nover {seeds_caption(summary)}\n(small dots: single seeds)"
    legend_outside(fig, handles, caption)
    fig.canvas.draw()
    dodged = False
    for ax, rows, seeds, xs, means in panels:
        offsets = dodge(ax, list(xs), list(means))
        if any(offsets):  # widen the panel to hold the markers set apart, a marker's room beyond them; again
            dodged = True
            y = [means[0], means[0]]
            placed = shifted(ax, list(xs), list(means), np.array(offsets))
            left, right = ax.transData.transform(np.column_stack([[min(placed), max(placed)], y]))[:, 0]
            panel, pad = ax.get_window_extent(), MEAN_MARKER * fig.dpi / 72
            ax.set_xlim(*shifted(ax, ax.get_xlim(), y, np.array([min(0.0, left - pad - panel.x0),
                                                                  max(0.0, right + pad - panel.x1)])))
            offsets = dodge(ax, list(xs), list(means))
        placed = []
        for index, row in rows.iterrows():
            style = styles[row["variant"]]
            of_variant = seeds[seeds["variant"] == row["variant"]]
            move = offsets[index]
            seed_x = shifted(ax, of_variant[x] * x_scale, 100 * of_variant["test_accuracy"], move)
            ax.scatter(seed_x, 100 * of_variant["test_accuracy"], color=style.color, s=14, alpha=0.5, linewidths=0)
            mean = means[index]
            at = float(shifted(ax, [xs[index]], [mean], move)[0])
            placed.append(at)
            low, high = 100 * row["test_accuracy_ci95_low"], 100 * row["test_accuracy_ci95_high"]
            xerr = None
            if x_interval and pd.notna(row[x_interval[0]]):
                edges = shifted(ax, [row[x_interval[0]] * x_scale, row[x_interval[1]] * x_scale], [mean, mean], move)
                xerr = [[at - edges[0]], [edges[1] - at]]
            ax.errorbar(at, mean, yerr=[[mean - low], [high - mean]] if pd.notna(low) else None,
                        xerr=xerr, fmt=style.marker, ms=MEAN_MARKER, capsize=4, color=style.color,
                        markeredgecolor="black")
        if frontier and "on_pareto_frontier" in rows:
            best = rows[rows["on_pareto_frontier"]].sort_values(x)
            ax.step(best[x] * x_scale, 100 * best["test_accuracy_mean"], where="post", color="black",
                    linestyle=":", linewidth=1.2, zorder=0)
        label_points(ax, placed, list(means), list(rows["variant"]))
    if dodged:  # a longer legend title: the legend grows down, the panels keep their width
        fig.legends[0].set_title(caption + "\n(means that would overlap:\nset side by side)")
    return fig


def accuracy_vs_memory(runs, summary):
    return _accuracy_scatter(runs, summary, "memory_kib", "model weights in memory (KiB, log scale)", log_x=True,
                             frontier=True)


def accuracy_vs_binarized(runs, summary):
    return _accuracy_scatter(runs, summary, "binarized_mac_fraction",
                             "binarized multiply-accumulates (% of all MACs)", x_scale=100.0)


def accuracy_vs_latency(runs, summary, cpu: str):
    first = summary.dropna(subset=["latency_threads"]).iloc[0]
    threads = f"{int(first['latency_threads'])} thread" + ("" if int(first["latency_threads"]) == 1 else "s")
    fig = _accuracy_scatter(runs, summary, "latency_median_us", f"latency (µs, batch 1, {threads})",
                            x_interval=("latency_rerun95_low", "latency_rerun95_high"))
    # each form's runtime (LCE's interpreter; LiteRT's for a form LCE cannot run)
    others = sorted({form_of(name).name for name in summary["variant"] if runtime_of(name) != "lce"})
    runtime = "LCE interpreter" + (f"; LiteRT's for {', '.join(others)}" if others else "")
    title_beside_legend(fig, f"Deployed latency on {cpu} ({runtime}, options {first['latency_options']}; "
                             "geometric mean and 95% interval across the processes of one benchmark run)")
    return fig


def flash_vs_ram(summary: pd.DataFrame):
    """From the first dataset's rows: the networks, and so their files'
    sizes and RAM, are the same on every dataset."""
    styles = variant_styles(summary)
    summary = summary[summary["dataset"] == _datasets(summary)[0]]
    fig, axes = figure(1, width=7.0)
    ax = axes[0, 0]
    for row in summary.to_dict("records"):
        style = styles[row["variant"]]
        ax.plot([row["memory_kib"], row["tflite_kib"]], [row["ram_kib"]] * 2, color=style.color, linewidth=1,
                alpha=0.6)
        ax.scatter(row["memory_kib"], row["ram_kib"], s=50, facecolors="none", edgecolors=style.color,
                   linewidths=1.5, marker=style.marker)
        ax.scatter(row["tflite_kib"], row["ram_kib"], s=70, color=style.color, edgecolors="black",
                   marker=style.marker)
    log2_x(ax)
    ax.margins(x=0.15, y=0.15)
    ax.set_xlabel("flash: deployed .tflite file (KiB, log scale)")
    ax.set_ylabel("RAM: peak activations (KiB)")
    ax.grid(True, which="both", alpha=0.3)
    label_points(ax, list(summary["tflite_kib"]), list(summary["ram_kib"]), list(summary["variant"]))
    handles = variant_handles(styles, list(summary["variant"]))
    handles.append(Line2D([], [], color="grey", marker="o", markerfacecolor="none", linestyle="none",
                          label="Larq's weight memory\n(theory, hollow)"))
    legend_outside(fig, handles, "variant: deployed file\n(filled marker)")
    return fig


def _band(values: pd.Series, metric: str, images: int) -> tuple[float, float]:
    """The 95% interval of the mean across seeds the tables use: for an
    accuracy in percent, on the logit scale (``images``: how many it was
    measured on); for a loss, Student t."""
    if metric == "accuracy":
        estimate = accuracy_interval(values / 100, images)
        return 100 * estimate.low, 100 * estimate.high
    estimate = mean_interval(values)
    return estimate.low, estimate.high


SPLIT_LINES = {"validation": "-", "train": "--"}


def training_curves(curves: pd.DataFrame, summary: pd.DataFrame, images: dict[tuple[str, str], int]):
    """Rows: accuracy, loss; columns: datasets. Each variant in its colour
    and marker, test solid and training dashed, the mean over seeds with its
    95% band. ``images``: per (dataset, split), how many images an accuracy
    of that split is measured on."""
    styles = variant_styles(summary)
    datasets = _datasets(summary)
    fig, axes = figure(len(datasets), width=6.5, height=3.6, rows=2)
    for column, dataset in enumerate(datasets):
        of_dataset = curves[curves["dataset"] == dataset]
        for row, metric in enumerate(("accuracy", "loss")):
            ax = axes[row, column]
            scale = 100 if metric == "accuracy" else 1
            for variant in summary.loc[summary["dataset"] == dataset, "variant"]:
                style = styles[variant]
                for split, linestyle in SPLIT_LINES.items():
                    group = of_dataset[(of_dataset["variant"] == variant) & (of_dataset["split"] == split)]
                    if group.empty:
                        continue
                    by_epoch = group.groupby("epoch")[metric]
                    mean = by_epoch.mean() * scale
                    ax.plot(mean.index, mean.to_numpy(), color=style.color, marker=style.marker, markersize=4,
                            linestyle=linestyle, linewidth=1.2)
                    if group["seed"].nunique() > 1:
                        bands = by_epoch.apply(lambda v: _band(v * scale, metric, images[dataset, split]))
                        ax.fill_between(bands.index, [b[0] for b in bands], [b[1] for b in bands],
                                        color=style.color, alpha=0.12, linewidth=0)
            ax.set_title(f"{title(dataset)}: {metric} per epoch", fontsize=10)
            ax.set_xlabel("epoch")
            ax.set_ylabel("accuracy (%, logit scale)" if metric == "accuracy" else "cross-entropy loss")
            ax.grid(True, alpha=0.3)
            ax.xaxis.get_major_locator().set_params(integer=True)
            if metric == "accuracy":
                accuracy_axis(ax)
    handles = variant_handles(styles, list(styles), linestyle="-")
    handles += [Line2D([], [], color="black", linestyle=line, label=f"{split} images")
                for split, line in SPLIT_LINES.items()]
    legend_outside(fig, handles, f"variant: mean and 95% band\nover {seeds_caption(summary)}")
    return fig


def accuracy_by_variant(runs: pd.DataFrame, summary: pd.DataFrame):
    """Per dataset, each variant's seeds as dots, a thin line joining each
    seed's runs across the variants (every gap pairs them so), and each
    variant's mean with its 95% interval; the x axis names the variants, so
    no legend."""
    styles = variant_styles(summary)
    datasets = _datasets(summary)
    variants = list(styles)
    width = max(5.0, 0.55 * len(variants) + 2.0)
    if len(variants) > 6:  # datasets one above the other: side by side, 13 variants made a strip 2,080 px wide
        fig, axes = figure(1, width=width, height=4.2, rows=len(datasets))
    else:
        fig, axes = figure(len(datasets), width=width, height=4.2)
    for ax, dataset in zip(axes.flat, datasets, strict=True):
        data = runs[runs["dataset"] == dataset]
        order = [v for v in variants if v in set(data["variant"])]
        position = {v: i for i, v in enumerate(order)}
        for _, seed in data.groupby("seed"):
            seed = seed.assign(x=seed["variant"].map(position)).sort_values("x")
            ax.plot(seed["x"], 100 * seed["test_accuracy"], color="grey", linewidth=0.7, alpha=0.6, zorder=1)
        for variant in order:
            of_variant = data[data["variant"] == variant]
            ax.scatter([position[variant]] * len(of_variant), 100 * of_variant["test_accuracy"],
                       color=styles[variant].color, s=22, edgecolor="black", linewidth=0.5, zorder=2)
            row = summary[(summary["dataset"] == dataset) & (summary["variant"] == variant)].iloc[0]
            mean, low, high = (100 * row[c] for c in ("test_accuracy_mean", "test_accuracy_ci95_low",
                                                       "test_accuracy_ci95_high"))
            ax.errorbar(position[variant] + 0.18, mean, yerr=[[mean - low], [high - mean]] if pd.notna(low) else None,
                        fmt=styles[variant].marker, ms=7, capsize=3, color=styles[variant].color,
                        markeredgecolor="black", zorder=3)
        ax.set_xticks(range(len(order)), order)
        ax.set_xlim(-0.5, len(order) - 0.3)
        ax.set_xlabel("")
        ax.set_ylabel("test accuracy (%, logit scale)")
        ax.set_title(title(dataset))
        ax.tick_params(axis="x", labelrotation=45 if len(order) > 4 else 0)
        ax.grid(True, axis="y", alpha=0.3)
        accuracy_axis(ax)
    fig.suptitle(textwrap.fill("Dots: one per seed, grey lines joining a seed's runs; marker: the mean and its 95% "
                               "CI", int(fig.get_figwidth() * 13)), fontsize=9)
    return fig


def confusion_difference(confusion: pd.DataFrame, summary: pd.DataFrame):
    """One row of panels per dataset: each variant's matrix minus the
    baseline's, paired by seed (the baseline's own matrix when it is alone).
    Every cell holds its mean difference in test images; only the cells
    whose simultaneous interval (over the matrix's cells) tells them from
    zero are coloured, on a linear scale: a difference of a third of an
    image that the seeds do not tell stays grey."""
    baseline = summary.loc[summary["is_baseline"], "variant"]
    baseline = baseline.iloc[0] if len(baseline) else None
    tested = "images_difference_p_adjusted" in confusion
    panels = []
    for dataset in _datasets(summary):
        names = list(DATASETS[dataset].class_names) if dataset in DATASETS else None
        of_dataset = confusion[confusion["dataset"] == dataset]
        grids = {v: g for v, g in of_dataset.groupby("variant")}
        variants = list(summary.loc[summary["dataset"] == dataset, "variant"])
        others = [v for v in variants if v != baseline and v in grids]
        row = []
        if baseline in grids and others:
            for v in others:
                grid = grids[v]
                if tested:
                    diff = grid.pivot(index="label", columns="predicted", values="images_difference")
                    told = grid.pivot(index="label", columns="predicted", values="images_difference_p_adjusted") < ALPHA
                else:  # tables written before the cells were tested: every cell uncoloured
                    diff = (grid.pivot(index="label", columns="predicted", values="images")
                            - grids[baseline].pivot(index="label", columns="predicted", values="images"))
                    told = pd.DataFrame(False, index=diff.index, columns=diff.columns)
                row.append((f"{title(dataset)}: {v} minus {baseline}", diff, told))
        else:  # nothing to compare: the first variant's own matrix, every cell coloured
            own = grids[variants[0]].pivot(index="label", columns="predicted", values="images")
            every = pd.DataFrame(True, index=own.index, columns=own.columns)
            row.append((f"{title(dataset)}: {variants[0]}", own, every))
        if names:
            rename = {"index": dict(enumerate(names)), "columns": dict(enumerate(names))}
            row = [(name, diff.rename(**rename), told.rename(**rename)) for name, diff, told in row]
        panels.append(row)
    columns = min(max(len(row) for row in panels), 3)
    rows = sum(-(-len(row) // columns) for row in panels)
    fig, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 4.6 * rows), squeeze=False,
                             layout="constrained")
    slots = iter(range(rows))
    for row_panels in panels:
        # one colour scale per dataset, spanning its largest coloured cell, its bar beside the dataset's last panel
        shown = [diff.where(told).abs().max().max() for _, diff, told in row_panels]
        limit = max([1.0, *[float(value) for value in shown if pd.notna(value)]])
        for start in range(0, len(row_panels), columns):
            axis_row = axes[next(slots)]
            for ax, (name, diff, told) in zip(axis_row, row_panels[start:start + columns], strict=False):
                last = name == row_panels[-1][0]
                sns.heatmap(diff.where(told), ax=ax, cmap="RdBu_r", vmin=-limit, vmax=limit, center=0,
                            annot=diff.round(1).to_numpy(), fmt="", annot_kws={"fontsize": 6}, cbar=last,
                            cbar_kws={"label": "test images (mean over seeds)"} if last else None, square=True,
                            linewidths=0.5, linecolor="white")
                ax.set_facecolor("#ececec")  # the cells left uncoloured: not told from zero
                ax.grid(False)
                values = diff.to_numpy()
                for i, j in zip(*np.nonzero(~told.to_numpy(dtype=bool)), strict=True):
                    ax.text(j + 0.5, i + 0.5, f"{values[i, j]:.1f}", ha="center", va="center", fontsize=6,
                            color="#555555")
                ax.tick_params(labelsize=7)
                ax.set_title(name, fontsize=10)
                ax.set_xlabel("predicted class")
                ax.set_ylabel("true class")
            for ax in axis_row[len(row_panels[start:start + columns]):]:
                ax.axis("off")
    if tested and baseline is not None:
        title_beside_legend(fig, "Test images per (true, predicted) class, minus the baseline's, paired by seed; "
                                 "coloured only where the interval simultaneous over the matrix's cells tells the "
                                 "difference from zero (grey: not told)", fontsize=9)
    return fig


def tax_by_dataset(tax: pd.DataFrame):
    """Every variant's seed-paired accuracy gap to the baseline, with the
    interval its verdict is read from, datasets side by side; one panel per
    family of comparisons, so that a panel holds one kind of interval, named
    over it: the primaries' (Holm, each at its step's level) and the
    exploratory ones' (simultaneous, Bonferroni). An interval reaching far
    beyond the others is cut at the panel's edge with its end written there
    (:func:`clip_outlying`), so that one uncertain variant does not flatten
    the rest."""
    datasets = list(dict.fromkeys(tax["dataset"]))
    colors = dict(zip(datasets, sns.color_palette("dark", len(datasets)), strict=False))
    markers = dict(zip(datasets, ("D", "o", "s", "^"), strict=False))
    width = 0.7 / max(len(datasets), 1)
    # the interval each verdict is read from; tables written before the verdicts: the unadjusted 95% one, said so
    judged = "accuracy_gap_adj_low" in tax
    bounds = ("adj_low", "adj_high") if judged else ("ci95_low", "ci95_high")
    if judged:
        families = [(family, tax[tax["accuracy_gap_family"] == family]) for family in ("primary", "exploratory")]
        families = [(family, rows) for family, rows in families if len(rows)]
    else:
        families = [("unadjusted", tax)]
    counts = [rows["variant"].nunique() for _, rows in families]
    fig, axes = plt.subplots(1, len(families), squeeze=False, sharey=True, layout="constrained",
                             width_ratios=counts, figsize=(max(5.0, 0.8 * sum(counts) + 1.2 * len(counts)) + 2.5, 4.5))
    ends = []
    for ax, (family, rows_of_family) in zip(axes.flat, families, strict=True):
        variants = list(dict.fromkeys(rows_of_family["variant"]))
        for index, dataset in enumerate(datasets):
            rows = rows_of_family[rows_of_family["dataset"] == dataset].set_index("variant").reindex(variants)
            x = np.arange(len(variants)) - 0.35 + width * (index + 0.5)
            gap = 100 * rows["accuracy_gap_vs_baseline"].to_numpy()
            low = 100 * rows[f"accuracy_gap_{bounds[0]}"].to_numpy()
            high = 100 * rows[f"accuracy_gap_{bounds[1]}"].to_numpy()
            yerr = np.vstack([gap - low, high - gap])
            ax.bar(x, gap, width=width * 0.9, color=colors[dataset], alpha=0.35)
            ax.errorbar(x, gap, yerr=np.where(np.isnan(yerr), 0, yerr), fmt=markers.get(dataset, "D"),
                        color=colors[dataset], capsize=4, markeredgecolor="black", label=title(dataset))
            ends.append((ax, x, gap, low, high))
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks(np.arange(len(variants)), variants)
        ax.tick_params(axis="x", labelrotation=45 if len(variants) > 3 or sum(counts) > 4 else 0)
        ax.set_xlim(-0.6, len(variants) - 0.4)
        ax.grid(True, axis="y", alpha=0.3)
        sizes = ", ".join(str(int(n)) for n in dict.fromkeys(rows_of_family.get("accuracy_gap_family_size", [])))
        ax.set_title({"primary": f"Primary (Holm over {sizes}):\neach at its Holm step's level",
                      "exploratory": f"Exploratory: simultaneous\n(Bonferroni over {sizes})",
                      "unadjusted": "95% CI of each gap\n(unadjusted)"}[family], fontsize=9)
    clip_outlying(ends)
    baseline = tax["baseline"].iloc[0] if len(tax) else "the baseline"
    axes[0, 0].set_ylabel(f"test accuracy minus {baseline}'s (pp)")
    seeds = int(tax["seeds"].max()) if len(tax) else 0
    handles = axes[0, 0].get_legend_handles_labels()[0]
    legend_outside(fig, handles, f"dataset: mean gap over {seeds} seed" + ("" if seeds == 1 else "s")
                   + ("\nand the interval its verdict\nis read from (over each panel)" if judged
                      else "\nand its 95% CI (unadjusted)"))
    title_beside_legend(fig, "The accuracy cost by dataset, paired by seed", fontsize=10)
    return fig


def clip_outlying(ends) -> None:
    """Fit the shared y axis to the gaps and their usual intervals; an
    interval end that lies far beyond them (more than the usual range again)
    is cut at the panel's edge, marked with an arrow and its value. ``ends``:
    (axes, xs, gaps, lows, highs) per drawn series, in pp."""
    gaps = np.concatenate([g for _, _, g, _, _ in ends]) if ends else np.array([])
    lows = np.concatenate([lo for _, _, _, lo, _ in ends]) if ends else np.array([])
    highs = np.concatenate([hi for _, _, _, _, hi in ends]) if ends else np.array([])
    halves = np.abs(np.concatenate([highs - gaps, gaps - lows]))
    halves = halves[np.isfinite(halves)]
    if not len(halves) or not np.isfinite(gaps).any():
        return
    typical = float(np.median(halves))
    top = max(float(np.nanmax(gaps)), 0.0) + 2 * typical
    bottom = min(float(np.nanmin(gaps)), 0.0) - 2 * typical
    span = top - bottom
    if np.nanmax(highs, initial=top) <= top + span and np.nanmin(lows, initial=bottom) >= bottom - span:
        for ax, *_ in ends:
            ax.margins(y=0.1)
        return
    top, bottom = max(top, float(np.nanmax(highs[highs <= top + span], initial=top))), \
        min(bottom, float(np.nanmin(lows[lows >= bottom - span], initial=bottom)))
    pad = 0.12 * (top - bottom)
    ends[0][0].set_ylim(bottom - pad, top + pad)  # shared by every panel
    placed: dict[object, int] = {}
    for ax, xs, _, series_lows, series_highs in ends:
        line = placed[ax] = placed.get(ax, -1) + 1  # each series' values a line further in, side by side as they are
        for x, low, high in zip(xs, series_lows, series_highs, strict=True):
            if np.isfinite(high) and high > top + pad:
                ax.annotate(f"to {high:+.1f}", (x, top + pad), xytext=(3, -2 - 9 * line), textcoords="offset points",
                            ha="left", va="top", fontsize=7, annotation_clip=False)
                ax.plot([x], [top + pad], marker="^", color="black", markersize=5, clip_on=False)
            if np.isfinite(low) and low < bottom - pad:
                ax.annotate(f"to {low:+.1f}", (x, bottom - pad), xytext=(3, 2 + 9 * line), textcoords="offset points",
                            ha="left", va="bottom", fontsize=7, annotation_clip=False)
                ax.plot([x], [bottom - pad], marker="v", color="black", markersize=5, clip_on=False)


def figures(tables_dir: str | Path) -> dict[str, object]:
    """Every figure the tables give, by file name (not yet saved)."""
    tables_dir = Path(tables_dir)
    runs = read_table(tables_dir, "runs")
    summary = read_table(tables_dir, "summary")
    curves = read_table(tables_dir, "curves")
    confusion = read_table(tables_dir, "confusion")
    tax = read_table(tables_dir, "tax", may_be_empty=True)
    examples = read_table(tables_dir, "corruption_examples", may_be_empty=True)
    gaps = read_table(tables_dir, "robustness_gap", may_be_empty=True)
    latency = read_table(tables_dir, "latency")
    cpu = str(latency["cpu"].iloc[0])
    if "robustness_gap_verdict" not in gaps:   # tables written before the verdicts: judged as the report judges them
        gaps = judge(gaps, ROBUSTNESS_GAP, gaps["dataset"].map(test_images(runs)).astype(float))
    sns.set_theme(style="whitegrid", context="notebook")
    # seaborn's strip jitter draws from NumPy's global generator: seeded, the
    # same tables give the same PNG bytes anywhere.
    np.random.seed(0)
    images = {(row["dataset"], split): int(row[f"{split}_images"]) for row in runs.to_dict("records")
              for split in ("train", "validation")}
    # the int8 forms are deployed, not trained: no curves, confusion or recipe of their own
    trained = summary[summary["variant"].isin(set(curves["variant"]))]
    drawn = {
        "accuracy_vs_memory.png": lambda: accuracy_vs_memory(runs, summary),
        "accuracy_vs_binarized_macs.png": lambda: accuracy_vs_binarized(runs, summary),
        "accuracy_vs_latency.png": lambda: accuracy_vs_latency(runs, summary, cpu),
        "flash_vs_ram.png": lambda: flash_vs_ram(summary),
        "training_curves.png": lambda: training_curves(curves, trained, images),
        "accuracy_by_variant.png": lambda: accuracy_by_variant(runs, summary),
        "confusion_difference.png": lambda: confusion_difference(confusion, trained),
    }
    if not tax.empty:
        drawn["tax_by_dataset.png"] = lambda: tax_by_dataset(tax)
    if not examples.empty:
        drawn["corruption_examples.png"] = lambda: corruption_examples(examples)
    if not gaps.empty:
        drawn["robustness_gaps.png"] = lambda: robustness_gaps(gaps)
    frontier = frontier_table(summary, latency)
    if (frontier.groupby("family")["width"].nunique() > 1).any():
        drawn["frontier.png"] = lambda: frontier_figure(frontier, cpu)
    return drawn


def draw_all(tables_dir: str | Path, out_dir: str | Path) -> list[str]:
    with table_errors(Path(tables_dir)):
        drawers = figures(tables_dir)
        with atomic_directory(out_dir) as tmp:
            for name, draw in drawers.items():
                save(draw(), tmp / name)
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

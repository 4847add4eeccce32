"""The figure across widths: each precision family a line through its
widths (stages/lib/analysis/iso_size.py), test accuracy against flash, RAM
and latency, in the look of every other figure
(:mod:`stages.lib.reporting.figures`).
"""

from __future__ import annotations


import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from stages.lib.reporting.figures import (  # noqa: E402
    MARKERS, Style, accuracy_axis, figure, label_points, legend_outside, seeds_caption, title, title_beside_legend,
)


def family_styles(frontier: pd.DataFrame) -> dict[str, Style]:
    """One colour and one marker per precision family, no two families
    sharing the pair (colours cycle through the palette, markers advance)."""
    names = list(dict.fromkeys(frontier["family"]))
    colors = sns.color_palette("colorblind", min(max(len(names), 1), 10))
    return {name: Style(tuple(colors[i % len(colors)]), MARKERS[i % len(MARKERS)]) for i, name in enumerate(names)}


FRONTIER_AXES = (("tflite_kib", "flash: deployed file (KiB, log scale)", None),
                 ("ram_kib", "RAM: peak activations (KiB, log scale)", None),
                 ("latency_median_us", "latency at 1 thread (µs, log scale)", ("latency_rerun95_low",
                                                                                "latency_rerun95_high")))


def frontier_figure(frontier: pd.DataFrame, cpu: str):
    """Per dataset (rows), test accuracy (logit scale) against flash, RAM and
    latency at 1 thread (log scales): each precision family a line through
    its widths (narrow to wide), its mean with the 95% interval at each, the
    width written beside each point of the flash panel."""
    datasets = list(dict.fromkeys(frontier["dataset"]))
    styles = family_styles(frontier)
    fig, axes = figure(len(FRONTIER_AXES), width=4.6, height=3.8, rows=len(datasets))
    for row_axes, dataset in zip(axes, datasets, strict=True):
        of = frontier[frontier["dataset"] == dataset]
        for ax, (x, label, x_interval) in zip(row_axes, FRONTIER_AXES, strict=True):
            for name, group in of.groupby("family", sort=False):
                group = group.sort_values("width").dropna(subset=[x])
                style = styles[name]
                mean = 100 * group["test_accuracy_mean"]
                yerr = [mean - 100 * group["test_accuracy_ci95_low"], 100 * group["test_accuracy_ci95_high"] - mean]
                xerr = ([group[x] - group[x_interval[0]], group[x_interval[1]] - group[x]]
                        if x_interval and group[x_interval[0]].notna().all() else None)
                ax.errorbar(group[x], mean, yerr=None if group["test_accuracy_ci95_low"].isna().any() else yerr,
                            xerr=xerr, fmt=f"{style.marker}-", ms=7, capsize=3, color=style.color,
                            markeredgecolor="black", linewidth=1.2)
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}"))
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.margins(x=0.12, y=0.08)
            accuracy_axis(ax)
            ax.set_xlabel(label)
            ax.set_ylabel("test accuracy (%, logit)" if x == FRONTIER_AXES[0][0] else "")
            ax.set_title(title(dataset), fontsize=10)
            ax.grid(True, which="both", alpha=0.3)
            if x == FRONTIER_AXES[0][0]:
                label_points(ax, list(of[x]), list(100 * of["test_accuracy_mean"]),
                             [f"{w:g}" for w in of["width"]])
    handles = [Line2D([], [], color=style.color, marker=style.marker, markeredgecolor="black", markersize=7,
                      label=name) for name, style in styles.items()]
    legend_outside(fig, handles, "family through its widths\n(numbers: width),\nmean and 95% CI\n"
                                 f"over {seeds_caption(frontier)}")
    title_beside_legend(fig, f"Accuracy per byte across widths; latency on {cpu} (one benchmark run)")
    return fig

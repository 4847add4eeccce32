"""How the study's figures look: one colour and marker per variant, legends
outside the data, labels that do not collide, accuracy axes that stay within
what is possible. The `plots` stage draws with these so that a figure reads
the same at 2 variants as at 13.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from adjustText import adjust_text  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from stages.lib.data.datasets import DATASETS  # noqa: E402

DPI = 110
# Filled markers that stay distinct at 8 points; a recipe takes the next one.
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "h", "<", ">", "p", "*", "H", "d")
# adjustText stops on a time limit unless given a number of steps: a fixed
# number keeps the same tables giving the same PNG bytes on any machine.
LABEL_STEPS = 1000


@dataclass(frozen=True)
class Style:
    color: tuple[float, float, float]
    marker: str


def variant_styles(summary: pd.DataFrame) -> dict[str, Style]:
    """Colour by network (architecture), marker by recipe, so that a variant
    and its recipe twins share a colour; no two variants share both. Without
    those columns every variant is its own network."""
    rows = summary.drop_duplicates("variant")
    variants = list(rows["variant"])
    networks = list(rows["architecture"]) if "architecture" in rows else variants
    recipes = list(rows["recipe"]) if "recipe" in rows else [""] * len(variants)
    network_order = list(dict.fromkeys(networks))
    recipe_order = list(dict.fromkeys(recipes))
    count = len(network_order)
    colors = sns.color_palette("colorblind" if count <= 10 else "husl", count)
    styles, taken = {}, set()
    for variant, network, recipe in zip(variants, networks, recipes, strict=True):
        color = network_order.index(network)
        marker = recipe_order.index(recipe)
        while (color, marker % len(MARKERS)) in taken:  # same network and recipe: another marker
            marker += 1
        taken.add((color, marker % len(MARKERS)))
        styles[variant] = Style(tuple(colors[color]), MARKERS[marker % len(MARKERS)])
    return styles


def figure(panels: int, width: float = 6.0, height: float = 4.5, rows: int = 1):
    """A figure of ``rows`` x ``panels`` axes whose layout leaves room for a
    legend outside them (constrained layout)."""
    fig, axes = plt.subplots(rows, panels, figsize=(width * panels + 2.5, height * rows), squeeze=False,
                             layout="constrained")
    return fig, axes


def variant_handles(styles: dict[str, Style], variants: Sequence[str], **line) -> list[Line2D]:
    return [Line2D([], [], color=styles[v].color, marker=styles[v].marker, markeredgecolor="black",
                   linestyle=line.get("linestyle", "none"), markersize=8, label=v) for v in variants]


def legend_outside(fig, handles: Sequence, title: str) -> None:
    """One legend for the whole figure, right of every panel."""
    fig.legend(handles=list(handles), loc="outside right upper", title=title, fontsize=8, title_fontsize=9,
               frameon=False)


def title_beside_legend(fig, text: str, fontsize: float = 9) -> None:
    """``text`` as the figure's title, wrapped to and centred over the width
    left of its legend: centred on the whole figure, it ran into the title
    of the legend, which stands at the top right."""
    import textwrap

    fig.canvas.draw()  # constrained layout places the legend
    right = min((legend.get_window_extent().x0 for legend in fig.legends), default=fig.bbox.x1) / fig.bbox.width
    # about 0.6 of the font size per character, in points
    chars = max(20, int(right * fig.get_figwidth() * 72 / (0.6 * fontsize)))
    fig.suptitle(textwrap.fill(text, chars), x=right / 2, fontsize=fontsize)


def label_points(ax, xs: Sequence[float], ys: Sequence[float], names: Sequence[str]) -> None:
    """Name each point, moving the names apart until none overlaps another
    or a point (adjustText), with a thin line back to the point. A name that
    still overlaps one already placed, or leaves the panel, is left out (the
    legend names every point by its colour and marker): a crowd of names
    stacked on each other reads as none."""
    texts = [ax.text(x, y, name, fontsize=7) for x, y, name in zip(xs, ys, names, strict=True)]
    if not texts:
        return
    _, arrows = adjust_text(texts, x=list(xs), y=list(ys), ax=ax, iter_lim=LABEL_STEPS, force_text=(0.4, 0.8),
                            force_static=(0.3, 0.6), expand=(1.3, 1.6), max_move=(20, 20),
                            arrowprops={"arrowstyle": "-", "color": "grey", "lw": 0.5})
    renderer = ax.figure.canvas.get_renderer()
    panel = ax.get_window_extent(renderer)
    kept = []
    for text in texts:
        box = text.get_window_extent(renderer)
        inside = panel.x0 <= box.x0 and box.x1 <= panel.x1 and panel.y0 <= box.y0 and box.y1 <= panel.y1
        if inside and not any(box.overlaps(other) for other in kept):
            kept.append(box)
            continue
        text.remove()
        for arrow in arrows:  # its line back to the point (a patch, or an annotation's)
            if getattr(getattr(arrow, "arrow_patch", arrow), "patchA", None) is text:
                arrow.remove()


MEAN_MARKER = 8  # points: the size of a variant's mean marker
HIDDEN = 0.5  # of a marker's width: centres closer than this along both axes hide one marker under another


def dodge(ax, xs: Sequence[float], ys: Sequence[float], size: float = MEAN_MARKER) -> list[float]:
    """For markers of ``size`` points at (``xs``, ``ys``), how far (in pixels)
    to move each one along x so that none hides another. A marker is hidden
    when another's centre lies within half a marker of its own, along both
    axes; such markers (directly or through a chain) are set side by side,
    0.6 of a marker apart, centred on their group's mean position, in the
    order of their x then y: each shows at least half of itself, and a group
    spreads as little as that allows. Markers that overlap less stay where
    they are. The axes' scales and limits must be fixed first."""
    if not len(xs):
        return []
    points = ax.transData.transform(np.column_stack([np.asarray(xs, float), np.asarray(ys, float)]))
    width = size * ax.figure.dpi / 72  # a marker's width in pixels
    near, step = HIDDEN * width, 0.6 * width
    group = list(range(len(points)))

    def root(i):
        while group[i] != i:
            group[i] = group[group[i]]
            i = group[i]
        return i

    for i in range(len(points)):
        for j in range(i + 1, len(points)):
            if abs(points[i, 0] - points[j, 0]) < near and abs(points[i, 1] - points[j, 1]) < near:
                group[root(j)] = root(i)
    offsets = [0.0] * len(points)
    for members in _groups([root(i) for i in range(len(points))]).values():
        if len(members) < 2:
            continue
        members.sort(key=lambda i: (points[i, 0], points[i, 1], i))
        centre = float(np.mean(points[members, 0]))
        for rank, i in enumerate(members):
            offsets[i] = centre + (rank - (len(members) - 1) / 2) * step - float(points[i, 0])
    return offsets


def _groups(keys: Sequence[int]) -> dict[int, list[int]]:
    groups: dict[int, list[int]] = {}
    for index, key in enumerate(keys):
        groups.setdefault(key, []).append(index)
    return groups


def shifted(ax, xs: Sequence[float], ys: Sequence[float], pixels) -> np.ndarray:
    """``xs`` moved ``pixels`` (one number, or one per point) along x on the
    panel, in data units whatever the scale."""
    points = ax.transData.transform(np.column_stack([np.asarray(xs, float), np.asarray(ys, float)]))
    points[:, 0] += pixels
    return ax.transData.inverted().transform(points)[:, 0]


# Where an accuracy axis may put its ticks (percent); thinned to the range shown.
ACCURACY_TICKS = (1, 2, 5, 10, 20, 30, 40, 50, 60, 70, 80, 82, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95, 96, 97, 97.5, 98, 98.5, 99, 99.25,
                  99.5, 99.75, 99.9, 99.95, 99.99)


def _logit(percent):
    share = np.clip(np.asarray(percent, dtype=float) / 100, 1e-6, 1 - 1e-6)
    return np.log(share / (1 - share))


def _expit(value):
    return 100 / (1 + np.exp(-np.asarray(value, dtype=float)))


def accuracy_axis(ax) -> None:
    """An accuracy axis in percent on the logit scale, the scale its
    intervals are computed on: 98% and 99% stand as far apart as 50% and
    67%, so that networks near 99% do not collapse into one line while one
    far below stays in view; it never reaches 0% or 100%. Its range fits
    what is drawn (points, intervals, bands)."""
    low, high = ax.dataLim.y0, ax.dataLim.y1
    low, high = float(np.clip(low, 0.5, 99.99)), float(np.clip(high, 0.5, 99.99))
    ax.set_yscale("function", functions=(_logit, _expit))
    span = float(_logit(high) - _logit(low)) or 1.0
    ax.set_ylim(float(_expit(_logit(low) - 0.08 * span)), float(_expit(_logit(high) + 0.08 * span)))
    bottom, top = ax.get_ylim()
    ticks, last = [], None
    for tick in ACCURACY_TICKS:
        if bottom <= tick <= top and (last is None or _logit(tick) - _logit(last) >= span / 7):
            ticks.append(tick)
            last = tick
    ax.yaxis.set_major_locator(matplotlib.ticker.FixedLocator(ticks))
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}%"))
    ax.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())


def log2_x(ax) -> None:
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def title(dataset: str) -> str:
    return DATASETS[dataset].title if dataset in DATASETS else dataset


def seeds_caption(summary: pd.DataFrame) -> str:
    """"over 3 seeds", or "over 2 to 3 seeds" when variants differ."""
    seeds = sorted(set(int(s) for s in summary["seeds"]))
    count = f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]} to {seeds[-1]}"
    return f"{count} seed" + ("" if seeds == [1] else "s")


def save(fig, path) -> None:
    fig.savefig(path, dpi=DPI)
    plt.close(fig)

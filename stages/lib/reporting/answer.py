"""The answer first: the report's opening screen. At equal flash, each
1-bit network named for it against its twin
(:mod:`stages.lib.analysis.iso_size`); then for the 1-bit network
against the baseline of the same width, per dataset: the accuracy cost (gap, interval, the
ratio of their error rates); what it saves (the deployed file) and what it
does not (RAM); its speed on the CPU measured; the best variant under each
memory budget; what a better recipe changes; whether it breaks sooner on
corrupted inputs; the caveats. Every figure is
read from the tables; each one is said again, with its method, in the
section that owns it.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from stages.lib.analysis.budgets import budget_line
from stages.lib.analysis.judged import validation_images
from stages.lib.analysis.int8_tables import int8_line
from stages.lib.analysis.iso_size import same_flash_sentence
from stages.lib.training.recipes import DEFAULT_RECIPE
from stages.lib.analysis.robustness_tables import robustness_line
from stages.lib.analysis.speed import speed_word, threads_label
from stages.lib.analysis.stats import error_ratio
from stages.lib.analysis.tables import ARTICLE_ONE_BIT, of_dataset
from stages.lib.analysis.verdicts import PRIMARY, adjusted_cell, detectable_clause, gap_word
from stages.lib.wording import cell, pct, points, span, times, title, with_interval


def headline_variant(summary: pd.DataFrame, baseline: str) -> str | None:
    """The 1-bit network the answer is about: the article's (`bnn`) when the
    study has it, else the variant with the most binarized
    multiply-accumulates (the more accurate on a tie); None when the baseline
    is alone."""
    variants = summary.drop_duplicates("variant")
    others = variants[variants["variant"] != baseline]
    if others.empty or baseline not in set(variants["variant"]):
        return None
    if ARTICLE_ONE_BIT in set(others["variant"]):
        return ARTICLE_ONE_BIT
    ranked = others.sort_values(["binarized_mac_fraction", "test_accuracy_mean"], ascending=False, kind="stable")
    return str(ranked["variant"].iloc[0])


def _accuracy(row: pd.Series) -> str:
    return cell(row["test_accuracy_mean"], row["test_accuracy_ci95_low"], row["test_accuracy_ci95_high"], pct)


def answer_table(tables: dict[str, pd.DataFrame], baseline: str, variant: str) -> str:
    """One small table: a row per dataset for accuracy, then the deployed
    file, RAM and latency at each thread count (from the first dataset's
    models: the networks, so their files and speed, are the same on every
    dataset); with a last column for the int8 model the 1-bit network is
    compared with (the ``int8`` table's), when the study has one."""
    summary, runs, latency = tables["summary"], tables["runs"], tables["latency"]
    datasets = list(dict.fromkeys(summary["dataset"]))
    comparison = tables.get("int8", pd.DataFrame())
    int8 = str(comparison["int8"].iloc[0]) if not comparison.empty and comparison["one_bit"].iloc[0] == variant else None
    extra: list[str] = []   # the int8 column, row by row
    rows = []
    for dataset in datasets:
        of = of_dataset(summary, dataset).set_index("variant")
        base, one = of.loc[baseline], of.loc[variant]
        by_seed = of_dataset(runs, dataset).pivot(index="seed", columns="variant", values="test_accuracy")
        images = int(of_dataset(runs, dataset)["test_images"].max())
        errors = error_ratio(by_seed[variant], by_seed[baseline], images)
        needed = detectable_clause(one, "accuracy_gap")
        gap = (f"{adjusted_cell(one, 'accuracy_gap')}: {gap_word(one, 'accuracy_gap')}"
               + (f" ({needed})" if needed else "")
               + f"; {with_interval(errors.value, errors.low, errors.high, times)} the errors")
        seeds = int(one["seeds"])
        label = f"(95% CI, {seeds} seeds)" if seeds > 1 else "(1 seed: no interval)"
        rows.append((f"{title(dataset)} test accuracy {label}", _accuracy(base),
                     _accuracy(one), gap))
        extra.append(_accuracy(of.loc[int8]) if int8 in of.index else "")
    first = of_dataset(summary, datasets[0]).set_index("variant")
    base, one = first.loc[baseline], first.loc[variant]
    rows.append(("flash: deployed file", f"{base['tflite_kib']:.2f} KiB", f"{one['tflite_kib']:.2f} KiB",
                 f"{base['tflite_kib'] / one['tflite_kib']:.1f}x smaller"))
    same_ram = f"{base['ram_kib']:.2f}" == f"{one['ram_kib']:.2f}"
    rows.append(("RAM: peak activations", f"{base['ram_kib']:.2f} KiB", f"{one['ram_kib']:.2f} KiB",
                 "the same" if same_ram else f"{one['ram_kib'] / base['ram_kib']:.2f}x as much"))
    for column in ("tflite_kib", "ram_kib"):
        extra.append(f"{first.at[int8, column]:.2f} KiB" if int8 in first.index else "")
    headline = of_dataset(latency, datasets[0])
    headline = headline[headline["headline"]].set_index(["variant", "threads"])
    for threads in sorted({t for _, t in headline.index}):
        if (variant, threads) not in headline.index or (baseline, threads) not in headline.index:
            continue
        fast, slow = headline.loc[(variant, threads)], headline.loc[(baseline, threads)]
        rows.append((f"latency, {threads_label(int(threads))}, {fast['cpu']}", f"{slow['latency_median_us']:.1f} µs",
                     f"{fast['latency_median_us']:.1f} µs",
                     "speed " + with_interval(fast["speedup_vs_baseline"], fast["speedup_rerun95_low"],
                                              fast["speedup_rerun95_high"], times)
                     + f": {speed_word(fast.to_dict())}"))
        extra.append(f"{headline.at[(int8, threads), 'latency_median_us']:.1f} µs"
                     if (int8, threads) in headline.index else "")
    table = pd.DataFrame(rows, columns=["", f"`{baseline}`", f"`{variant}`", f"`{variant}` against `{baseline}`"])
    if int8 is None:
        return table.to_markdown(index=False, colalign=("left", "right", "right", "left"))
    table[f"`{int8}` (int8, see below)"] = extra
    return table.to_markdown(index=False, colalign=("left", "right", "right", "left", "right"))


def recipe_line(recipes: pd.DataFrame, variant: str) -> str:
    """What the recipes measured do for the headline network: each recipe
    variant of it, its effect against the article's recipe and its gap
    under matched recipes; empty when the study has none."""
    if recipes.empty:
        return ""
    own = recipes[(recipes["article_recipe_variant"] == variant) & (recipes["recipe"] != DEFAULT_RECIPE)
                  & recipes["effect"].notna()]
    parts = []
    for dataset, group in own.groupby("dataset", sort=False):
        for row in group.to_dict("records"):
            part = (f"{title(dataset)}, `{row['variant']}` ({row['recipe']}, {row['epochs']} epochs): effect "
                    f"{adjusted_cell(row, 'effect')}, {gap_word(row, 'effect').replace('cost', 'loss')}")
            if pd.notna(row["matched_gap"]):
                part += (f", gap to `{row['matched_baseline']}` under the same recipe {points(row['matched_gap'])} "
                         f"({span(row['matched_gap_ci95_low'], row['matched_gap_ci95_high'], points)})")
            parts.append(part)
    return "; ".join(parts)


def caveat(undecided: pd.Series, primary: pd.Series, seeds: int) -> str:
    """How many gaps the seeds leave without a verdict, primary ones and
    exploratory ones apart."""
    if not undecided.any():
        return f"every accuracy gap of this study is told from zero with {seeds} seeds"
    parts = []
    for label, rows in (("primary", primary), ("exploratory", ~primary)):
        count, left = int(rows.sum()), int((undecided & rows).sum())
        plural = count > 1
        if not count:
            continue
        parts.append(f"the {label} accuracy gap{'s' if plural else ''} {'are' if plural else 'is'} told from zero"
                     if not left else
                     f"{left} of {count} {label} accuracy gap{'s' if plural else ''} cannot be told from zero with "
                     "these seeds (the cost section gives the smallest difference they detect)")
    return "; ".join(parts)


def answer(tables: dict[str, pd.DataFrame], baseline: str, budgets_kib: Sequence[float | None],
           margins_pp: dict[str, float] | None = None) -> dict | None:
    """The opening screen's parts, or None when there is nothing to compare."""
    summary, latency = tables["summary"], tables["latency"]
    variant = headline_variant(summary, baseline)
    if variant is None:
        return None
    datasets = list(dict.fromkeys(summary["dataset"]))
    seeds = sorted({int(s) for s in summary["seeds"]})
    first = latency.iloc[0] if not latency.empty else None
    compared = summary[summary["variant"] != baseline]
    undecided = compared.apply(lambda row: gap_word(row, "accuracy_gap") not in ("a cost", "a gain"), axis=1)
    primary = compared["accuracy_gap_family"] == PRIMARY
    chance = summary[summary["runs_at_chance"] > 0]
    same_flash = tables.get("same_flash", pd.DataFrame())
    limited = [budget for budget in budgets_kib if budget is not None]   # no limit on RAM: the file's pick again
    return {
        "variant": variant,
        "same_flash": [same_flash_sentence(row, title) for row in same_flash.to_dict("records")],
        "at_chance": ", ".join(f"`{row['variant']}` on {title(row['dataset'])} ({row['runs_at_chance']} of "
                               f"{row['seeds']} runs)" for row in chance.to_dict("records")),
        "table": answer_table(tables, baseline, variant),
        "budgets": [(title(dataset), budget_line(of_dataset(summary, dataset), budgets_kib,
                                                 validation_images(tables["runs"]).get(dataset),
                                                 margin_pp=(margins_pp or {}).get(dataset))) for dataset in datasets],
        "ram_budgets": [(title(dataset), budget_line(of_dataset(summary, dataset), limited,
                                                     validation_images(tables["runs"]).get(dataset), "ram_kib",
                                                     (margins_pp or {}).get(dataset)))
                        for dataset in datasets],
        "recipes": recipe_line(tables["recipes"], variant),
        "int8": int8_line(tables["int8"], title) if "int8" in tables else "",
        "robustness": (robustness_line(tables["robustness_gap"], tables["mce"], variant, title)
                       if "robustness_gap" in tables else ""),
        "seeds": str(seeds[0]) if len(seeds) == 1 else f"{seeds[0]} to {seeds[-1]}",
        "caveat": caveat(undecided, primary, seeds[-1]),
        "cpu": None if first is None else first["cpu"],
        "kernels": None if first is None else first["lce_kernels"],
    }

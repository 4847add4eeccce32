"""The accuracy cost: per (dataset, variant) the summary (accuracy with its
logit-scale interval, the seed-paired gap to the baseline, sizes, Pareto
flags), the 1-bit tax by dataset and its change from one dataset to another
(a difference, never a ratio); and the sentences that read them. Which gap
is primary and how each is adjusted: :mod:`stages.lib.analysis.verdicts`."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from stages.lib.analysis.stats import accuracy_interval, paired_difference, prediction_interval, welch_difference
from stages.lib.analysis.tables import of_dataset
from stages.lib.analysis.verdicts import (
    HIGHER, LOWER, NO_SPREAD, PRIMARY, adjusted_cell, detectable_clause, family_clause, gap_verdict, gap_word,
    interval_label,
)
from stages.lib.wording import cell, ci_cells, interval, p_cell, pct, points, title


HEADLINE_COLUMNS = ("latency_median_us", "latency_rerun95_low", "latency_rerun95_high", "net_latency_median_us",
                    "speedup_vs_baseline", "speedup_rerun95_low", "speedup_rerun95_high", "speedup_p_holm",
                    "net_speedup_vs_baseline", "effective_macs_per_s", "processes")


def summary_table(runs: pd.DataFrame, profiles: pd.DataFrame, baseline: str,
                  latency: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per variant (see the module doc) from the runs table (runs
    with their deployment figures) and the latency table; the headline
    latency is its ``headline`` option set at the first thread count timed.
    Compression, gap and speedup columns are NaN when the baseline is not in
    the study."""
    by_seed = runs.pivot(index="seed", columns="variant", values="test_accuracy")
    rows = []
    for variant, group in runs.groupby("variant", sort=False):
        accuracy = accuracy_interval(group["test_accuracy"], int(group["test_images"].max()))
        row = {
            "variant": variant,
            "recipe": group["recipe"].iloc[0],
            "architecture": group["architecture"].iloc[0],
            "epochs": int(group["epochs"].iloc[0]),
            "seeds": len(group),
            # what choices among networks read; the test accuracy confirms them
            "validation_accuracy_mean": float(group["validation_accuracy"].mean()),
            "test_accuracy_mean": accuracy.value,
            "test_accuracy_std": float(group["test_accuracy"].std(ddof=1)) if len(group) > 1 else math.nan,
            "test_accuracy_ci95_low": accuracy.low,
            "test_accuracy_ci95_high": accuracy.high,
            **dict(zip(("test_accuracy_pi95_low", "test_accuracy_pi95_high"),
                       prediction_interval(group["test_accuracy"], int(group["test_images"].max())), strict=True)),
            "params_total": int(profiles.at[variant, "params_total"]),
            "params_32bit": int(profiles.at[variant, "params_32bit"]),
            "memory_kib": float(profiles.at[variant, "memory_kib"]),
            "compression_vs_baseline": math.nan,
            "macs_total": int(profiles.at[variant, "macs_total"]),
            "binarized_mac_fraction": float(profiles.at[variant, "binarized_mac_fraction"]),
            "params_by_bitwidth": profiles.at[variant, "params_by_bitwidth"],
            "macs_by_precision": profiles.at[variant, "macs_by_precision"],
            "accuracy_gap_vs_baseline": math.nan,
            "accuracy_gap_ci95_low": math.nan,
            "accuracy_gap_ci95_high": math.nan,
            "accuracy_gap_p_value": math.nan,
            "train_images_per_s_mean": float(group["train_images_per_s"].mean()),
            "train_time_s_mean": float(group["train_time_s"].mean()),
            "tflite_kib": float(group["tflite_kib"].max()),
            "weights_kib": float(group["weights_bytes"].max()) / 1024,
            "ram_kib": float(group["peak_activation_bytes"].max()) / 1024,
            "binary_mac_fraction_deployed": float(group["binary_mac_fraction_deployed"].min()),
            "operators": group["operators"].iloc[0],
            "converted_accuracy_mean": float(group["converted_accuracy"].mean()),
            "agreement_min": float(group["agreement"].min()),
            "latency_threads": math.nan,
            "latency_options": "",
            **{column: math.nan for column in HEADLINE_COLUMNS},
            "chance_accuracy": float(group["chance_accuracy"].max()),
            "runs_at_chance": int(group["at_chance"].sum()),
        }
        if baseline in profiles.index:
            row["compression_vs_baseline"] = float(profiles.at[baseline, "memory_kib"] / profiles.at[variant, "memory_kib"])
            gap = paired_difference(by_seed[variant], by_seed[baseline])
            row.update(accuracy_gap_vs_baseline=gap.value, accuracy_gap_ci95_low=gap.low,
                       accuracy_gap_ci95_high=gap.high)
            if variant != baseline:
                row["accuracy_gap_p_value"] = gap.p_value
        if latency is not None and not latency.empty:
            headline = latency[latency["headline"] & (latency["variant"] == variant)
                               & (latency["threads"] == latency["threads"].iloc[0])]
            if not headline.empty:
                first = headline.iloc[0]
                row.update({column: float(first[column]) for column in HEADLINE_COLUMNS},
                           latency_threads=int(first["threads"]), latency_options=first["options"])
        rows.append(row)
    summary = pd.DataFrame(rows)
    summary["is_baseline"] = summary["variant"] == baseline
    sound = summary["runs_at_chance"] == 0
    for column, size in (("on_pareto_frontier", "memory_kib"), ("on_deployed_pareto_frontier", "tflite_kib")):
        summary[column] = False
        if sound.any():  # a study whose every variant is at chance has no frontier
            summary.loc[sound, column] = pareto_frontier(summary.loc[sound, size],
                                                         summary.loc[sound, "test_accuracy_mean"])
    return summary


def pareto_frontier(memory: Sequence[float], accuracy: Sequence[float]) -> list[bool]:
    """For each point, whether no other point is at least as small and at
    least as accurate, and strictly better in one of the two."""
    points = list(zip(memory, accuracy, strict=True))
    return [
        not any(m <= mem and a >= acc and (m < mem or a > acc) for m, a in points)
        for mem, acc in points
    ]


TAX_COLUMNS = ("dataset", "variant", "baseline", "seeds", "baseline_accuracy_mean", "test_accuracy_mean",
               "accuracy_gap_vs_baseline", "accuracy_gap_ci95_low", "accuracy_gap_ci95_high", "accuracy_gap_p_value",
               "accuracy_gap_family", "accuracy_gap_family_size", "accuracy_gap_level", "accuracy_gap_p_adjusted",
               "accuracy_gap_adj_low", "accuracy_gap_adj_high", "accuracy_gap_verdict", "accuracy_gap_detectable",
               "images", "variant_ahead", "baseline_ahead", "images_p_holm")


def tax_table(summary: pd.DataFrame, paired_images: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """The 1-bit tax by dataset, see the module doc: from the judged summary
    (the seed-paired gap, its intervals and verdict) and the paired images
    table (the sign test over the same test images, all seeds at once, Holm
    over the variants)."""
    rows = []
    for dataset, group in summary.groupby("dataset", sort=False):
        base = group[group["variant"] == baseline]
        if base.empty:
            continue
        tests = of_dataset(paired_images, dataset).set_index("variant")
        for row in group[group["variant"] != baseline].to_dict("records"):
            test = tests.loc[row["variant"]] if row["variant"] in tests.index else None
            rows.append({
                "dataset": dataset, "variant": row["variant"], "baseline": baseline, "seeds": row["seeds"],
                "baseline_accuracy_mean": float(base["test_accuracy_mean"].iloc[0]),
                **{column: row[column] for column in TAX_COLUMNS[5:18]},
                "images": math.nan if test is None else int(test["images"]),
                "variant_ahead": math.nan if test is None else int(test["variant_ahead"]),
                "baseline_ahead": math.nan if test is None else int(test["baseline_ahead"]),
                "images_p_holm": math.nan if test is None else float(test["p_holm"]),
            })
    return pd.DataFrame(rows, columns=TAX_COLUMNS)


TAX_CHANGE_COLUMNS = ("dataset", "variant", "baseline", "reference_dataset", "gap_change", "gap_change_ci95_low",
                      "gap_change_ci95_high", "gap_change_p_value", "gap_change_df", "seeds")


def tax_change_table(runs: pd.DataFrame, datasets: Sequence[str], variants: Sequence[str],
                     baseline: str) -> pd.DataFrame:
    """How a variant's gap to the baseline changes from the study's first
    dataset to each other one: the difference of the two mean seed-paired
    gaps, in accuracy, with Welch's interval (the seeds of two datasets are
    separate runs, not pairs), one row per (later dataset, variant). A
    difference, never a ratio: a ratio of two gaps depends on the scale and
    explodes near a zero gap. Exploratory: the changes of one dataset are one
    family."""
    rows = []
    columns = list(TAX_CHANGE_COLUMNS)
    if baseline not in variants or len(datasets) < 2:
        return pd.DataFrame(rows, columns=columns)

    def gaps(dataset: str, variant: str) -> pd.Series:
        by_seed = of_dataset(runs, dataset).pivot(index="seed", columns="variant", values="test_accuracy")
        return (by_seed[variant] - by_seed[baseline]).dropna()

    reference = datasets[0]
    for dataset in datasets[1:]:
        for variant in variants:
            if variant == baseline:
                continue
            change = welch_difference(gaps(dataset, variant), gaps(reference, variant))
            rows.append({"dataset": dataset, "variant": variant, "baseline": baseline,
                         "reference_dataset": reference, "gap_change": change.value,
                         "gap_change_ci95_low": change.low, "gap_change_ci95_high": change.high,
                         "gap_change_p_value": change.p_value, "gap_change_df": change.df, "seeds": change.n})
    return pd.DataFrame(rows, columns=columns)


def readable_summary(summary: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "variant": summary["variant"],
        "recipe": [f"{recipe}, {epochs} epochs" for recipe, epochs in
                   zip(summary["recipe"], summary["epochs"], strict=True)],
        "seeds": summary["seeds"],
        "test accuracy (mean)": summary["test_accuracy_mean"].map(pct),
        "std": summary["test_accuracy_std"].map(lambda v: points(v).lstrip("+")),
        "95% CI": ci_cells(summary["test_accuracy_ci95_low"], summary["test_accuracy_ci95_high"], pct),
        "params": summary["params_total"].map("{:,}".format),
        "32-bit params": summary["params_32bit"].map("{:,}".format),
        "memory (KiB)": summary["memory_kib"].map("{:.2f}".format),
        "compression": ["baseline" if is_base else "n/a" if pd.isna(v) else f"{v:.2f}x" for is_base, v in
                        zip(summary["is_baseline"], summary["compression_vs_baseline"], strict=True)],
        "MACs": summary["macs_total"].map("{:,}".format),
        "binarized MACs": summary["binarized_mac_fraction"].map(pct),
        "accuracy gap (paired)": ["baseline" if is_base else points(gap) for is_base, gap in
                                  zip(summary["is_baseline"], summary["accuracy_gap_vs_baseline"], strict=True)],
        "gap (CI of its verdict)": ["" if row["is_baseline"] else adjusted_cell(row, "accuracy_gap")
                                    for row in summary.to_dict("records")],
        "tested": ["" if row["is_baseline"] else _tested(row) for row in summary.to_dict("records")],
        "gap p (adjusted)": summary["accuracy_gap_p_adjusted"].map(p_cell),
        "runs at chance": summary["runs_at_chance"].map(str),
        "Pareto": summary["on_pareto_frontier"].map({True: "yes", False: ""}),
    })


def _tested(row: dict) -> str:
    """``primary, 1 of 2 (Holm)`` or ``exploratory, 1 of 12``: how a gap was tested."""
    if row["accuracy_gap_family"] == PRIMARY:
        size = int(row["accuracy_gap_family_size"])
        return "primary, alone" if size <= 1 else f"primary, 1 of {size} (Holm)"
    return f"exploratory, 1 of {int(row['accuracy_gap_family_size'])}"


def change_clause(row: dict) -> str:
    """How a variant's gap changes from the reference dataset to
    ``row['dataset']``: a difference with Welch's interval (simultaneous
    over the dataset's variants where there are several), wider or narrower
    only on its verdict."""
    verdict = row["gap_change_verdict"]
    needed = detectable_clause(row, "gap_change")
    what = (f"the gap is {'wider' if verdict == LOWER else 'narrower'} on {title(row['dataset'])}"
            if verdict in (LOWER, HIGHER) else
            "the seeds cannot tell the gap's change from zero" + (f" ({needed}, per dataset)" if needed else ""))
    bounds = (interval(row["gap_change_adj_low"], row["gap_change_adj_high"], points, int(row["seeds"]),
                       label=f"Welch {interval_label(row, 'gap_change')}")
              if row["gap_change_verdict"] != NO_SPREAD else "the same on every seed")
    return (f"from {title(row['reference_dataset'])} to {title(row['dataset'])} the gap changes by "
            f"{points(row['gap_change'])} ({bounds}; {family_clause(row, 'gap_change', 'variants')}, "
            f"p {p_cell(row['gap_change_p_adjusted'])}): {what}")


def _counted(names: list[str]) -> str:
    return ", ".join(f"`{name}`" for name in names)


def cost_findings(tax: pd.DataFrame, tax_change: pd.DataFrame, headline: str | None) -> list[str]:
    """Per dataset: each primary variant's seed-paired gap to the baseline
    with its verdict (tested alone), then how many of the other variants
    cost accuracy, gain it or cannot be told from the baseline (exploratory,
    adjusted over them); per later dataset, the headline variant's gap change
    (Welch) and the variants whose gap changes on their verdicts."""
    sentences = []
    for dataset, group in tax.groupby("dataset", sort=False):
        rows = {row["variant"]: row for row in group.to_dict("records")}
        primary = [name for name, row in rows.items() if row["accuracy_gap_family"] == PRIMARY]
        leading = primary or ([headline] if headline in rows else [])
        for name in leading:
            row = rows[name]
            verdict = gap_verdict(row, "accuracy_gap", "variants")
            sentences.append(
                f"On {title(dataset)}, `{name}` scores {points(row['accuracy_gap_vs_baseline'])} against "
                f"`{row['baseline']}`, paired by seed ({interval(row['accuracy_gap_adj_low'], row['accuracy_gap_adj_high'], points, int(row['seeds']), label=interval_label(row, 'accuracy_gap'))})"
                + (f": {verdict}" if verdict else "") + ".")
        others = {name: gap_word(row, "accuracy_gap") for name, row in rows.items() if name not in leading}
        if others:
            exploratory = [row for name, row in rows.items() if name not in leading]
            size = int(exploratory[0]["accuracy_gap_family_size"])
            how = (f"exploratory, each gap's simultaneous interval and p Bonferroni-adjusted over the {size} of them"
                   if size > 1 else "exploratory, one test")
            costs = [name for name, word in others.items() if word == "a cost"]
            gains = [name for name, word in others.items() if word == "a gain"]
            rest = len(others) - len(costs) - len(gains)
            parts = ([f"{len(costs)} cost accuracy ({_counted(costs)})"] if costs else []) + \
                ([f"{len(gains)} gain ({_counted(gains)})"] if gains else []) + \
                ([f"{rest} cannot be told from `{group['baseline'].iloc[0]}` with these seeds"] if rest else [])
            if len(others) == 1:
                (name, word), = others.items()
                what = {"a cost": "costs accuracy", "a gain": "gains accuracy"}.get(
                    word, f"cannot be told from `{group['baseline'].iloc[0]}` with these seeds")
                sentences.append(f"The {'other ' if leading else ''}variant on {title(dataset)}, `{name}`, "
                                 f"{what} ({how}).")
            else:
                sentences.append(f"Of the {'other ' if leading else ''}{len(others)} variants on "
                                 f"{title(dataset)}, " + "; ".join(parts) + f" ({how}).")
    for dataset, group in tax_change.groupby("dataset", sort=False):
        rows = {row["variant"]: row for row in group.to_dict("records")}
        if headline in rows:
            sentences.append(f"For `{headline}`, " + change_clause(rows[headline]) + ".")
        if set(rows) == {headline}:
            continue
        moved = [name for name, row in rows.items() if row["gap_change_verdict"] in (LOWER, HIGHER)]
        sentences.append(
            (f"The gap changes from {title(group['reference_dataset'].iloc[0])} to {title(dataset)} beyond what the "
             f"seeds can explain for {len(moved)} of {len(rows)} variants ({_counted(moved)})" if moved else
             f"For none of the {len(rows)} variants can the seeds tell the gap's change from "
             f"{title(group['reference_dataset'].iloc[0])} to {title(dataset)} from zero")
            + " (Welch's interval, Bonferroni over the variants): datasets are compared by the difference of their "
              "gaps, never by a ratio.")
    return sentences


def readable_cost(summary: pd.DataFrame, tax_change: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """One row per variant: per dataset its accuracy with its interval and
    its seed-paired gap to the baseline with the interval its verdict is
    read from and its adjusted p; per later dataset the gap's change
    (Welch)."""
    variants = list(dict.fromkeys(summary["variant"]))
    table = pd.DataFrame({"variant": variants})
    table["recipe"] = table["variant"].map(summary.drop_duplicates("variant").set_index("variant")["recipe"])
    first = summary.drop_duplicates("variant").set_index("variant")
    table["tested"] = ["baseline" if v == baseline else _tested(first.loc[v].to_dict()) for v in variants]
    for dataset, group in summary.groupby("dataset", sort=False):
        rows = group.set_index("variant").reindex(variants)
        name = title(dataset)
        table[f"{name} accuracy (95% CI)"] = [
            "" if pd.isna(v) else cell(v, lo, hi, pct) for v, lo, hi in
            zip(rows["test_accuracy_mean"], rows["test_accuracy_ci95_low"], rows["test_accuracy_ci95_high"], strict=True)]
        table[f"{name} gap (CI of its verdict)"] = [
            "baseline" if v == baseline else "" if pd.isna(row["accuracy_gap_vs_baseline"])
            else adjusted_cell(row, "accuracy_gap") for v, row in zip(variants, rows.to_dict("records"), strict=True)]
        table[f"{name} p (adjusted)"] = rows["accuracy_gap_p_adjusted"].map(p_cell).to_numpy()
        table[f"{name} detectable (80% power)"] = ["" if pd.isna(n) else f"{100 * n:.2f} pp"
                                                   for n in rows["accuracy_gap_detectable"]]
    for dataset, group in tax_change.groupby("dataset", sort=False):
        rows = group.set_index("variant").reindex(variants)
        label = f"change {title(group['reference_dataset'].iloc[0])} to {title(dataset)} (Welch, CI of its verdict)"
        table[label] = ["" if pd.isna(row["gap_change"]) else adjusted_cell(row, "gap_change")
                        for row in rows.to_dict("records")]
        table[f"change p (adjusted), {title(dataset)}"] = rows["gap_change_p_adjusted"].map(p_cell).to_numpy()
    return table


def readable_tax(tax: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "dataset": tax["dataset"].map(title),
        "variant": tax["variant"],
        "seeds": tax["seeds"],
        "baseline accuracy": tax["baseline_accuracy_mean"].map(pct),
        "variant accuracy": tax["test_accuracy_mean"].map(pct),
        "gap (paired; CI of its verdict)": [adjusted_cell(row, "accuracy_gap") for row in tax.to_dict("records")],
        "tested": [_tested(row) for row in tax.to_dict("records")],
        "gap p (adjusted)": tax["accuracy_gap_p_adjusted"].map(p_cell),
        "images leaning baseline / variant": [f"{int(b):,} / {int(v):,}" if not pd.isna(b) else "n/a" for b, v in
                                              zip(tax["baseline_ahead"], tax["variant_ahead"], strict=True)],
        "sign test p (Holm)": tax["images_p_holm"].map(p_cell),
    })

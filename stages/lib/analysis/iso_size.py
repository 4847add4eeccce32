"""Networks compared at the same flash: width as a dimension.

Comparing networks of one width answers what binarizing a network does; a
user with a flash budget asks something else: at the same flash, which
network is most accurate? Here each precision family (``fp32``, its int8
form ``fp32+int8``, ``bnn``, ``bnn_fp_edges``, ...) moves along the size
axis through the widths the study trains (``fp32_w0.25`` is ``fp32`` with a
quarter of the hidden channels and units).

- :func:`frontier_table`: per dataset, family and width, the accuracy with
  its interval, the two size measures (the deployed file as it is, and
  Larq's count of weight bits) and RAM and latency at one thread;
- :func:`same_flash_table`: per dataset and per network named in
  ``aggregate.same_flash``, the most accurate float or int8 network of the
  study trained with the same recipe whose file is no larger, and the
  difference of their mean accuracies (separate runs: Welch); a primary
  comparison, tested alone at 5% (:mod:`stages.lib.analysis.verdicts`);
- :func:`width_match_table`: per dataset and 1-bit family, the narrowest
  width whose gap to the baseline is no longer told from zero, and what it
  costs in flash, RAM and latency against the smallest int8 network at
  least as accurate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from stages.lib.analysis.budgets import ranked
from stages.lib.analysis.stats import welch_difference
from stages.lib.analysis.verdicts import HIGHER, LOWER, family_clause, interval_label, needed_clause
from stages.lib.forms.int8 import SUFFIX, is_form, source_variant
from stages.lib.params import split_width
from stages.lib.reporting.wording import cell, gap_word, p_text, pct, points, span

FLOAT, INT8, ONE_BIT, OTHER = "float", "int8", "1-bit", "other"
FRONTIER_COLUMNS = (
    "dataset", "family", "precision", "width", "variant", "recipe", "seeds", "test_accuracy_mean",
    "test_accuracy_ci95_low", "test_accuracy_ci95_high", "tflite_kib", "weights_kib", "larq_kib", "ram_kib",
    "latency_threads", "latency_median_us", "latency_rerun95_low", "latency_rerun95_high", "cpu",
)
SAME_FLASH_COLUMNS = (
    "dataset", "one_bit", "recipe", "one_bit_kib", "one_bit_accuracy_mean", "one_bit_accuracy_ci95_low",
    "one_bit_accuracy_ci95_high", "candidates", "pick", "pick_kib", "pick_accuracy_mean", "pick_accuracy_ci95_low",
    "pick_accuracy_ci95_high", "tied", "seeds", "difference", "difference_ci95_low", "difference_ci95_high",
    "difference_p_value",
)
# The gap of the width shown, as judged in the summary: its verdict's interval
# and, without a verdict, the seeds that would give one.
GAP_COLUMNS = ("accuracy_gap_vs_baseline", "accuracy_gap_verdict", "accuracy_gap_family_size", "accuracy_gap_adj_low",
               "accuracy_gap_adj_high", "accuracy_gap_seeds_needed")
WIDTH_MATCH_COLUMNS = (
    "dataset", "family", "widths", "width", "matching_variant", *GAP_COLUMNS,
    "matching_accuracy_mean", "matching_tflite_kib", "matching_ram_kib", "matching_latency_us", "int8_variant",
    "int8_match_accuracy_mean", "int8_match_tflite_kib", "int8_match_ram_kib", "int8_match_latency_us",
)


def family(variant: str) -> tuple[str, float]:
    """``(family, width)`` of a deployed network's name: ``fp32_w0.25+int8``
    is the family ``fp32+int8`` at width 0.25."""
    base, width = split_width(source_variant(variant))
    return base + (SUFFIX if is_form(variant) else ""), width


def precision(row: dict | pd.Series) -> str:
    """``int8`` for an int8 form, ``1-bit`` for a network with binarized
    MACs, ``float`` for one whose every weight is 32-bit, ``other`` for the
    rest (k-bit DoReFa, ternary, binary weights alone)."""
    if is_form(str(row["variant"])):
        return INT8
    if row["binarized_mac_fraction"] > 0:
        return ONE_BIT
    return FLOAT if row["params_32bit"] == row["params_total"] else OTHER


def frontier_table(summary: pd.DataFrame, latency: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, deployed network), see the module doc; the
    latency is the headline option set's at the fewest threads measured
    (one), with its interval within the benchmark run."""
    if summary.empty:
        return pd.DataFrame(columns=FRONTIER_COLUMNS)
    headline = latency[latency["headline"]] if "headline" in latency else latency.iloc[0:0]
    fewest = headline[headline["threads"] == headline["threads"].min()] if not headline.empty else headline
    timed = fewest.set_index(["dataset", "variant"]) if not fewest.empty else None
    rows = []
    for row in summary.to_dict("records"):
        name, width = family(row["variant"])
        key = (row["dataset"], row["variant"])
        speed = timed.loc[key] if timed is not None and key in timed.index else None
        rows.append({
            **{k: row[k] for k in ("dataset", "variant", "recipe", "seeds", "test_accuracy_mean",
                                   "test_accuracy_ci95_low", "test_accuracy_ci95_high", "tflite_kib",
                                   "weights_kib", "ram_kib")},
            "family": name, "precision": precision(row), "width": width, "larq_kib": row["memory_kib"],
            "latency_threads": math.nan if speed is None else int(speed["threads"]),
            **{k: math.nan if speed is None else speed[k] for k in ("latency_median_us", "latency_rerun95_low",
                                                                     "latency_rerun95_high")},
            "cpu": None if speed is None else speed["cpu"],
        })
    table = pd.DataFrame(rows, columns=FRONTIER_COLUMNS)
    # datasets and families in the study's order, widths narrow to wide
    order = {column: {name: i for i, name in enumerate(dict.fromkeys(table[column]))} for column in ("dataset", "family")}
    return table.sort_values(["dataset", "family", "width"], key=lambda c: c.map(order[c.name]) if c.name in order else c,
                             kind="stable").reset_index(drop=True)


def same_flash_table(frontier: pd.DataFrame, runs: pd.DataFrame, named: Sequence[str],
                     images: dict[str, int] | None = None) -> pd.DataFrame:
    """Per dataset and per network of ``named`` the study has: the float and
    int8 networks trained with its recipe whose deployed file is no larger
    (``candidates``), the most accurate of them (``pick``; within one test
    image a tie, the smaller file picked, as the budget picks do), and the
    pick's mean accuracy minus the named network's, with Welch's interval
    and p-value over their seeds (separate runs). No candidate: a row
    without a pick."""
    rows = []
    for dataset, of in frontier.groupby("dataset", sort=False):
        by_seed = runs[runs["dataset"] == dataset].pivot_table(index="seed", columns="variant",
                                                               values="test_accuracy")
        indexed = of.set_index("variant")
        for name in named:
            if name not in indexed.index:
                continue
            one = indexed.loc[name]
            pool = of[of["precision"].isin([FLOAT, INT8]) & (of["recipe"] == one["recipe"])
                      & (of["tflite_kib"] <= one["tflite_kib"])]
            row = {"dataset": dataset, "one_bit": name, "recipe": one["recipe"], "one_bit_kib": one["tflite_kib"],
                   "one_bit_accuracy_mean": one["test_accuracy_mean"],
                   "one_bit_accuracy_ci95_low": one["test_accuracy_ci95_low"],
                   "one_bit_accuracy_ci95_high": one["test_accuracy_ci95_high"],
                   "candidates": ", ".join(pool.sort_values("tflite_kib")["variant"]), "seeds": int(one["seeds"])}
            if not pool.empty:
                order = ranked(pool, (images or {}).get(dataset))
                pick = order.iloc[0]
                estimate = welch_difference(by_seed[pick["variant"]].dropna(), by_seed[name].dropna(), limit=1.0)
                row.update({"pick": pick["variant"], "pick_kib": pick["tflite_kib"],
                            "pick_accuracy_mean": pick["test_accuracy_mean"],
                            "pick_accuracy_ci95_low": pick["test_accuracy_ci95_low"],
                            "pick_accuracy_ci95_high": pick["test_accuracy_ci95_high"],
                            "tied": ", ".join(order["variant"].iloc[1:][order["tied"].iloc[1:]]),
                            "seeds": estimate.n, "difference": estimate.value,
                            "difference_ci95_low": estimate.low, "difference_ci95_high": estimate.high,
                            "difference_p_value": estimate.p_value})
            rows.append(row)
    return pd.DataFrame(rows, columns=SAME_FLASH_COLUMNS)


def width_match_table(frontier: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame:
    """Per dataset and 1-bit family of more than one width: the widths tried, the narrowest from
    which on the accuracy gap to the baseline (judged in ``summary``) is a
    cost at no width tried (``matching_*``; none: empty), and beside it the smallest int8 network
    trained with the same recipe whose mean accuracy is at least as high (``int8_match_*``: a point
    comparison, the int8 network of the same accuracy), with each one's
    flash, RAM and latency."""
    judged = summary.set_index(["dataset", "variant"])
    rows = []
    for (dataset, name), group in frontier[frontier["precision"] == ONE_BIT].groupby(["dataset", "family"],
                                                                                      sort=False):
        group = group.sort_values("width")
        if group["width"].nunique() < 2:   # one width: nothing to say across widths
            continue
        row = {"dataset": dataset, "family": name, "widths": ", ".join(f"{w:g}" for w in group["width"])}
        verdicts = [judged.at[(dataset, variant), "accuracy_gap_verdict"] for variant in group["variant"]]
        # the widths above the widest told to cost: a narrow width whose wide interval merely holds zero,
        # below a width told to cost, is no match
        widest_cost = max((i for i, verdict in enumerate(verdicts) if verdict == LOWER), default=-1)
        matching = group.to_dict("records")[widest_cost + 1:]
        shown = matching[0] if matching else group.iloc[-1].to_dict()
        row.update({column: judged.at[(dataset, shown["variant"]), column] for column in GAP_COLUMNS})
        if matching:
            row.update({"width": shown["width"], "matching_variant": shown["variant"],
                        "matching_accuracy_mean": shown["test_accuracy_mean"],
                        "matching_tflite_kib": shown["tflite_kib"], "matching_ram_kib": shown["ram_kib"],
                        "matching_latency_us": shown["latency_median_us"]})
            of = frontier[(frontier["dataset"] == dataset) & (frontier["precision"] == INT8)
                          & (frontier["recipe"] == shown["recipe"])
                          & (frontier["test_accuracy_mean"] >= shown["test_accuracy_mean"])]
            if not of.empty:
                match = of.sort_values("tflite_kib").iloc[0]
                row.update({"int8_variant": match["variant"], "int8_match_accuracy_mean": match["test_accuracy_mean"],
                            "int8_match_tflite_kib": match["tflite_kib"], "int8_match_ram_kib": match["ram_kib"],
                            "int8_match_latency_us": match["latency_median_us"]})
        rows.append(row)
    return pd.DataFrame(rows, columns=WIDTH_MATCH_COLUMNS)


def _kib(value: float) -> str:
    return f"{value:.2f} KiB"


def _accuracy(row, prefix: str) -> str:
    return cell(row[f"{prefix}_mean"], row[f"{prefix}_ci95_low"], row[f"{prefix}_ci95_high"], pct)


def same_flash_sentence(row: dict | pd.Series, title) -> str:
    """One dataset's same-flash answer for one network (a row of the judged
    :func:`same_flash_table`), its verdict in words."""
    where = f"{title(row['dataset'])}, within `{row['one_bit']}`'s {_kib(row['one_bit_kib'])}"
    if pd.isna(row["pick"]):
        return (f"{where}: no float or int8 network of this study trained with recipe {row['recipe']} fits, so the "
                "question is not asked; add a narrower width (`fp32_w0.25` and its int8 form, see docs/experiments.md)")
    count = len(str(row["candidates"]).split(", "))
    text = (f"{where}, the most accurate float or int8 network (recipe {row['recipe']}, best of {count}) is "
            f"`{row['pick']}` ({_kib(row['pick_kib'])}, {_accuracy(row, 'pick_accuracy')}) against "
            f"`{row['one_bit']}`'s {_accuracy(row, 'one_bit_accuracy')}: "
            f"{cell(row['difference'], row['same_flash_adj_low'], row['same_flash_adj_high'], points)} "
            f"({interval_label(row, 'same_flash')}, Welch over separate runs, {int(row['seeds'])} seeds each; "
            f"{family_clause(row, 'same_flash', 'networks')}")
    if not pd.isna(row["same_flash_p_adjusted"]):
        text += f", p {p_text(row['same_flash_p_adjusted'])}"
    text += ")"
    verdict = row["same_flash_verdict"]
    if verdict == HIGHER:
        return text + f": at no more flash, `{row['pick']}` is more accurate than `{row['one_bit']}`"
    if verdict == LOWER:
        return text + f": `{row['one_bit']}` is more accurate than the best float or int8 network that fits its flash"
    needed = needed_clause(row, "same_flash")
    return text + ": these seeds cannot tell them apart" + (f" ({needed})" if needed else "")


def width_match_sentence(row: dict | pd.Series, baseline: str, title) -> str:
    """Where a 1-bit family's gap to the baseline stops being told, and
    what that width costs against the int8 network of the same accuracy."""
    start = f"{title(row['dataset'])}, `{row['family']}` at widths {row['widths']}"
    if pd.isna(row["matching_variant"]):
        return (f"{start}: at every width tried its gap to `{baseline}` is a cost (the widest still "
                f"{points(row['accuracy_gap_vs_baseline'])}); a wider network would be needed")
    needed = needed_clause(row, "accuracy_gap")
    told = gap_word(row, "accuracy_gap") + (f" (exploratory; {needed})" if needed else " (exploratory)")
    gap = (f"{points(row['accuracy_gap_vs_baseline'])} ({interval_label(row, 'accuracy_gap')} "
           f"{span(row['accuracy_gap_adj_low'], row['accuracy_gap_adj_high'], points)})")
    latency = ("" if pd.isna(row["matching_latency_us"]) else f", {row['matching_latency_us']:.1f} µs at 1 thread")
    text = (f"{start}: from width {row['width']:g} (`{row['matching_variant']}`) its gap to `{baseline}` is "
            f"{gap}, {told}, in {_kib(row['matching_tflite_kib'])} "
            f"of flash, {_kib(row['matching_ram_kib'])} of RAM{latency}")
    if pd.isna(row["int8_variant"]):
        return text + "; no int8 network of this study is as accurate on average"
    latency = "" if pd.isna(row["int8_match_latency_us"]) else f", {row['int8_match_latency_us']:.1f} µs"
    return (text + f"; the smallest int8 network at least as accurate on average, `{row['int8_variant']}` "
            f"({pct(row['int8_match_accuracy_mean'])}), needs {_kib(row['int8_match_tflite_kib'])}, "
            f"{_kib(row['int8_match_ram_kib'])}{latency}")


def size_sentences(frontier: pd.DataFrame) -> list[str]:
    """Where a narrower width does not shrink the deployed file as it
    shrinks Larq's count of weight bits (LCE packs binary channels in words
    of 32; every file carries a fixed part): per family, each step between
    two widths whose file shrinks by less than three quarters of the factor
    Larq's count shrinks by. One dataset's networks (the files are the same
    on every dataset)."""
    if frontier.empty:
        return []
    first = frontier[frontier["dataset"] == frontier["dataset"].iloc[0]]
    sentences = []
    for name, group in first.groupby("family", sort=False):
        group = group.sort_values("width")
        steps = []
        for narrow, wide in zip(group.iloc[:-1].to_dict("records"), group.iloc[1:].to_dict("records")):
            larq, file = wide["larq_kib"] / narrow["larq_kib"], wide["tflite_kib"] / narrow["tflite_kib"]
            if file < 0.75 * larq:
                steps.append(f"from width {wide['width']:g} to {narrow['width']:g} Larq's count shrinks {larq:.1f}x "
                             f"({_kib(wide['larq_kib'])} to {_kib(narrow['larq_kib'])}), the file {file:.1f}x "
                             f"({_kib(wide['tflite_kib'])} to {_kib(narrow['tflite_kib'])})")
        if steps:
            sentences.append(f"`{name}`: " + "; ".join(steps))
    return sentences


def readable_frontier(frontier: pd.DataFrame, title) -> pd.DataFrame:
    """The networks across widths for people: one row per family and width,
    its accuracy on each dataset, its two sizes, RAM and latency."""
    if frontier.empty:
        return pd.DataFrame()
    datasets = list(dict.fromkeys(frontier["dataset"]))
    first = frontier[frontier["dataset"] == datasets[0]]
    table = pd.DataFrame({
        "family": first["family"].map("`{}`".format), "width": first["width"].map("{:g}".format),
        "file (KiB)": first["tflite_kib"].map("{:.2f}".format),
        "Larq's weight bits (KiB)": first["larq_kib"].map("{:.2f}".format),
        "RAM (KiB)": first["ram_kib"].map("{:.2f}".format),
        "latency, 1 thread (µs)": first["latency_median_us"].map(lambda v: "" if pd.isna(v) else f"{v:.1f}"),
    }).reset_index(drop=True)
    for dataset in datasets:
        of = frontier[frontier["dataset"] == dataset].set_index("variant")
        table[f"{title(dataset)} accuracy (95% CI)"] = [
            _accuracy(of.loc[name], "test_accuracy") if name in of.index else "" for name in first["variant"]]
    return table

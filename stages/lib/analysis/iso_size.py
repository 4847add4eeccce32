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
- :func:`same_flash_table`: per dataset and per 1-bit network named in
  ``aggregate.same_flash``, its equal-flash twin in each form of
  ``aggregate.twin_forms`` (the int8 or int4 form of the widest float
  network whose file in that form is no larger, derived before training by
  :mod:`stages.lib.forms.twins`: one opponent per form, no pick) and the difference of
  their mean accuracies (separate runs: Welch); a primary comparison
  (:mod:`stages.lib.analysis.verdicts`);
- :func:`width_match_table`: per dataset and 1-bit family, the narrowest
  width whose gap to the baseline is no longer told from zero, and what it
  costs in flash, RAM and latency against the smallest int8 network at
  least as accurate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from stages.lib.analysis.stats import ALPHA, paired_difference, welch_difference
from stages.lib.common import StudyError
from stages.lib.analysis.verdicts import (
    EQUIVALENT, HIGHER, LOWER, detectable_clause, family_clause, gap_word, interval_label,
)
from stages.lib.forms.registry import BY_NAME, form_of
from stages.lib.names import family
from stages.lib.wording import cell, p_text, pct, points, span

FLOAT, ONE_BIT, OTHER = "float", "1-bit", "other"
INT8 = BY_NAME["int8"].name   # the width match's form
FRONTIER_COLUMNS = (
    "dataset", "family", "precision", "width", "variant", "recipe", "seeds", "validation_accuracy_mean",
    "test_accuracy_mean",
    "test_accuracy_ci95_low", "test_accuracy_ci95_high", "tflite_kib", "weights_kib", "larq_kib", "ram_kib",
    "latency_threads", "latency_median_us", "latency_rerun95_low", "latency_rerun95_high", "cpu",
)
SAME_FLASH_COLUMNS = (
    "dataset", "one_bit", "recipe", "one_bit_kib", "one_bit_accuracy_mean", "one_bit_accuracy_ci95_low",
    "one_bit_accuracy_ci95_high", "twin", "twin_width", "twin_kib", "twin_accuracy_mean", "twin_accuracy_ci95_low",
    "twin_accuracy_ci95_high", "seeds", "difference", "difference_ci95_low", "difference_ci95_high",
    "difference_p_value", "difference_df",
)
# The gap of the width shown, as judged in the summary: its verdict's interval
# and, without a verdict, the seeds that would give one.
GAP_COLUMNS = ("accuracy_gap_vs_baseline", "accuracy_gap_verdict", "accuracy_gap_family", "accuracy_gap_family_size",
               "accuracy_gap_level", "accuracy_gap_adj_low", "accuracy_gap_adj_high", "accuracy_gap_detectable")
WIDTH_MATCH_COLUMNS = (
    "dataset", "family", "widths", "width", "matching_variant", *GAP_COLUMNS,
    "matching_accuracy_mean", "matching_tflite_kib", "matching_ram_kib", "matching_latency_us", "int8_variant",
    "int8_match_accuracy_mean", "int8_match_tflite_kib", "int8_match_ram_kib", "int8_match_latency_us",
)


def precision(row: dict | pd.Series) -> str:
    """A post-training form's name (``int8``) for its networks, ``1-bit``
    for a network with binarized MACs, ``float`` for one whose every weight
    is 32-bit, ``other`` for the rest (k-bit DoReFa, ternary, binary weights
    alone)."""
    form = form_of(str(row["variant"]))
    if form is not None:
        return form.name
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
            **{k: row[k] for k in ("dataset", "variant", "recipe", "seeds", "validation_accuracy_mean", "test_accuracy_mean",
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


def same_flash_table(frontier: pd.DataFrame, runs: pd.DataFrame, twins: dict[str, dict[str, str]]) -> pd.DataFrame:
    """Per dataset, per 1-bit network of ``twins`` (per post-training form,
    each 1-bit network's name to its twin's trained variant, ``{int8: {bnn:
    fp32_w0.352}}``) the study has and per form: the twin in that form
    (``fp32_w0.352+int8``) against it, the difference of their mean test accuracies with
    Welch's interval, p-value and degrees of freedom over their seeds
    (separate runs). Equal flash is checked on the files deployed: a twin
    whose file is larger than the 1-bit network's stops the table in one line
    (its width was derived from the architecture; the trained file must
    agree)."""
    rows = []
    for dataset, of in frontier.groupby("dataset", sort=False):
        by_seed = runs[runs["dataset"] == dataset].pivot_table(index="seed", columns="variant",
                                                               values="test_accuracy")
        indexed = of.set_index("variant")
        # each 1-bit network against its twin in each form, one network after the other
        one_bits = dict.fromkeys(name for of_form in twins.values() for name in of_form)
        pairs = [(name, BY_NAME[form].network(of_form[name])) for name in one_bits
                 for form, of_form in twins.items() if name in of_form]
        for name, twin in pairs:
            if name not in indexed.index or twin not in indexed.index:
                continue
            one, other = indexed.loc[name], indexed.loc[twin]
            if other["tflite_kib"] > one["tflite_kib"]:
                raise StudyError(f"{dataset}: the twin {twin} deploys to {1024 * other['tflite_kib']:.0f} bytes, more "
                                 f"than {name}'s {1024 * one['tflite_kib']:.0f}: it is not of equal flash; rerun the "
                                 "`twins` stage (`dvc repro -f twins`) and the runs it names")
            estimate = welch_difference(by_seed[twin].dropna(), by_seed[name].dropna(), limit=1.0)
            rows.append({"dataset": dataset, "one_bit": name, "recipe": one["recipe"], "one_bit_kib": one["tflite_kib"],
                         "one_bit_accuracy_mean": one["test_accuracy_mean"],
                         "one_bit_accuracy_ci95_low": one["test_accuracy_ci95_low"],
                         "one_bit_accuracy_ci95_high": one["test_accuracy_ci95_high"],
                         "twin": twin, "twin_width": other["width"], "twin_kib": other["tflite_kib"],
                         "twin_accuracy_mean": other["test_accuracy_mean"],
                         "twin_accuracy_ci95_low": other["test_accuracy_ci95_low"],
                         "twin_accuracy_ci95_high": other["test_accuracy_ci95_high"],
                         "seeds": estimate.n, "difference": estimate.value, "difference_ci95_low": estimate.low,
                         "difference_ci95_high": estimate.high, "difference_p_value": estimate.p_value,
                         "difference_df": estimate.df})
    return pd.DataFrame(rows, columns=SAME_FLASH_COLUMNS)


def validation_costs(runs: pd.DataFrame, dataset: str, variants: Sequence[str], baseline: str) -> list[bool]:
    """Per variant of ``variants`` (one family's widths), whether its
    validation accuracy is told below ``baseline``'s: the seed-paired
    difference, Student t, its p-value adjusted over the family (Bonferroni).
    The width match chooses on this, never on the test accuracy."""
    by_seed = runs[runs["dataset"] == dataset].pivot_table(index="seed", columns="variant",
                                                           values="validation_accuracy")
    if baseline not in by_seed.columns:
        return [False] * len(variants)
    costs = []
    for variant in variants:
        gap = paired_difference(by_seed[variant], by_seed[baseline])
        costs.append(bool(gap.value < 0 and not math.isnan(gap.p_value) and gap.p_value * len(variants) < ALPHA))
    return costs


def width_match_table(frontier: pd.DataFrame, summary: pd.DataFrame, runs: pd.DataFrame | None = None,
                      baseline: str | None = None) -> pd.DataFrame:
    """Per dataset and 1-bit family of more than one width: the widths tried, the narrowest from
    which on the validation accuracy is told below the baseline's at no
    width tried (:func:`validation_costs`; ``matching_*``; none: empty), and beside it the smallest
    int8 network trained with the same recipe whose mean validation accuracy is at least as high
    (``int8_match_*``: a point comparison, the int8 network of the same accuracy), with each one's
    flash, RAM, latency and test accuracy. The width is chosen on the validation images; the
    test gap printed beside it (judged in ``summary``, exploratory) confirms."""
    judged = summary.set_index(["dataset", "variant"])
    rows = []
    for (dataset, name), group in frontier[frontier["precision"] == ONE_BIT].groupby(["dataset", "family"],
                                                                                      sort=False):
        group = group.sort_values("width")
        if group["width"].nunique() < 2:   # one width: nothing to say across widths
            continue
        row = {"dataset": dataset, "family": name, "widths": ", ".join(f"{w:g}" for w in group["width"])}
        costs = (validation_costs(runs, dataset, list(group["variant"]), baseline) if runs is not None
                 else [False] * len(group))
        # the widths above the widest told to cost: a narrow width whose wide interval merely holds zero,
        # below a width told to cost, is no match
        widest_cost = max((i for i, cost in enumerate(costs) if cost), default=-1)
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
                          & (frontier["validation_accuracy_mean"] >= shown["validation_accuracy_mean"])]
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
    """One dataset's equal-flash answer for one 1-bit network (a row of the
    judged :func:`same_flash_table`), its verdict in words."""
    text = (f"{title(row['dataset'])}, at `{row['one_bit']}`'s {_kib(row['one_bit_kib'])}: its equal-flash twin "
            f"`{row['twin']}` ({_kib(row['twin_kib'])}, width {row['twin_width']:g}, fixed before training) scores "
            f"{_accuracy(row, 'twin_accuracy')} against {_accuracy(row, 'one_bit_accuracy')}: "
            f"{cell(row['difference'], row['same_flash_adj_low'], row['same_flash_adj_high'], points)} "
            f"({interval_label(row, 'same_flash')}, Welch over separate runs, {int(row['seeds'])} seeds each; "
            f"{family_clause(row, 'same_flash', 'networks')}")
    if not pd.isna(row["same_flash_p_adjusted"]):
        text += f", adjusted p {p_text(row['same_flash_p_adjusted'])}"
    text += ")"
    verdict = row["same_flash_verdict"]
    within = (f", by less than the {row['same_flash_margin']:g} pp margin"
              if not pd.isna(row.get("same_flash_tost_p_adjusted", math.nan))
              and row["same_flash_tost_p_adjusted"] < ALPHA else "")
    if verdict == HIGHER:
        return text + f": at equal flash, `{row['twin']}` is more accurate than `{row['one_bit']}`{within}"
    if verdict == LOWER:
        return text + f": at equal flash, `{row['one_bit']}` is more accurate than `{row['twin']}`{within}"
    if verdict == EQUIVALENT:
        return text + (f": equivalent within the {row['same_flash_margin']:g} pp margin (two one-sided tests, "
                       f"adjusted p {p_text(row['same_flash_tost_p_adjusted'])})")
    needed = detectable_clause(row, "same_flash")
    return text + ": undecided" + (f" ({needed})" if needed else "")


def width_match_sentence(row: dict | pd.Series, baseline: str, title) -> str:
    """Where a 1-bit family's gap to the baseline stops being told, and
    what that width costs against the int8 network of the same accuracy."""
    start = f"{title(row['dataset'])}, `{row['family']}` at widths {row['widths']}"
    if pd.isna(row["matching_variant"]):
        return (f"{start}: at every width tried its gap to `{baseline}` is a cost (the widest still "
                f"{points(row['accuracy_gap_vs_baseline'])}); a wider network would be needed")
    needed = detectable_clause(row, "accuracy_gap")
    told = gap_word(row, "accuracy_gap") + (f" (exploratory; {needed})" if needed else " (exploratory)")
    gap = (f"{points(row['accuracy_gap_vs_baseline'])} ({interval_label(row, 'accuracy_gap')} "
           f"{span(row['accuracy_gap_adj_low'], row['accuracy_gap_adj_high'], points)})")
    latency = ("" if pd.isna(row["matching_latency_us"]) else f", {row['matching_latency_us']:.1f} µs at 1 thread")
    text = (f"{start}: from width {row['width']:g} (`{row['matching_variant']}`, chosen on the validation images) "
            f"its gap to `{baseline}` on the test images is "
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

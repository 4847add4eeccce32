"""What the robustness evaluations say: the tables `aggregate` makes of
every run's ``robustness.json`` and the corrupted images, and the report's
sentences about them. (The section's settings, slices and file layout are
:mod:`stages.lib.data.robustness`, which the corrupt and evaluation stages
import; these are kept apart so that rewording a sentence reruns no
evaluation.)

The tables (per dataset; the baseline is ``aggregate.baseline``):

- ``robustness``: one row per (variant, corruption): the severity, test
  accuracy under the corruption (mean over seeds, logit-scale interval),
  the drop from the run's clean accuracy (mean, Student-t interval cut at
  the possible ±100 pp), and
  the deployed ``.tflite``'s agreement with Keras on the corrupted images
  (lowest and mean over seeds) and its accuracy.
- ``robustness_gap``: one row per (variant other than the baseline,
  corruption): the robustness gap, the variant's drop minus the baseline's
  drop on the same corruption, paired by seed (positive: the variant loses
  more than the baseline beyond their clean gap), with its interval and
  p-value; exploratory, each variant's corruptions one family
  (:mod:`stages.lib.analysis.verdicts` adds the adjusted columns).
- ``mce``: one row per variant other than the baseline: Hendrycks and
  Dietterich's mean corruption error on the log scale (the geometric mean
  over corruptions of the variant's error over the baseline's), per seed
  (paired), with its interval over seeds; exploratory, a dataset's
  variants one family.
- ``corruption_examples``: the first test image of each dataset, clean and
  under every corruption (784 pixels), for the figure that shows what was
  done.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stages.lib.common import StudyError
from stages.lib.layout import ROBUSTNESS, output
from stages.lib.names import run_name
from stages.lib.layout import corrupted_dir as corrupted_dir_of
from stages.lib.data.robustness import (
    CLEAN, EVALUATION_FILE, EXAMPLE_IMAGE, corrupted_file, read_manifest,
)
from stages.lib.analysis.stats import accuracy_interval, mean_interval, paired_difference
from stages.lib.analysis.tables import FRACTION, MAPPING, POSITIVE_COUNT, TEXT, Runs, read_json
from stages.lib.analysis.verdicts import (
    NO_SPREAD, NOT_TESTED, family_clause, interval_label, detectable_clause, side,
)
from stages.lib.wording import cell, p_cell, pct, points, times, with_interval

EVALUATION_FIELDS = {"clean_accuracy": FRACTION, "test_images": POSITIVE_COUNT, "options": TEXT,
                     "corruptions": MAPPING}
CORRUPTION_FIELDS = {"accuracy": FRACTION, "deployed_accuracy": FRACTION, "deployed_agreement": FRACTION,
                     "images": POSITIVE_COUNT, "deployed_images": POSITIVE_COUNT}


def load_evaluations(robustness_dir: str | Path, study: Runs) -> pd.DataFrame:
    """Every run's accuracy under every corruption (long form: dataset,
    variant, seed, corruption, level, accuracy, clean_accuracy,
    test_images, deployed_accuracy, deployed_agreement); every run must
    have been evaluated on the same corruptions and as many test images."""
    rows, seen = [], {}
    for dataset, variant, seed in study:
        path = output(robustness_dir, run_name(dataset, variant, seed), ROBUSTNESS) / EVALUATION_FILE
        evaluation = read_json(path, EVALUATION_FIELDS)
        names = (tuple(evaluation["corruptions"]), evaluation["test_images"])
        if seen.setdefault(dataset, names) != names:
            raise StudyError(f"{path} was evaluated on other corruptions or test images than the other runs of "
                             f"{dataset}: run `dvc repro` to evaluate every run on the same ones")
        for name, result in evaluation["corruptions"].items():
            if not isinstance(result, dict) or any(field not in result or not kind.accepts(result[field])
                                                   for field, kind in CORRUPTION_FIELDS.items()):
                raise StudyError(f"{path}: corruptions.{name} must hold {', '.join(CORRUPTION_FIELDS)}: "
                                 "rerun the stage that writes it")
            rows.append({"dataset": dataset, "variant": variant, "seed": seed, "corruption": name,
                         "level": result.get("level"), "accuracy": result["accuracy"],
                         "clean_accuracy": evaluation["clean_accuracy"], "test_images": evaluation["test_images"],
                         "deployed_images": result["deployed_images"],
                         "deployed_accuracy": result["deployed_accuracy"],
                         "deployed_agreement": result["deployed_agreement"]})
    return pd.DataFrame(rows)


def _seed_series(evaluations: pd.DataFrame, variant: str, corruption: str, column: str) -> pd.Series:
    rows = evaluations[(evaluations["variant"] == variant) & (evaluations["corruption"] == corruption)]
    return rows.set_index("seed")[column]


def accuracy_table(evaluations: pd.DataFrame, variants: Sequence[str]) -> pd.DataFrame:
    """One row per (variant, corruption) of one dataset, see the module doc."""
    rows = []
    for variant in variants:
        for corruption, group in evaluations[evaluations["variant"] == variant].groupby("corruption", sort=False):
            images = int(group["test_images"].iloc[0])
            accuracy = accuracy_interval(group["accuracy"], images)
            clean = accuracy_interval(group["clean_accuracy"], images)
            drop = paired_difference(group["clean_accuracy"].to_numpy(), group["accuracy"].to_numpy())
            rows.append({
                "variant": variant, "corruption": corruption, "level": group["level"].iloc[0],
                "seeds": len(group), "images": images, "clean_accuracy_mean": clean.value,
                "accuracy_mean": accuracy.value, "accuracy_ci95_low": accuracy.low,
                "accuracy_ci95_high": accuracy.high,
                "drop": drop.value, "drop_ci95_low": drop.low, "drop_ci95_high": drop.high,
                "deployed_images": int(group["deployed_images"].min()),
                "deployed_accuracy_mean": float(group["deployed_accuracy"].mean()),
                "deployed_agreement_min": float(group["deployed_agreement"].min()),
                "deployed_agreement_mean": float(group["deployed_agreement"].mean()),
            })
    return pd.DataFrame(rows)


def gap_table(evaluations: pd.DataFrame, variants: Sequence[str], baseline: str) -> pd.DataFrame:
    """One row per (variant other than the baseline, corruption) of one
    dataset: the variant's drop minus the baseline's, paired by seed (each
    variant's corruptions are one family of the verdicts)."""
    drops = evaluations.assign(drop=evaluations["clean_accuracy"] - evaluations["accuracy"])
    corruptions = list(dict.fromkeys(drops["corruption"]))
    rows = []
    for variant in variants:
        if variant == baseline:
            continue
        family = []
        for corruption in corruptions:
            mine = _seed_series(drops, variant, corruption, "drop")
            theirs = _seed_series(drops, baseline, corruption, "drop")
            seeds = mine.index.intersection(theirs.index)
            gap = paired_difference(mine[seeds].to_numpy(), theirs[seeds].to_numpy(), limit=2.0)
            family.append({"variant": variant, "baseline": baseline, "corruption": corruption, "seeds": gap.n,
                           "robustness_gap": gap.value, "robustness_gap_ci95_low": gap.low,
                           "robustness_gap_ci95_high": gap.high, "robustness_gap_p_value": gap.p_value})
        rows.extend(family)
    return pd.DataFrame(rows, columns=["variant", "baseline", "corruption", "seeds", "robustness_gap",
                                       "robustness_gap_ci95_low",
                                       "robustness_gap_ci95_high", "robustness_gap_p_value"])


def mce_table(evaluations: pd.DataFrame, variants: Sequence[str], baseline: str) -> pd.DataFrame:
    """One row per variant other than the baseline of one dataset: its mean
    corruption error (mCE) against the baseline on the log scale. Per seed,
    the mean over corruptions of log(variant's error / baseline's error),
    each error as (wrong + 1/2) / (images + 1) so that no corruption divides
    by zero; across seeds, the mean of those logs with its Student-t interval
    and the p-value of the test that it is zero, all mapped back: the mCE is
    the geometric mean of the corruption errors (CE), its interval stays
    above zero, and a corruption the baseline handles almost perfectly
    cannot dominate it as it would a mean of ratios. With one severity per
    corruption, Hendrycks and Dietterich's CE (errors summed over
    severities) is this ratio."""
    logs = evaluations.assign(log_error=np.log(((1 - evaluations["accuracy"]) * evaluations["test_images"] + 0.5)
                                               / (evaluations["test_images"] + 1)))
    corruptions = list(dict.fromkeys(logs["corruption"]))
    rows = []
    for variant in variants:
        if variant == baseline:
            continue
        per_seed = []
        for seed in sorted(set(logs.loc[logs["variant"] == variant, "seed"])):
            differences = [_seed_series(logs, variant, corruption, "log_error").get(seed, math.nan)
                           - _seed_series(logs, baseline, corruption, "log_error").get(seed, math.nan)
                           for corruption in corruptions]
            if not any(math.isnan(d) for d in differences):
                per_seed.append(float(np.mean(differences)))
        mce = mean_interval(per_seed)
        back = (lambda v: math.nan if math.isnan(v) else math.exp(v))
        rows.append({"variant": variant, "seeds": mce.n, "corruptions": len(corruptions), "mce": back(mce.value),
                     "mce_ci95_low": back(mce.low), "mce_ci95_high": back(mce.high), "mce_p_value": mce.p_value})
    return pd.DataFrame(rows, columns=["variant", "seeds", "corruptions", "mce", "mce_ci95_low", "mce_ci95_high",
                                       "mce_p_value"])


def examples_table(corrupted_dir: str | Path, datasets: Sequence[str]) -> pd.DataFrame:
    """The first test image of each dataset under every corruption it was
    corrupted with, as 784 space-separated pixels in row order."""
    from stages.lib.data.datasets import read_idx

    rows = []
    for dataset in datasets:
        folder = corrupted_dir_of(dataset, corrupted_dir)
        manifest = read_manifest(folder)
        rows.append({"dataset": dataset, "corruption": CLEAN, "level": None, "image": EXAMPLE_IMAGE,
                     "pixels": " ".join(map(str, manifest["example"]["pixels"]))})
        for name, entry in manifest["corruptions"].items():
            images = read_idx(folder / corrupted_file(name))
            rows.append({"dataset": dataset, "corruption": name, "level": entry["level"], "image": EXAMPLE_IMAGE,
                         "pixels": " ".join(map(str, images[EXAMPLE_IMAGE].ravel().tolist()))})
    return pd.DataFrame(rows)


# -- what the report says ----------------------------------------------------

def _needed(row: dict[str, Any]) -> str:
    """What the row's seeds could detect, or that its spread is zero."""
    return detectable_clause(row, "robustness_gap") or "no spread to estimate power from"


def _named(rows: Sequence[dict[str, Any]]) -> str:
    return ", ".join(f"{row['corruption'].replace('_', ' ')} {_gap_cell(row)}" for row in rows)


def _gap_cell(row: dict[str, Any]) -> str:
    """The extra drop with its simultaneous interval (the one its verdict is
    read from), or "the same on every seed" where it has no spread."""
    if row["robustness_gap_verdict"] == NO_SPREAD:
        return f"{points(row['robustness_gap'], 1)} (the same on every seed)"
    return cell(row["robustness_gap"], row["robustness_gap_adj_low"], row["robustness_gap_adj_high"],
                lambda v: points(v, 1))


def _mce_ratio(row: dict[str, Any]) -> str:
    if row["mce_verdict"] == NOT_TESTED:  # tables written before the log-scale mCE: a mean of ratios, not judged
        return f"{times(row['mce'])} (a mean of ratios from older tables, not tested)"
    return with_interval(row["mce"], row["mce_adj_low"], row["mce_adj_high"], times)


def _mce_clause(row: dict[str, Any], baseline: str, short: bool = False) -> str:
    told = side(row, "mce")
    ratio = _mce_ratio(row)
    if row["mce_verdict"] == NOT_TESTED:
        return f"mCE {ratio}" if short else f"mean corruption error (mCE) is {ratio} `{baseline}`'s"
    if short:
        return f"mCE {ratio}, " + {1: "more errors", -1: "fewer errors", 0: "not told from 1.00x"}[told]
    verdict = {1: "more errors than", -1: "fewer errors than", 0: "not told apart from"}[told]
    return (f"mean corruption error (mCE, the geometric mean over corruptions of its error over `{baseline}`'s) is "
            f"{ratio} ({interval_label(row, 'mce')}, {family_clause(row, 'mce', 'variants')}): {verdict} "
            f"`{baseline}` across the corruptions" + (f"; {needed}" if (needed := detectable_clause(row, "mce")) else ""))


def checked_images(accuracy: pd.DataFrame, noun: str = "") -> str:
    """How many images of each corruption the deployed models were checked
    on: "the first 2,000 of each corruption", or, where forms differ (an
    int8 form is checked on every image), the count most variants share and
    the others named ("..., 10,000 for `fp32+int8`")."""
    counts = accuracy.groupby("deployed_images", sort=True)["variant"].unique()
    if counts.empty:
        return f"no{noun}"
    main = max(counts.index, key=lambda count: (len(counts[count]), -count))
    others = [f", {count:,} for {', '.join(f'`{variant}`' for variant in counts[count])}"
              for count in counts.index if count != main]
    every = "images" in accuracy and main >= accuracy["images"].max()
    return f"{'all' if every else 'the first'} {main:,}{noun} of each corruption" + "".join(others)


def evaluated_images(accuracy: pd.DataFrame, runs: pd.DataFrame) -> str:
    """Which test images the runs were evaluated on under the corruptions:
    "its 10,000 test images", or "2,000 of its 10,000 test images, ..."."""
    total = int(runs["test_images"].max())
    images = int(accuracy["images"].max()) if "images" in accuracy and not accuracy.empty else total
    if images >= total:
        return f"its {total:,} test images"
    return (f"{images:,} of its {total:,} test images (drawn once by `robustness.seed`, the same for every run and "
            "form: `robustness.test_images`)")


def robustness_findings(gaps: pd.DataFrame, mce: pd.DataFrame, accuracy: pd.DataFrame, headline: str | None,
                        dataset_title) -> list[str]:
    """Per dataset, led by the headline variant: on how many corruptions it
    loses more than the baseline beyond their clean gap (and on which, with
    intervals), on how many less, the rest not told apart; its largest
    extra drops when none is told; its mCE; then the other variants in one
    sentence, and the deployed models' agreement on corrupted inputs. None
    without a variant to compare with the baseline."""
    if gaps.empty:
        return []
    sentences = []
    for dataset, group in gaps.groupby("dataset", sort=False):
        baseline = str(group["baseline"].iloc[0])
        family = group["corruption"].nunique()
        seeds = int(group["seeds"].max())
        rows = {variant: g.to_dict("records") for variant, g in group.groupby("variant", sort=False)}
        mces = {row["variant"]: row for row in mce[mce["dataset"] == dataset].to_dict("records")}
        if headline in rows:
            mine = rows[headline]
            worse = [row for row in mine if side(row, "robustness_gap") > 0]
            better = [row for row in mine if side(row, "robustness_gap") < 0]
            rest = family - len(worse) - len(better)
            if worse or better:
                parts = ([f"loses more accuracy than `{baseline}` beyond their clean gap on {len(worse)} "
                          f"({_named(worse)})"] if worse else []) + \
                    ([f"less on {len(better)} ({_named(better)})"] if better else []) + \
                    ([f"on the other {rest} the difference cannot be told from zero with {seeds} seeds"] if rest else [])
                sentence = (f"On {dataset_title(dataset)}, under {family} corruptions, `{headline}` " + "; ".join(parts)
                            + f" (Bonferroni over the {family} corruptions, simultaneous intervals).")
            else:
                sentence = (f"On {dataset_title(dataset)}, under {family} corruptions, `{headline}`'s extra accuracy drop "
                            f"against `{baseline}` (its drop from clean minus `{baseline}`'s, paired by seed) cannot be "
                            f"told from zero on any of them with {seeds} seeds (Bonferroni over the {family} corruptions).")
            if not worse:
                largest = sorted(mine, key=lambda row: -row["robustness_gap"])[:3]
                largest = [row for row in largest if row["robustness_gap"] > 0]
                if largest:
                    sentence += (f" Its largest extra drops, none told from zero (simultaneous intervals): "
                                 f"{_named(largest)}; {_needed(largest[0])}.")
            sentences.append(sentence)
            if headline in mces and not pd.isna(mces[headline]["mce"]):
                sentences.append(f"`{headline}`'s {_mce_clause(mces[headline], baseline)}.")
        others = [variant for variant in rows if variant != headline]
        if others:
            sentences.append(_others_sentence(others, rows, mces, baseline, dataset_title(dataset), family))
    for dataset, group in accuracy.groupby("dataset", sort=False):
        worst = group.sort_values("deployed_agreement_min", kind="stable").iloc[0]
        checked = checked_images(group)
        if worst["deployed_agreement_min"] >= 1:
            sentences.append(f"On {dataset_title(dataset)}, every deployed `.tflite` gives Keras's answer on every "
                             f"corrupted image checked ({checked}, every run).")
        else:
            sentences.append(f"On {dataset_title(dataset)}, the deployed `.tflite` files agree with Keras on at "
                             f"least {pct(worst['deployed_agreement_min'])} of the corrupted images checked ("
                             f"{checked}, every run); lowest: `{worst['variant']}` under "
                             f"{worst['corruption'].replace('_', ' ')}.")
    return sentences


def _others_sentence(others: Sequence[str], rows: dict[str, list[dict[str, Any]]], mces: dict[str, dict[str, Any]],
                     baseline: str, dataset_title: str, family: int) -> str:
    """The other variants in one sentence: those with an extra drop told
    from zero, and on which corruptions; those whose mCE is told above or
    below 1; how many of the rest."""
    told = []
    for variant in others:
        worse = [row["corruption"].replace("_", " ") for row in rows[variant] if side(row, "robustness_gap") > 0]
        better = [row["corruption"].replace("_", " ") for row in rows[variant] if side(row, "robustness_gap") < 0]
        if worse or better:
            told.append(f"`{variant}`" + (f" more on {', '.join(worse)}" if worse else "")
                        + (" and" if worse and better else "") + (f" less on {', '.join(better)}" if better else ""))
    sentence = (f"Of the {len(others)} other variants on {dataset_title}, " if len(others) > 1 else
                f"Of the other variant on {dataset_title}, `{others[0]}`, ")
    if told:
        sentence += (f"{len(told)} lose{'s' if len(told) == 1 else ''} more or less than `{baseline}` beyond the clean "
                     f"gap on some corruptions ({'; '.join(told)}); for the other {len(others) - len(told)} no "
                     f"extra drop is told from zero (Bonferroni over the {family} corruptions each).")
    else:
        sentence += (f"none has an extra drop told from zero (Bonferroni over the {family} corruptions each)."
                     if len(others) > 1 else
                     f"no extra drop is told from zero (Bonferroni over the {family} corruptions).")
    by_side = {1: [], -1: []}
    for variant in others:
        row = mces.get(variant)
        if row is not None and not pd.isna(row["mce"]):
            above = side(row, "mce")
            if above:
                by_side[above].append(f"`{variant}` {_mce_ratio(row)}")
    parts = ([f"above 1.00x for {', '.join(by_side[1])}"] if by_side[1] else []) + \
        ([f"below for {', '.join(by_side[-1])}"] if by_side[-1] else [])
    rest = len(others) - len(by_side[1]) - len(by_side[-1])
    if len(others) == 1:
        row = mces.get(others[0])
        if row is not None and not pd.isna(row["mce"]):
            told = "is told above" if by_side[1] else "is told below" if by_side[-1] else "is not told from"
            sentence += f" Its mCE, {_mce_ratio(row)}, {told} 1.00x."
        return sentence
    sentence += (" Their mCE is " + "; ".join(parts) + (f"; not told from 1.00x for the other {rest}" if rest else "")
                 + "." if parts else " No mCE of theirs is told from 1.00x.")
    return sentence


def robustness_line(gaps: pd.DataFrame, mce: pd.DataFrame, headline: str, dataset_title) -> str:
    """The answer's line: per dataset, on which corruptions the headline
    variant loses more (or less) than the baseline beyond the clean gap, or
    that none is told from zero and the largest; its mCE and whether it is
    told from 1."""
    parts = []
    for dataset, group in gaps[gaps["variant"] == headline].groupby("dataset", sort=False):
        rows = group.to_dict("records")
        worse = [row for row in rows if side(row, "robustness_gap") > 0]
        better = [row for row in rows if side(row, "robustness_gap") < 0]
        seeds = int(group["seeds"].max())
        if worse or better:
            part = (f"{dataset_title(dataset)}: loses more on {len(worse)} of {len(rows)} corruptions"
                    + (f" ({', '.join(row['corruption'].replace('_', ' ') for row in worse)})" if worse else "")
                    + (f", less on {len(better)} ({', '.join(row['corruption'].replace('_', ' ') for row in better)})"
                       if better else ""))
        else:
            largest = max(rows, key=lambda row: row["robustness_gap"])
            part = (f"{dataset_title(dataset)}: on none of {len(rows)} corruptions is the extra drop told from zero "
                    f"with {seeds} seeds (largest: {_named([largest])}, simultaneous interval; {_needed(largest)})")
        row = mce[(mce["dataset"] == dataset) & (mce["variant"] == headline)]
        if len(row) and not pd.isna(row["mce"].iloc[0]):
            part += "; " + _mce_clause(row.iloc[0].to_dict(), str(group["baseline"].iloc[0]), short=True)
        parts.append(part)
    return "; ".join(parts)


def readable_robustness(accuracy: pd.DataFrame, gaps: pd.DataFrame, variant: str, baseline: str) -> pd.DataFrame:
    """Per corruption, for one dataset: the baseline's and the variant's
    accuracy with their intervals, the variant's extra drop with its
    simultaneous interval and adjusted p (Bonferroni over the corruptions)."""
    by = accuracy.set_index(["variant", "corruption"])
    gap = gaps[gaps["variant"] == variant].set_index("corruption")
    rows = []
    for corruption in gap.index:
        base, mine, row = by.loc[(baseline, corruption)], by.loc[(variant, corruption)], gap.loc[corruption]
        rows.append({
            "corruption": corruption.replace("_", " "),
            "level": "" if pd.isna(mine["level"]) else str(int(mine["level"])),
            f"`{baseline}` accuracy": cell(base["accuracy_mean"], base["accuracy_ci95_low"], base["accuracy_ci95_high"],
                                           pct),
            f"`{variant}` accuracy": cell(mine["accuracy_mean"], mine["accuracy_ci95_low"],
                                          mine["accuracy_ci95_high"], pct),
            "extra drop (simultaneous CI)": _gap_cell(row.to_dict()),
            "adjusted p": p_cell(row["robustness_gap_p_adjusted"]),
            "detectable with these seeds (80% power)": "" if pd.isna(row["robustness_gap_detectable"]) else
            f"{100 * row['robustness_gap_detectable']:.2f} pp",
        })
    return pd.DataFrame(rows)


def readable_accuracy(accuracy: pd.DataFrame) -> pd.DataFrame:
    """Every (variant, corruption) of one dataset: accuracy, drop from
    clean, and the deployed model's accuracy and agreement on the images it
    was checked on (how many in the header, or per row where the forms were
    checked on different counts), for the details file."""
    counts = accuracy["deployed_images"].unique()
    deployed = f"deployed: accuracy (first {int(counts[0]):,})" if len(counts) == 1 else "deployed: accuracy"
    table = pd.DataFrame({
        "variant": accuracy["variant"],
        "corruption": accuracy["corruption"].str.replace("_", " "),
        "accuracy (95% CI)": [cell(v, lo, hi, pct) for v, lo, hi in zip(
            accuracy["accuracy_mean"], accuracy["accuracy_ci95_low"], accuracy["accuracy_ci95_high"], strict=True)],
        "drop from clean (95% CI)": [cell(v, lo, hi, lambda x: points(x, 1)) for v, lo, hi in zip(
            accuracy["drop"], accuracy["drop_ci95_low"], accuracy["drop_ci95_high"], strict=True)],
        deployed: [pct(v) for v in accuracy["deployed_accuracy_mean"]],
    })
    if len(counts) > 1:
        table["deployed: images checked"] = [f"first {int(v):,}" for v in accuracy["deployed_images"]]
    table["deployed: agreement (lowest run)"] = [pct(v) for v in accuracy["deployed_agreement_min"]]
    return table

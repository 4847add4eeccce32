"""Per class and per image: every run's test predictions, the accuracy on
each class with its gap to the baseline (exploratory: the classes of a variant one family), the mean
confusion matrices, and the exact sign test over images of two networks
(McNemar's test generalized to several seeds); and their sentences."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from stages.lib.common import StudyError
from stages.lib.layout import RUNS, output
from stages.lib.names import run_name
from stages.lib.data.datasets import dataset as registered_dataset
from stages.lib.analysis.stats import (
    ALPHA, accuracy_interval, holm, image_sign_test, paired_difference, simultaneous_means,
)
from stages.lib.analysis.tables import Runs
from stages.lib.analysis.verdicts import HIGHER, LOWER, adjusted_cell
from stages.lib.wording import holm_clause, p_text, pct, points


def load_predictions(runs_dir: str | Path, study: Runs) -> pd.DataFrame:
    """Every run's answer to every test image (long form: dataset, variant,
    seed, image, label, predicted)."""
    frames = []
    for dataset, variant, seed in study:
        path = output(runs_dir, run_name(dataset, variant, seed), RUNS) / "predictions.csv"
        try:
            frame = pd.read_csv(path)
        except FileNotFoundError:
            raise StudyError(f"{path} is missing: run `dvc repro` to produce it") from None
        except (ValueError, pd.errors.ParserError) as err:
            raise StudyError(f"{path} is damaged ({err}): retrain it with `dvc repro --force` on its train "
                             "stage") from None
        if list(frame.columns) != ["label", "predicted"] or frame.empty:
            raise StudyError(f"{path} is damaged (not label,predicted rows): retrain it with "
                             "`dvc repro --force` on its train stage")
        classes = len(registered_dataset(dataset).class_names)
        if not all(pd.api.types.is_integer_dtype(frame[c]) and frame[c].between(0, classes - 1).all()
                   for c in frame.columns):
            raise StudyError(f"{path} is damaged (labels and answers must be classes 0 to {classes - 1}): retrain "
                             "it with `dvc repro --force` on its train stage")
        frames.append(frame.assign(dataset=dataset, variant=variant, seed=seed, image=np.arange(len(frame))))
    return pd.concat(frames, ignore_index=True)[["dataset", "variant", "seed", "image", "label", "predicted"]]


def per_class_table(predictions: pd.DataFrame, variants: Sequence[str], baseline: str,
                    class_names: Sequence[str]) -> pd.DataFrame:
    """One row per (variant, class) of one dataset, see the module doc.
    The gaps of one variant's classes are one family: their p-values (paired
    t-test over seeds) are Holm-adjusted together."""
    correct = predictions.assign(correct=predictions["label"] == predictions["predicted"])
    accuracy = correct.groupby(["variant", "label", "seed"])["correct"].mean()
    images = correct[correct["seed"] == correct["seed"].iloc[0]].groupby(["variant", "label"]).size()
    rows = []
    for variant in variants:
        for label in sorted(correct["label"].unique()):
            by_seed = accuracy.loc[(variant, label)]
            count = int(images.loc[(variant, label)])
            mean = accuracy_interval(by_seed, count)
            row = {"variant": variant, "class": int(label),
                   "class_name": class_names[label] if label < len(class_names) else str(label),
                   "images": count, "seeds": mean.n, "accuracy_mean": mean.value, "accuracy_ci95_low": mean.low,
                   "accuracy_ci95_high": mean.high, "gap_vs_baseline": math.nan, "gap_ci95_low": math.nan,
                   "gap_ci95_high": math.nan, "gap_p_value": math.nan}
            if baseline in variants and variant != baseline:
                base = accuracy.loc[(baseline, label)].reindex(by_seed.index)
                gap = paired_difference(by_seed, base)
                row.update(gap_vs_baseline=gap.value, gap_ci95_low=gap.low, gap_ci95_high=gap.high,
                           gap_p_value=gap.p_value)
            rows.append(row)
    return pd.DataFrame(rows)


def confusion_table(predictions: pd.DataFrame, variants: Sequence[str], baseline: str | None = None) -> pd.DataFrame:
    """Mean over seeds of how many test images of each label got each
    answer, every (label, predicted) pair listed. With ``baseline``, each
    other variant's cell also holds its difference from the baseline's,
    paired by seed (``images_difference``), with the simultaneous interval
    over the matrix's cells (Bonferroni: each at level 0.05 / cells; Student
    t across the seeds, ``scipy.stats.ttest_1samp``) and its adjusted p: a
    cell's difference is told from zero only when that p is below 0.05
    (where every seed differs by the same count, the exact sign-flip test)."""
    classes = sorted(set(predictions["label"]) | set(predictions["predicted"]))
    seeds_of = predictions.groupby("variant")["seed"].unique()
    cells = pd.MultiIndex.from_product([classes, classes], names=["label", "predicted"])
    per_seed = {}  # variant -> (cells x seeds) counts
    for variant in variants:
        of = predictions[predictions["variant"] == variant]
        counts = of.groupby(["label", "predicted", "seed"]).size().unstack("seed")
        per_seed[variant] = counts.reindex(index=cells, columns=sorted(seeds_of.get(variant, [])), fill_value=0
                                           ).fillna(0)
    frames = []
    for variant in variants:
        frame = pd.DataFrame({"variant": variant, "images": per_seed[variant].mean(axis=1)}, index=cells)
        if baseline is not None:
            frame = frame.join(_cell_differences(per_seed[variant], per_seed.get(baseline), variant == baseline))
        frames.append(frame.reset_index())
    columns = ["variant", "label", "predicted", "images"] + (list(DIFFERENCE_COLUMNS) if baseline is not None else [])
    return pd.concat(frames, ignore_index=True)[columns]


DIFFERENCE_COLUMNS = ("images_difference", "images_difference_adj_low", "images_difference_adj_high",
                      "images_difference_p_adjusted")


def _cell_differences(variant: pd.DataFrame, baseline: pd.DataFrame | None, same: bool) -> pd.DataFrame:
    """Per cell, the variant's count minus the baseline's over the seeds
    both have, its simultaneous interval and adjusted p (empty for the
    baseline itself and where fewer than two seeds pair)."""
    empty = pd.DataFrame(np.nan, index=variant.index, columns=list(DIFFERENCE_COLUMNS))
    if same or baseline is None:
        return empty
    seeds = [seed for seed in variant.columns if seed in baseline.columns]
    if len(seeds) < 2:
        return empty
    mean, low, high, p_adjusted = simultaneous_means(variant[seeds].to_numpy(float) - baseline[seeds].to_numpy(float))
    return pd.DataFrame({"images_difference": mean, "images_difference_adj_low": low,
                         "images_difference_adj_high": high,
                         "images_difference_p_adjusted": p_adjusted}, index=variant.index)


PAIRED_IMAGES_COLUMNS = ("variant", "seeds", "images", "variant_ahead", "baseline_ahead", "p_value", "p_holm")


def paired_images_table(predictions: pd.DataFrame, variants: Sequence[str], baseline: str) -> pd.DataFrame:
    """One row per variant other than the baseline: on the same test
    images, all seeds at once, how many images the variant's seeds get right
    more often than the baseline's and how many less, and the exact sign
    test of the two (:func:`stages.lib.analysis.stats.image_sign_test`; McNemar's
    test when there is one seed), Holm-adjusted over the variants."""
    correct = predictions.assign(correct=predictions["label"] == predictions["predicted"])
    right = correct.pivot_table(index=["seed", "image"], columns="variant", values="correct", aggfunc="sum")
    rows = []
    for variant in variants if baseline in variants else []:
        if variant == baseline:
            continue
        pairs = right[[variant, baseline]].dropna()
        if pairs.empty or len(pairs) < right[variant].notna().sum():
            raise StudyError(f"{variant} and {baseline} answered different test sets: rerun `dvc repro`")
        by_image = pairs.groupby(level="image").sum()
        ahead, behind, p_value = image_sign_test(by_image[variant], by_image[baseline])
        rows.append({"variant": variant, "seeds": pairs.index.get_level_values("seed").nunique(),
                     "images": len(by_image), "variant_ahead": ahead, "baseline_ahead": behind, "p_value": p_value})
    table = pd.DataFrame(rows, columns=PAIRED_IMAGES_COLUMNS[:-1])
    table["p_holm"] = holm(table["p_value"])
    return table


def images_clause(test: dict, variant: str, baseline: str, family: int) -> str:
    """The paired-images test in words: how many of the same test images
    lean to each network over all seeds, the test and its adjusted
    p-value, and whether it tells the two apart."""
    p_holm = test["p_holm"] if "p_holm" in test else test["images_p_holm"]
    apart = p_holm < ALPHA
    return (f"on the same {int(test['images']):,} test images, all {int(test['seeds'])} seeds at once, "
            f"{int(test['baseline_ahead']):,} images go more often to `{baseline}` and "
            f"{int(test['variant_ahead']):,} to `{variant}` (exact sign test over images, McNemar's test generalized "
            f"to several seeds; {holm_clause(p_holm, family, 'variants tested')}): "
            + ("these trained networks answer differently" if apart else "it cannot tell these trained networks apart"))


def class_findings(per_class: pd.DataFrame, paired_images: pd.DataFrame, baseline: str) -> list[str]:
    """Per variant other than the baseline: the classes whose seed-paired
    gap to the baseline is told from zero (exploratory, Bonferroni over the
    variant's classes, simultaneous intervals; losses first, largest
    first), or that no class stands out; then the paired-images test on the
    same test images."""
    sentences = []
    tests = paired_images.set_index("variant")
    for variant, group in per_class.groupby("variant", sort=False):
        if variant == baseline or group["gap_vs_baseline"].isna().all():
            continue
        shown = group[group["gap_verdict"].isin([LOWER, HIGHER])].sort_values("gap_vs_baseline").to_dict("records")
        seeds = int(group["seeds"].max())
        if shown:
            parts = [f"{row['class_name']} ({'loses' if row['gap_vs_baseline'] < 0 else 'gains'} "
                     f"{adjusted_cell(row, 'gap')})" for row in shown]
            sentence = (f"The classes on which `{variant}` differs from `{baseline}` (Bonferroni over its "
                        f"{len(group)} classes, simultaneous intervals): " + ", ".join(parts))
        else:
            sentence = (f"No class stands out for `{variant}` against `{baseline}`: none of its {len(group)} "
                        f"per-class gaps is told from zero once adjusted over the classes ({seeds} seeds each)")
        if variant in tests.index:
            sentence += "; " + images_clause({**tests.loc[variant].to_dict(), "variant": variant}, variant, baseline,
                                             len(tests))
        sentences.append(sentence + ".")
    return sentences


def readable_per_class(per_class: pd.DataFrame) -> pd.DataFrame:
    """Per class: each variant's mean accuracy and its seed-paired gap to
    the baseline."""
    table = per_class.assign(
        cell=[f"{pct(a)} ({'baseline' if pd.isna(g) or (g == 0 and lo == 0) else points(g)})"
              for a, g, lo in zip(per_class["accuracy_mean"], per_class["gap_vs_baseline"], per_class["gap_ci95_low"],
                                  strict=True)])
    wide = table.pivot_table(index=["class", "class_name"], columns="variant", values="cell", aggfunc="first",
                             sort=False)
    return wide[list(dict.fromkeys(per_class["variant"]))].reset_index().rename(columns={"class_name": "name"})


def class_summary(per_class: pd.DataFrame, paired_images: pd.DataFrame, dataset_title: str) -> str:
    """One dataset in one sentence: which variants have classes whose gap
    is told from zero once adjusted over their classes (or that none
    has), and for how many variants the sign test over images tells the
    trained networks apart (Holm over the variants)."""
    flagged, compared = [], []
    for variant, group in per_class.groupby("variant", sort=False):
        if group["gap_vs_baseline"].isna().all() or (group["gap_vs_baseline"] == 0).all():
            continue
        compared.append(variant)
        shown = group[group["gap_verdict"].isin([LOWER, HIGHER])].to_dict("records")
        if shown:
            named = ", ".join(f"{'class ' if str(row['class_name']).isdigit() else ''}{row['class_name']}: "
                              f"{points(row['gap_vs_baseline'])}" for row in shown)
            flagged.append(f"`{variant}` ({named})")
    if not compared:
        return ""
    which = f"`{compared[0]}`" if len(compared) == 1 else f"any of the {len(compared)} variants"
    classes = (f"on {dataset_title}, classes whose gap to the baseline is told from zero once adjusted over the "
               f"variant's classes (Bonferroni): {'; '.join(flagged)}" if flagged else
               f"on {dataset_title}, no class stands out for {which} once adjusted over its classes (Bonferroni)")
    if paired_images.empty:
        return classes[0].upper() + classes[1:] + "."
    apart = paired_images[paired_images["p_holm"] < ALPHA]
    images = (f"tells `{apart['variant'].iloc[0]}` apart from the baseline (p {p_text(apart['p_holm'].iloc[0])})"
              if len(paired_images) == 1 and len(apart) == 1 else
              f"cannot tell `{paired_images['variant'].iloc[0]}` apart from the baseline"
              if len(paired_images) == 1 else
              f"tells {len(apart)} of {len(paired_images)} trained variants apart from the baseline (Holm over the "
              f"variants)")
    return classes[0].upper() + classes[1:] + f"; the sign test over the same test images {images}."

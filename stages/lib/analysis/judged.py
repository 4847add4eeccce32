"""The study's tables with every comparison judged by the rules of
:mod:`stages.lib.analysis.verdicts`: ``aggregate`` judges the tables it
writes, ``report`` the tables it reads, so that a snapshot's committed tables
(written by older code, with Holm columns, a mean-of-ratios mCE or a recipe's
"share recovered") are read by today's rules, or say what they lack."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from stages.lib.analysis.accuracy import tax_table
from stages.lib.analysis.iso_size import frontier_table, same_flash_table, width_match_table
from stages.lib.analysis.verdicts import (
    CLASS_GAP, GAP, GAP_CHANGE, MCE, RECIPE_EFFECT, ROBUSTNESS_GAP, SAME_FLASH, judge,
)

# columns of older tables that today's rules replace
OBSOLETE = ("time_vs_article_recipe", "recovered_fraction", "recovered_ci95_low", "recovered_ci95_high",
            "effect_p_holm", "gap_change_p_holm", "robustness_gap_p_holm", "gap_p_holm", "accuracy_gap_p_holm",
            "accuracy_gap_seeds_needed", "ce_undefined")


def test_images(runs: pd.DataFrame) -> dict[str, int]:
    """Per dataset, the test images each run is scored on."""
    return {dataset: int(images) for dataset, images in runs.groupby("dataset")["test_images"].max().items()}


def _images_of(frame: pd.DataFrame, images: dict[str, int]) -> pd.Series:
    return frame["dataset"].map(images).astype(float) if "dataset" in frame else pd.Series(dtype=float)


def judge_tables(tables: dict[str, pd.DataFrame], baseline: str, primary: Sequence[str],
                 same_flash: Sequence[str] = ()) -> dict[str, pd.DataFrame]:
    """``tables`` (by name, as ``aggregate`` writes them) with every
    comparison judged: the accuracy gaps (the ``primary`` variants' alone,
    the others within their dataset), the gap changes between datasets, the
    robustness gaps, the per-class gaps, the recipe effects and the mCE; the
    tax table rebuilt from the judged summary; and the networks across widths
    (:mod:`stages.lib.analysis.iso_size`: the frontier, the same-flash
    comparison of each of ``same_flash``, primary, and the width at which a
    1-bit family's gap is no longer told)."""
    tables = {name: table.drop(columns=[c for c in OBSOLETE if c in table.columns]) for name, table in tables.items()}
    images = test_images(tables["runs"])
    summary = tables["summary"]
    tables["summary"] = judge(summary, GAP, _images_of(summary, images),
                              primary=summary["variant"].isin(list(primary)) & (summary["variant"] != baseline))
    if "latency" in tables:
        frontier = frontier_table(tables["summary"], tables["latency"])
        same = same_flash_table(frontier, tables["runs"], same_flash, images)
        tables.update({"frontier": frontier, "width_match": width_match_table(frontier, tables["summary"]),
                       "same_flash": judge(same, SAME_FLASH, _images_of(same, images),
                                           primary=pd.Series(True, index=same.index))})
    if "recipes" in tables:
        recipes = tables["recipes"]
        if "article_recipe_epochs" not in recipes.columns:  # older tables: the twin's epochs from the summary
            epochs = summary.set_index(["dataset", "variant"])["epochs"]
            recipes = recipes.assign(article_recipe_epochs=[
                epochs.get((dataset, twin), float("nan")) if isinstance(twin, str) and twin else float("nan")
                for dataset, twin in zip(recipes["dataset"], recipes["article_recipe_variant"], strict=True)])
        tables["recipes"] = judge(recipes, RECIPE_EFFECT, _images_of(recipes, images))
    for name, comparison in (("tax_change", GAP_CHANGE), ("robustness_gap", ROBUSTNESS_GAP)):
        if name in tables:
            tables[name] = judge(tables[name], comparison, _images_of(tables[name], images))
    if "per_class" in tables:
        per_class = tables["per_class"]
        tables["per_class"] = judge(per_class, CLASS_GAP, per_class["images"].astype(float) if "images" in per_class
                                    else None)
    if "mce" in tables:
        tables["mce"] = judge(tables["mce"], MCE)
    if "paired_images" in tables:
        tables["tax"] = tax_table(tables["summary"], tables["paired_images"], baseline)
    return tables

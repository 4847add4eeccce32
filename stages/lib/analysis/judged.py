"""The study's tables with every comparison judged by the rules of
:mod:`stages.lib.analysis.verdicts`: ``aggregate`` judges the tables it
writes, ``report`` the tables it reads, so that a snapshot's committed tables
(written by older code, with Holm columns, a mean-of-ratios mCE or a recipe's
"share recovered") are read by today's rules, or say what they lack."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from stages.lib.analysis.accuracy import tax_change_table, tax_table
from stages.lib.analysis.iso_size import frontier_table, same_flash_table, width_match_table
from stages.lib.analysis.verdicts import (
    CLASS_GAP, GAP, GAP_CHANGE, MCE, RECIPE_EFFECT, ROBUSTNESS_GAP, SAME_FLASH, Comparison, judge, primary_family,
    raw_tests,
)

# columns of older tables that today's rules replace
OBSOLETE = ("time_vs_article_recipe", "recovered_fraction", "recovered_ci95_low", "recovered_ci95_high",
            "effect_p_holm", "gap_change_p_holm", "robustness_gap_p_holm", "gap_p_holm", "accuracy_gap_p_holm",
            "accuracy_gap_seeds_needed", "ce_undefined", "same_flash_seeds_needed",
            "gap_change_seeds_needed", "robustness_gap_seeds_needed", "gap_seeds_needed", "effect_seeds_needed",
            "mce_seeds_needed")


def test_images(runs: pd.DataFrame) -> dict[str, int]:
    """Per dataset, the test images each run is scored on."""
    return {dataset: int(images) for dataset, images in runs.groupby("dataset")["test_images"].max().items()}


def validation_images(runs: pd.DataFrame) -> dict[str, int]:
    """Per dataset, the held-out validation images each run's choices read."""
    return {dataset: int(images) for dataset, images in runs.groupby("dataset")["validation_images"].max().items()}


def _images_of(frame: pd.DataFrame, images: dict[str, int]) -> pd.Series:
    return frame["dataset"].map(images).astype(float) if "dataset" in frame else pd.Series(dtype=float)


def _is_primary(summary: pd.DataFrame, baseline: str, primary: Sequence[str]) -> pd.Series:
    """Per summary row, whether its gap to the baseline is a primary comparison."""
    return summary["variant"].isin(list(primary)) & (summary["variant"] != baseline)


def _primary_rows(tables: dict[str, pd.DataFrame], baseline: str, primary: Sequence[str]
                  ) -> list[tuple[str, object, Comparison]]:
    """(table, row index, comparison) of every primary comparison the tables
    hold: each of ``primary`` against the baseline, and every equal-flash row."""
    rows = [("summary", index, GAP) for index in tables["summary"].index[_is_primary(tables["summary"], baseline,
                                                                                   primary)]]
    if "same_flash" in tables:
        rows += [("same_flash", index, SAME_FLASH) for index in tables["same_flash"].index]
    return rows


def judge_tables(tables: dict[str, pd.DataFrame], baseline: str, primary: Sequence[str],
                 twins: dict[str, dict[str, str]] | None = None, margins: dict[str, float] | None = None
                 ) -> dict[str, pd.DataFrame]:
    """``tables`` (by name, as ``aggregate`` writes them) with every
    comparison judged: the primaries (each of ``primary`` against the
    baseline, and each 1-bit network of ``twins`` against its equal-flash
    twin in each form, per dataset) as one family, adjusted together by Holm with their
    equivalence read against the dataset's margin in ``margins`` (pp); the
    other accuracy gaps within their dataset, the gap changes between
    datasets, the robustness gaps, the per-class gaps, the recipe effects and
    the mCE; the tax table rebuilt from the judged summary; and the networks
    across widths (:mod:`stages.lib.analysis.iso_size`: the frontier, the
    equal-flash comparisons, and the width at which a 1-bit family's
    validation accuracy is no longer told below the baseline's)."""
    tables = {name: table.drop(columns=[c for c in OBSOLETE if c in table.columns]) for name, table in tables.items()}
    images = test_images(tables["runs"])
    if "latency" in tables:
        tables["frontier"] = frontier_table(tables["summary"], tables["latency"])
        tables["same_flash"] = same_flash_table(tables["frontier"], tables["runs"], twins or {})
    if "tax_change" in tables and "gap_change_df" not in tables["tax_change"].columns and not tables["tax_change"].empty:
        # tables written before Welch's df was kept: computed again from the runs they hold
        variants = list(dict.fromkeys(tables["summary"]["variant"]))
        datasets = list(dict.fromkeys(tables["runs"]["dataset"]))
        again = tax_change_table(tables["runs"], datasets, variants, baseline).set_index(["dataset", "variant"])
        change = tables["tax_change"]
        change["gap_change_df"] = [again["gap_change_df"].get(key, math.nan)
                                   for key in zip(change["dataset"], change["variant"], strict=True)]
    rows = _primary_rows(tables, baseline, primary)
    margin_of = {key: (margins or {}).get(tables[key[0]].at[key[1], "dataset"], math.nan) for key in
                 ((name, index) for name, index, _ in rows)}
    family = primary_family({(name, index): raw_tests(tables[name].loc[index].to_dict(), comparison,
                                                      margin_of[(name, index)] / 100,
                                                      images.get(tables[name].at[index, "dataset"]))
                             for name, index, comparison in rows}, margin_of)

    def of(name: str) -> dict:
        return {index: test for (table, index), test in family.items() if table == name}

    summary = tables["summary"]
    tables["summary"] = judge(summary, GAP, _images_of(summary, images),
                              primary=_is_primary(summary, baseline, primary),
                              family=of("summary"))
    if "latency" in tables:
        same = tables["same_flash"]
        tables.update({"width_match": width_match_table(tables["frontier"], tables["summary"], tables["runs"], baseline),
                       "same_flash": judge(same, SAME_FLASH, _images_of(same, images),
                                           primary=pd.Series(True, index=same.index), family=of("same_flash"))})
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

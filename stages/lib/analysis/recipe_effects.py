"""What the recipe changes: each variant trained with another recipe
against its network under the article's recipe (paired by seed; exploratory,
the recipe variants of a dataset one family, see
:mod:`stages.lib.analysis.verdicts`) and against the baseline trained with
the same recipe; and their sentences. The effect is said in percentage
points with its interval, never as a share of a gap (a ratio of two noisy
gaps); recipes are compared by their epochs, not by wall-clock training
time, which follows the machine's load as much as the recipe."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from stages.lib.training.recipes import DEFAULT_RECIPE
from stages.lib.training.variants import expand_bases
from stages.lib.analysis.stats import paired_difference
from stages.lib.analysis.verdicts import HIGHER, LOWER, adjusted_cell, gap_verdict
from stages.lib.wording import interval, p_cell, pct, points, title, with_interval


def training_table(variants_section: dict[str, Any], recipes_section: dict[str, Any],
                   variants: Sequence[str]) -> pd.DataFrame:
    """Per variant of the study: its recipe, its epochs, and its
    architecture, named after the study's variant of the same network
    trained with the article's recipe (the first such variant when none
    is): variants that differ only in their recipe share an architecture.
    ``variants_section`` as a slice holds it (each variant written out) or
    as params.yaml does (some derived from a ``base``)."""
    variants_section = expand_bases(variants_section)

    def network(name: str) -> dict[str, Any]:
        return {key: value for key, value in variants_section[name].items() if key != "recipe"}

    def recipe(name: str) -> str:
        return variants_section[name].get("recipe", DEFAULT_RECIPE)

    rows = []
    for variant in variants:
        twins = [other for other in variants if network(other) == network(variant)]
        named = [other for other in twins if recipe(other) == DEFAULT_RECIPE] or twins
        rows.append({"variant": variant, "recipe": recipe(variant), "architecture": named[0],
                     "epochs": int(recipes_section[recipe(variant)]["epochs"])})
    return pd.DataFrame(rows).set_index("variant")


RECIPE_COLUMNS = ("variant", "architecture", "recipe", "epochs", "seeds", "test_accuracy_mean",
                  "accuracy_gap_vs_baseline", "accuracy_gap_ci95_low", "accuracy_gap_ci95_high",
                  "article_recipe_variant", "article_recipe_epochs", "article_recipe_gap",
                  "article_recipe_gap_ci95_low", "article_recipe_gap_ci95_high", "effect", "effect_ci95_low",
                  "effect_ci95_high", "effect_p_value", "matched_baseline", "matched_gap", "matched_gap_ci95_low",
                  "matched_gap_ci95_high")


def recipe_table(summary: pd.DataFrame, runs: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """The recipe's share of the cost on one dataset: one row per variant
    other than the baseline, with its recipe and epochs (and those of the
    same architecture under the article's recipe), mean accuracy, the
    seed-paired gap to the baseline, and:

    - the recipe's effect: its gap minus the gap of the same architecture
      trained with the article's recipe, paired by seed (the baseline's
      accuracy cancels: the seed-paired difference of the two variants);
    - the gap under matched recipes: against the baseline's architecture
      trained with the same recipe (the baseline itself for the article's),
      paired by seed, when the study has it."""
    by_seed = runs.pivot(index="seed", columns="variant", values="test_accuracy")
    info = summary.set_index("variant")
    rows = []
    if baseline not in info.index:
        return pd.DataFrame(rows, columns=RECIPE_COLUMNS)
    for name, row in info.iterrows():
        if name == baseline:
            continue
        twins = info[(info["architecture"] == row["architecture"]) & (info["recipe"] == DEFAULT_RECIPE)].index
        matched = info[(info["architecture"] == info.at[baseline, "architecture"])
                       & (info["recipe"] == row["recipe"]) & (info.index != name)].index
        out = {"variant": name, **{column: row[column] for column in RECIPE_COLUMNS[1:9]},
               **{column: math.nan for column in RECIPE_COLUMNS[9:]},
               "article_recipe_variant": twins[0] if len(twins) else "",
               "matched_baseline": matched[0] if len(matched) else ""}
        if len(twins):
            twin = twins[0]
            out.update(article_recipe_epochs=int(info.at[twin, "epochs"]),
                       article_recipe_gap=info.at[twin, "accuracy_gap_vs_baseline"],
                       article_recipe_gap_ci95_low=info.at[twin, "accuracy_gap_ci95_low"],
                       article_recipe_gap_ci95_high=info.at[twin, "accuracy_gap_ci95_high"])
            if twin != name:
                effect = paired_difference(by_seed[name], by_seed[twin])
                out.update(effect=effect.value, effect_ci95_low=effect.low, effect_ci95_high=effect.high,
                           effect_p_value=effect.p_value)
        if len(matched):
            gap = paired_difference(by_seed[name], by_seed[matched[0]])
            out.update(matched_gap=gap.value, matched_gap_ci95_low=gap.low, matched_gap_ci95_high=gap.high)
        rows.append(out)
    return pd.DataFrame(rows, columns=RECIPE_COLUMNS)


def recipe_findings(recipes: pd.DataFrame, baseline: str) -> list[str]:
    """Per variant trained with another recipe than the article's: its
    accuracy and gap, its effect against its architecture under the
    article's recipe (paired by seed, in percentage points, with the
    interval its verdict is read from), the epochs each recipe trains, and
    the gap under matched recipes."""
    sentences = []
    for row in recipes[recipes["recipe"] != DEFAULT_RECIPE].to_dict("records"):
        seeds = int(row["seeds"])
        twin = row["article_recipe_variant"]
        sentence = (f"`{row['variant']}` (`{row['architecture']}` trained with recipe {row['recipe']}, "
                    f"{row['epochs']} epochs"
                    + (f" against `{twin}`'s {int(row['article_recipe_epochs'])}"
                       if not pd.isna(row["article_recipe_epochs"]) else "")
                    + f"): {pct(row['test_accuracy_mean'])}, {points(row['accuracy_gap_vs_baseline'])} against "
                    f"`{baseline}` ({interval(row['accuracy_gap_ci95_low'], row['accuracy_gap_ci95_high'], points, seeds)})")
        if not pd.isna(row["effect"]):
            word = {HIGHER: "raises", LOWER: "lowers"}.get(row["effect_verdict"], "changes")
            sentence += (f"; against `{twin}` (the article's recipe, same seeds) the recipe {word} accuracy by "
                         f"{adjusted_cell(row, 'effect')}: "
                         + gap_verdict(row, "effect", "recipe variants").replace("a cost", "a loss"))
        if isinstance(row["matched_baseline"], str) and row["matched_baseline"]:
            sentence += (f"; against `{row['matched_baseline']}`, trained with the same recipe, the gap is "
                         f"{points(row['matched_gap'])} "
                         f"({interval(row['matched_gap_ci95_low'], row['matched_gap_ci95_high'], points, seeds)})")
        sentences.append(sentence + ".")
    return sentences


def readable_recipes(recipes: pd.DataFrame) -> pd.DataFrame:
    """The variants trained with another recipe than the article's, every
    dataset: what the recipe does and what it costs to train."""
    recipes = recipes[recipes["recipe"] != DEFAULT_RECIPE]

    def with_intervals(values, lows, highs, fmt):
        return [with_interval(v, lo, hi, fmt) for v, lo, hi in zip(values, lows, highs, strict=True)]

    return pd.DataFrame({
        "dataset": recipes["dataset"].map(title),
        "variant": recipes["variant"],
        "network": recipes["architecture"],
        "recipe": recipes["recipe"],
        "epochs": recipes["epochs"],
        "accuracy": recipes["test_accuracy_mean"].map(pct),
        "gap to baseline (95% CI)": with_intervals(recipes["accuracy_gap_vs_baseline"], recipes["accuracy_gap_ci95_low"],
                                                  recipes["accuracy_gap_ci95_high"], points),
        "effect of the recipe (simultaneous CI)": ["" if pd.isna(row["effect"]) else adjusted_cell(row, "effect")
                                                   for row in recipes.to_dict("records")],
        "effect p (adjusted)": recipes["effect_p_adjusted"].map(p_cell),
        "detectable (80% power)": ["" if pd.isna(v) else f"{100 * v:.2f} pp" for v in recipes["effect_detectable"]],
        "matched baseline": recipes["matched_baseline"].fillna(""),
        "gap under matched recipes (95% CI)": with_intervals(recipes["matched_gap"], recipes["matched_gap_ci95_low"],
                                                            recipes["matched_gap_ci95_high"], points),
    })


def recipe_summary(recipes: pd.DataFrame, dataset_title: str) -> str:
    """One dataset in one sentence: for how many recipe variants the recipe
    raises or lowers accuracy against the same network under the article's
    recipe (the verdicts of :mod:`stages.lib.analysis.verdicts`), naming them
    with their effect and its simultaneous interval."""
    others = recipes[(recipes["recipe"] != DEFAULT_RECIPE) & recipes["effect"].notna()]
    if others.empty:
        return ""
    moved = {"raises": [], "lowers": []}
    for row in others.to_dict("records"):
        if row["effect_verdict"] in (HIGHER, LOWER):
            moved["raises" if row["effect_verdict"] == HIGHER else "lowers"].append(
                f"`{row['variant']}` {adjusted_cell(row, 'effect')}")
    rest = len(others) - len(moved["raises"]) - len(moved["lowers"])
    parts = [f"raises accuracy for {', '.join(moved['raises'])}"] if moved["raises"] else []
    parts += [f"lowers it for {', '.join(moved['lowers'])}"] if moved["lowers"] else []
    parts += [f"for {'the other' if parts else 'all'} {rest} it cannot be told from zero with these seeds"] if rest else []
    return (f"On {dataset_title}, against the same network under the article's recipe (paired by seed; exploratory, "
            f"Bonferroni over the {len(others)} recipe variants, simultaneous intervals), the recipe "
            + "; ".join(parts) + ".")

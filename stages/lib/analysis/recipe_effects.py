"""The recipe's share of the cost: each variant trained with another recipe
against its network under the article's recipe (paired by seed, Holm over
the recipe variants, Fieller's interval for the share recovered) and
against the baseline trained with the same recipe; and their sentences."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from stages.lib.training.recipes import DEFAULT_RECIPE
from stages.lib.analysis.stats import ALPHA, fieller_ratio, holm, paired_difference
from stages.lib.reporting.wording import (
    gap_direction, holm_clause, interval, p_cell, pct, points, title, whole_pct, with_interval,
)


def training_table(variants_section: dict[str, Any], recipes_section: dict[str, Any],
                   variants: Sequence[str]) -> pd.DataFrame:
    """Per variant of the study: its recipe, its epochs, and its
    architecture, named after the study's variant of the same network
    trained with the article's recipe (the first such variant when none
    is): variants that differ only in their recipe share an architecture."""
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
                  "accuracy_gap_vs_baseline", "accuracy_gap_ci95_low", "accuracy_gap_ci95_high", "train_time_s_mean",
                  "time_vs_article_recipe", "article_recipe_variant", "article_recipe_gap",
                  "article_recipe_gap_ci95_low", "article_recipe_gap_ci95_high", "effect", "effect_ci95_low",
                  "effect_ci95_high", "effect_p_value", "effect_p_holm", "recovered_fraction", "recovered_ci95_low",
                  "recovered_ci95_high", "matched_baseline", "matched_gap", "matched_gap_ci95_low",
                  "matched_gap_ci95_high")


def recipe_table(summary: pd.DataFrame, runs: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """The recipe's share of the cost on one dataset: one row per variant
    other than the baseline, with its recipe and epochs, mean accuracy, the
    seed-paired gap to the baseline, mean training time (and as a multiple of
    the same architecture's time under the article's recipe), and:

    - the recipe's effect: its gap minus the gap of the same architecture
      trained with the article's recipe, paired by seed (the baseline's
      accuracy cancels: the seed-paired difference of the two variants),
      Holm-adjusted over the recipe variants of the dataset;
    - the share of that architecture's article-recipe gap the effect
      recovers, only where that gap is a cost whose interval excludes zero,
      with Fieller's interval (the gap in the denominator is as noisy as
      the effect); NaN bounds when it cannot be bounded;
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
        out = {"variant": name, **{column: row[column] for column in RECIPE_COLUMNS[1:10]},
               **{column: math.nan for column in RECIPE_COLUMNS[10:]},
               "article_recipe_variant": twins[0] if len(twins) else "",
               "matched_baseline": matched[0] if len(matched) else ""}
        if len(twins):
            twin = twins[0]
            out["time_vs_article_recipe"] = row["train_time_s_mean"] / info.at[twin, "train_time_s_mean"]
            out.update(article_recipe_gap=info.at[twin, "accuracy_gap_vs_baseline"],
                       article_recipe_gap_ci95_low=info.at[twin, "accuracy_gap_ci95_low"],
                       article_recipe_gap_ci95_high=info.at[twin, "accuracy_gap_ci95_high"])
            if twin != name:
                effect = paired_difference(by_seed[name], by_seed[twin])
                out.update(effect=effect.value, effect_ci95_low=effect.low, effect_ci95_high=effect.high,
                           effect_p_value=effect.p_value)
                if info.at[twin, "accuracy_gap_ci95_high"] < 0:  # a cost the seeds tell from zero
                    share = fieller_ratio(by_seed[name] - by_seed[twin], by_seed[baseline] - by_seed[twin])
                    out.update(recovered_fraction=share.value,
                               recovered_ci95_low=share.low if math.isfinite(share.low) else math.nan,
                               recovered_ci95_high=share.high if math.isfinite(share.high) else math.nan)
        if len(matched):
            gap = paired_difference(by_seed[name], by_seed[matched[0]])
            out.update(matched_gap=gap.value, matched_gap_ci95_low=gap.low, matched_gap_ci95_high=gap.high)
        rows.append(out)
    table = pd.DataFrame(rows, columns=RECIPE_COLUMNS)
    table["effect_p_holm"] = holm(table["effect_p_value"])
    return table


def recipe_findings(recipes: pd.DataFrame, baseline: str) -> list[str]:
    """Per variant trained with another recipe than the article's: its
    accuracy and gap, its effect against its architecture under the
    article's recipe (paired by seed, Holm over the recipe variants), the
    share of that gap it recovers where the gap is told from zero (Fieller's
    interval), at what training cost, and the gap under matched
    recipes."""
    sentences = []
    others = recipes[recipes["recipe"] != "article"]
    family = int(others["effect_p_value"].notna().sum())
    for row in others.to_dict("records"):
        seeds = int(row["seeds"])
        twin = row["article_recipe_variant"]
        sentence = (f"`{row['variant']}` (`{row['architecture']}` trained with recipe {row['recipe']}, "
                    f"{row['epochs']} epochs")
        if not pd.isna(row["time_vs_article_recipe"]):
            sentence += f", {row['time_vs_article_recipe']:.1f}x the training time of `{twin}`"
        sentence += (f"): {pct(row['test_accuracy_mean'])}, {points(row['accuracy_gap_vs_baseline'])} against "
                     f"`{baseline}` ({interval(row['accuracy_gap_ci95_low'], row['accuracy_gap_ci95_high'], points, seeds)})")
        if not pd.isna(row["effect"]):
            side = gap_direction(row["effect_ci95_low"], row["effect_ci95_high"])
            significant = side and row["effect_p_holm"] < ALPHA
            word = ("raises" if side > 0 else "lowers") if significant else "changes"
            sentence += (f"; against `{twin}` (the article's recipe, same seeds) the recipe {word} accuracy by "
                         f"{points(row['effect'])} ({interval(row['effect_ci95_low'], row['effect_ci95_high'], points, seeds)}; "
                         f"{holm_clause(row['effect_p_holm'], family, 'recipe variants')})")
            if not significant:
                sentence += (", whose interval excludes zero but not once Holm-adjusted" if side else
                             ", which these seeds cannot tell from zero")
        if not pd.isna(row["recovered_fraction"]):
            if pd.isna(row["recovered_ci95_low"]):
                share = "an interval that cannot be bounded with these seeds"
            else:
                share = f"95% CI {whole_pct(row['recovered_ci95_low'])} to {whole_pct(row['recovered_ci95_high'])}, Fieller"
            sentence += (f"; that is {whole_pct(row['recovered_fraction'])} of `{twin}`'s "
                         f"{points(row['article_recipe_gap'])} gap recovered ({share})")
        elif not pd.isna(row["effect"]) and not pd.isna(row["article_recipe_gap"]):
            sentence += (f"; no share of `{twin}`'s gap is given: that gap ({points(row['article_recipe_gap'])}, "
                         f"{interval(row['article_recipe_gap_ci95_low'], row['article_recipe_gap_ci95_high'], points, seeds)}) "
                         "is not a cost these seeds tell from zero")
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
        "training time (s)": recipes["train_time_s_mean"].map("{:.0f}".format),
        "effect of the recipe (95% CI)": with_intervals(recipes["effect"], recipes["effect_ci95_low"],
                                                       recipes["effect_ci95_high"], points),
        "effect p (Holm)": recipes["effect_p_holm"].map(p_cell),
        "of the article recipe's gap recovered (Fieller 95% CI)": [
            "" if pd.isna(v) else whole_pct(v) + (" (unbounded)" if pd.isna(lo) else
                                                  f" ({whole_pct(lo)} to {whole_pct(hi)})")
            for v, lo, hi in zip(recipes["recovered_fraction"], recipes["recovered_ci95_low"],
                                 recipes["recovered_ci95_high"], strict=True)],
        "matched baseline": recipes["matched_baseline"].fillna(""),
        "gap under matched recipes (95% CI)": with_intervals(recipes["matched_gap"], recipes["matched_gap_ci95_low"],
                                                            recipes["matched_gap_ci95_high"], points),
    })


def recipe_summary(recipes: pd.DataFrame, dataset_title: str) -> str:
    """One dataset in one sentence: for how many recipe variants the recipe
    raises or lowers accuracy against the same network under the article's
    recipe (printed interval and Holm over the recipe variants), naming
    them with their effect."""
    others = recipes[(recipes["recipe"] != DEFAULT_RECIPE) & recipes["effect"].notna()]
    if others.empty:
        return ""
    moved = {"raises": [], "lowers": []}
    for row in others.to_dict("records"):
        side = gap_direction(row["effect_ci95_low"], row["effect_ci95_high"])
        if side and row["effect_p_holm"] < ALPHA:
            moved["raises" if side > 0 else "lowers"].append(
                f"`{row['variant']}` {points(row['effect'])} "
                f"({interval(row['effect_ci95_low'], row['effect_ci95_high'], points, int(row['seeds']))})")
    rest = len(others) - len(moved["raises"]) - len(moved["lowers"])
    parts = [f"raises accuracy for {', '.join(moved['raises'])}"] if moved["raises"] else []
    parts += [f"lowers it for {', '.join(moved['lowers'])}"] if moved["lowers"] else []
    parts += [f"for {'the other' if parts else 'all'} {rest} it cannot be told from zero with these seeds"] if rest else []
    return (f"On {dataset_title}, against the same network under the article's recipe (paired by seed, Holm over "
            f"the {len(others)} recipe variants), the recipe " + "; ".join(parts) + ".")

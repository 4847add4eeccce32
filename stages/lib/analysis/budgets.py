"""Which variant under a memory budget: per budget on the deployed file (what
a device stores) or on the peak RAM of its activations, the most accurate
network that fits, each network once with its best recipe, every width the
study trains competing; a variant with a run at chance level is never
picked. Every choice here reads the mean accuracy on the held-out validation
images (:data:`CHOICE`), never the test accuracy, which is then reported for
the network chosen: a number that picked a network cannot also confirm it.
Mean validation accuracies within the dataset's margin (``aggregate.margin_pp``,
the smallest difference a deployer would act on; one validation image where
none is set) of the best are a tie, and a tie goes to the smaller one (of what
the budget is on, then the file): a larger file is never picked for a
difference nobody would act on.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from stages.lib.analysis.stats import paired_difference
from stages.lib.wording import interval, pct, points
from stages.lib.analysis.verdicts import gap_direction

# the column every choice among networks reads
CHOICE = "validation_accuracy_mean"


def candidates(summary: pd.DataFrame) -> pd.DataFrame:
    """The variants that may be picked: no run at chance level; variants
    that differ only in their recipe deploy to the same network, so each
    architecture competes once, with its best recipe measured."""
    sound = summary[summary["runs_at_chance"] == 0]
    best = sound.sort_values([CHOICE, "tflite_kib"], ascending=[False, True])
    return best.drop_duplicates("architecture").sort_index()


def ranked(fitting: pd.DataFrame, images: int | None, resource: str = "tflite_kib",
           margin_pp: float | None = None) -> pd.DataFrame:
    """``fitting`` best first: those within ``margin_pp`` (or, without one,
    one of ``images`` validation images) of the best mean validation
    accuracy (a tie), smallest ``resource`` first (then smallest file), then
    the rest by validation accuracy. ``tied`` marks the tie."""
    by_size = list(dict.fromkeys([resource, "tflite_kib"]))
    ordered = fitting.sort_values([CHOICE, *by_size], ascending=[False] + [True] * len(by_size))
    if ordered.empty:
        return ordered.assign(tied=pd.Series(dtype=bool))
    resolution = max(1 / images if images else 0.0, (margin_pp or 0.0) / 100)
    tied = ordered[CHOICE] >= ordered[CHOICE].iloc[0] - resolution * (1 - 1e-9)
    ordered = ordered.assign(tied=tied)
    return pd.concat([ordered[tied].sort_values(by_size), ordered[~tied]])


def picks(summary: pd.DataFrame, budgets_kib: Sequence[float | None], images: int | None = None,
          resource: str = "tflite_kib", margin_pp: float | None = None) -> list[tuple[float | None, pd.DataFrame]]:
    """Per budget (None: unlimited) on ``resource``, the fitting candidates,
    best first (see :func:`ranked`; ``images``: the validation images each
    accuracy counts)."""
    pool = candidates(summary)
    return [(budget, ranked(pool if budget is None else pool[pool[resource] <= budget], images, resource, margin_pp))
            for budget in budgets_kib]


def budget_label(budget: float | None) -> str:
    return "no limit" if budget is None else f"≤ {budget:g} KiB"


def budget_line(summary: pd.DataFrame, budgets_kib: Sequence[float | None], images: int | None = None,
                resource: str = "tflite_kib", margin_pp: float | None = None) -> str:
    """The picks in one line: ``≤ 16 KiB: none fits; ≤ 64 KiB: `bnn`
    (98.13%, 18.80 KiB); no limit: `fp32` (99.03%, 368.87 KiB)``, the size
    being the budgeted ``resource``."""
    if candidates(summary).empty:
        return "no variant is picked: every variant has runs at chance level"
    parts = []
    for budget, order in picks(summary, budgets_kib, images, resource, margin_pp):
        pick = order.iloc[0] if len(order) else None
        tie = [] if pick is None else list(order["variant"].iloc[1:][order["tied"].iloc[1:]])
        parts.append(f"{budget_label(budget)}: " + ("none fits" if pick is None else
                                                    f"`{pick['variant']}` ({pct(pick['test_accuracy_mean'])}, "
                                                    f"{pick[resource]:.2f} KiB"
                                                    + "".join(f"; a tie with `{v}`, the smaller picked" for v in tie)
                                                    + ")"))
    return "; ".join(parts)


def budget_picks(summary: pd.DataFrame, budgets_kib: Sequence[float | None],
                 runs: pd.DataFrame | None = None, images: int | None = None,
                 resource: str = "tflite_kib", margin_pp: float | None = None) -> list[str]:
    """For each memory budget, the pick (see :func:`picks`) with its
    accuracy, file and RAM, and whether the next best can be told apart from
    it with these seeds (from the seed-paired difference of the two, given
    ``runs``). Budgets apply to the file that ships, not to Larq's count of
    the weights. Variants with a run at chance level are named."""
    sentences = []
    degenerate = summary[summary["runs_at_chance"] > 0]
    if not degenerate.empty:
        sentences.append("Never picked, because some of their runs learned nothing (test accuracy not significantly "
                         "above always answering the most frequent class): " + ", ".join(
                             f"`{row['variant']}` ({row['runs_at_chance']} of {row['seeds']} runs)"
                             for row in degenerate.to_dict("records")) + ".")
    if (summary["runs_at_chance"] > 0).all():
        return sentences + ["Every variant of this study has runs at chance level, so no variant is picked for any "
                            "budget: lower the learning rate or check the data before reading any figure here."]
    pool = candidates(summary)
    several = [architecture for architecture, count in
               summary.loc[summary["runs_at_chance"] == 0, "architecture"].value_counts(sort=False).items()
               if count > 1]
    if several:
        chosen = pool.set_index("architecture")
        sentences.append("Each network competes once, with the best recipe measured for it: " + ", ".join(
            f"`{architecture}` as `{chosen.at[architecture, 'variant']}` (recipe {chosen.at[architecture, 'recipe']}, "
            f"{chosen.at[architecture, 'epochs']} epochs)" for architecture in several if architecture in chosen.index)
            + ".")
    return sentences + budget_sentences(summary, budgets_kib, runs, images, resource, margin_pp)


def budget_sentences(summary: pd.DataFrame, budgets_kib: Sequence[float | None], runs: pd.DataFrame | None = None,
                     images: int | None = None, resource: str = "tflite_kib",
                     margin_pp: float | None = None) -> list[str]:
    """Per budget on ``resource``, the pick with its accuracy, file and RAM
    and the next best (see :func:`budget_picks`)."""
    sentences = []
    if candidates(summary).empty:
        return sentences
    tie = (f"within the {margin_pp:g} pp margin on the validation images of" if margin_pp
           else "a tie within one validation image with")
    for budget, order in picks(summary, budgets_kib, images, resource, margin_pp):
        label = ("With no memory limit" if budget is None else
                 f"Within {budget:g} KiB of deployed file" if resource == "tflite_kib" else
                 f"Within {budget:g} KiB of RAM")
        if order.empty:
            sentences.append(f"{label}, no variant of this study fits.")
            continue
        pick = order.iloc[0]
        sentence = (f"{label}, pick `{pick['variant']}`: {pct(pick['test_accuracy_mean'])} mean test accuracy "
                    f"({interval(pick['test_accuracy_ci95_low'], pick['test_accuracy_ci95_high'], n=pick['seeds'])}) "
                    f"in a {pick['tflite_kib']:.2f} KiB file needing {pick['ram_kib']:.2f} KiB of RAM")
        if len(order) > 1:
            runner_up = order.iloc[1]
            sentence += (f" ({tie if runner_up['tied'] else 'next best'} "
                         f"`{runner_up['variant']}`, {pct(runner_up['test_accuracy_mean'])} in "
                         f"{runner_up[resource]:.2f} KiB{' of RAM' if resource == 'ram_kib' else ''}"
                         + ((", the smaller file picked" if resource == "tflite_kib" else ", the smaller picked")
                            if runner_up["tied"] else ""))
            if runs is not None:
                by_seed = runs.pivot_table(index="seed", columns="variant", values="test_accuracy")
                gap = paired_difference(by_seed[runner_up["variant"]], by_seed[pick["variant"]])
                if gap.bounded:
                    sentence += f"; paired by seed {points(gap.value)} ({interval(gap.low, gap.high, points, gap.n)})"
                    if not gap_direction(gap.low, gap.high):
                        sentence += ": the seeds cannot tell them apart"
            sentence += ")"
        sentences.append(sentence + ".")
    return sentences


def frontier(summary: pd.DataFrame, column: str) -> str:
    return ", ".join(f"`{v}`" for v in summary.loc[summary[column], "variant"]) or "none"

"""Stage `report`: ``reports/report.md``, the study's findings in sentences
whose every number is read from the aggregate tables, with the tables and
plots embedded. The sentences that depend on the data are built here; the
document's structure and fixed prose live in ``report.md.j2`` beside this
module, each section led by what it found. The accuracy sections repeat for
each dataset of the study; the networks' sizes and speed, the same on every
dataset, are reported once."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from stages.lib.accuracy import (
    accuracy_findings, budget_picks, readable_summary, readable_tax, readable_tax_change, tax_findings,
)
from stages.lib.article import article_findings, readable_article
from stages.lib.classes import class_findings, readable_per_class
from stages.lib.deployment import (
    benchmark_context, deployment_findings, latency_by_options, readable_deployment, readable_latency,
    same_files_sentence, speed_findings,
)
from stages.lib.recipe_effects import readable_recipes, recipe_findings
from stages.lib.common import load_params, log, run_cli, write_text_atomic
from stages.lib.params import baseline as checked_baseline
from stages.lib.params import memory_budgets
from stages.lib.tables import ARTICLE_DATASET, of_dataset, read_table, table_errors
from stages.lib.wording import title


def findings(summary: pd.DataFrame, article: pd.DataFrame, baseline: str,
             latency: pd.DataFrame | None = None) -> list[str]:
    """Every finding of the report, in its order."""
    return (accuracy_findings(summary, baseline) + deployment_findings(summary)
            + speed_findings(summary, baseline, latency) + article_findings(summary, article))


PLOTS = (
    ("accuracy_vs_memory.png", "Test accuracy against the memory the weights take"),
    ("accuracy_vs_binarized_macs.png", "Test accuracy against the fraction of binarized multiply-accumulates"),
    ("accuracy_vs_latency.png", "Test accuracy against deployed latency (LCE interpreter, batch 1, headline options)"),
    ("flash_vs_ram.png", "Deployed file (flash) against peak activation memory (RAM)"),
    ("training_curves.png", "Training curves (mean across seeds, Student-t 95% band)"),
    ("accuracy_by_variant.png", "Test accuracy per variant across seeds"),
    ("confusion_difference.png", "Where binarizing moves the answers: confusion matrix minus the baseline's"),
    ("accuracy_vs_training_time.png", "Test accuracy against training time, per recipe"),
)

TABLES = ("summary", "article", "runs", "latency", "per_class", "paired_images", "tax", "tax_change", "recipes")
# no MNIST in the study; the baseline alone; one dataset
MAY_BE_EMPTY = ("article", "paired_images", "tax", "tax_change", "recipes")


def render(tables_dir: str | Path, plots_rel: str, baseline: str, budgets_kib: Sequence[float | None]) -> str:
    tables_dir = Path(tables_dir)
    tables = {name: read_table(tables_dir, name, may_be_empty=name in MAY_BE_EMPTY) for name in TABLES}
    with table_errors(tables_dir):
        return _render(tables, plots_rel, baseline, budgets_kib, Path(tables_dir).as_posix())


TEMPLATE = "report.md.j2"


def dataset_context(dataset: str, tables: dict[str, pd.DataFrame], baseline: str,
                    budgets_kib: Sequence[float | None]) -> dict:
    """Everything the report says about one dataset."""
    of = {name: of_dataset(table, dataset) if "dataset" in table else table for name, table in tables.items()}
    summary, latency = of["summary"], of["latency"]
    return {
        "name": dataset,
        "title": title(dataset),
        "accuracy_findings": accuracy_findings(summary, baseline),
        "budget_picks": budget_picks(summary, budgets_kib, of["runs"]),
        "deployed_frontier": ", ".join(f"`{v}`" for v in summary.loc[summary["on_deployed_pareto_frontier"],
                                                                       "variant"]),
        "larq_frontier": ", ".join(f"`{v}`" for v in summary.loc[summary["on_pareto_frontier"], "variant"]),
        "summary_table": readable_summary(summary).to_markdown(index=False),
        "class_findings": class_findings(of["per_class"], of["paired_images"], baseline),
        "per_class_table": readable_per_class(of["per_class"]).to_markdown(index=False),
        "speed_findings": speed_findings(summary, baseline, latency),
        "recipe_findings": recipe_findings(of["recipes"], baseline),
        "recipes_table": readable_recipes(of["recipes"]).to_markdown(index=False),
        "latency_table": readable_latency(latency, baseline).to_markdown(index=False),
        "options_table": latency_by_options(latency).to_markdown(index=False),
    }


def _render(tables: dict[str, pd.DataFrame], plots_rel: str, baseline: str,
            budgets_kib: Sequence[float | None], tables_path: str = "reports/tables") -> str:
    import jinja2

    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent), trim_blocks=True,
                                     keep_trailing_newline=True, undefined=jinja2.StrictUndefined,
                                     autoescape=False)  # Markdown, not HTML
    summary, article, runs, tax = tables["summary"], tables["article"], tables["runs"], tables["tax"]
    datasets = list(dict.fromkeys(summary["dataset"]))
    first = summary[summary["dataset"] == datasets[0]]
    profiles = first[["variant", "params_by_bitwidth", "memory_kib", "macs_by_precision", "binarized_mac_fraction"]]
    on_article_dataset = summary[summary["dataset"] == ARTICLE_DATASET]
    context = {
        "baseline": baseline,
        "datasets": [dataset_context(dataset, tables, baseline, budgets_kib) for dataset in datasets],
        "tax_findings": tax_findings(tax, tables["tax_change"]),
        "tax_table": readable_tax(tax).to_markdown(index=False) if not tax.empty else "",
        "tax_change_table": (readable_tax_change(tables["tax_change"]).to_markdown(index=False)
                             if not tables["tax_change"].empty else ""),
        "profiles_table": profiles.rename(columns={
            "params_by_bitwidth": "parameters by bit width", "memory_kib": "memory (KiB)",
            "macs_by_precision": "MACs by precision", "binarized_mac_fraction": "binarized MAC fraction",
        }).to_markdown(index=False, floatfmt=".4f"),
        "deployment_findings": deployment_findings(first),
        "same_files": same_files_sentence(summary),
        "deployment_table": readable_deployment(first).to_markdown(index=False),
        "bench": benchmark_context(tables["latency"]),
        "article_dataset": title(ARTICLE_DATASET),
        "article_findings": article_findings(on_article_dataset, article) if not article.empty else [],
        "article_table": readable_article(article).to_markdown(index=False) if not article.empty else "",
        "runs_table": runs.assign(dataset=runs["dataset"].map(title))[
            ["dataset", "variant", "seed", "test_accuracy", "test_loss", "train_time_s", "train_images_per_s"]]
        .to_markdown(index=False, floatfmt=".4f"),
        "plots": PLOTS,
        "plots_rel": plots_rel,
        "tables_path": tables_path,
    }
    return environment.get_template(TEMPLATE).render(context)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="data/spec/report.json", help="the slice of params.yaml it reads")
    parser.add_argument("--tables", default="reports/tables")
    parser.add_argument("--plots", default="reports/plots")
    parser.add_argument("--out", default="reports/report.md")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    baseline, budgets = checked_baseline(params), memory_budgets(params)
    out = Path(args.out)
    plots_rel = Path(os.path.relpath(Path(args.plots).resolve(), out.resolve().parent))
    write_text_atomic(out, render(args.tables, plots_rel.as_posix(), baseline, budgets))
    log.info("report written to %s", out)


if __name__ == "__main__":
    raise SystemExit(run_cli(main))

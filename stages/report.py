"""Stage `report`: ``reports/report.md``, the answer first (one screen: what
the 1-bit network costs, saves and does not save, how fast it runs on the
CPU measured, what to pick under a memory budget), then one section per
question, each led by its finding and holding its numbers once; and
``reports/details.md``, every run, class, image test and option set. Every
number is read from the aggregate tables; each concept's sentences sit in
its module of ``stages/lib``, the prose around them in ``report.md.j2`` and
``details.md.j2`` beside this module."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from stages.lib.analysis.accuracy import cost_findings, readable_cost, readable_summary, readable_tax
from stages.lib.reporting.answer import answer, headline_variant
from stages.lib.analysis.article import article_findings, readable_article
from stages.lib.analysis.budgets import budget_picks, budget_sentences, frontier
from stages.lib.analysis.classes import class_findings, class_summary, readable_per_class
from stages.lib.common import load_params, log, run_cli, write_text_atomic
from stages.lib.analysis.int8_tables import int8_findings, readable_int8
from stages.lib.analysis.iso_size import readable_frontier, size_sentences, width_match_sentence
from stages.lib.analysis.deployment import (
    deployment_findings, readable_deployment, readable_savings, same_files_sentence, savings_findings,
)
from stages.lib.settings.aggregate import baseline as checked_baseline
from stages.lib.settings.report import memory_budgets
from stages.lib.settings.aggregate import primary as checked_primary
from stages.lib.settings.aggregate import margins, twin_names
from stages.lib.analysis.judged import judge_tables, validation_images
from stages.lib.analysis.verdicts import PRIMARY
from stages.lib.analysis.recipe_effects import readable_recipes, recipe_findings, recipe_summary
from stages.lib.analysis.robustness_tables import (checked_images, evaluated_images, readable_accuracy,
                                                   readable_robustness, robustness_findings)
from stages.lib.analysis.speed import (
    benchmark_context, latency_by_options, readable_latency, readable_speeds, speed_findings, speed_summary,
)
from stages.lib.analysis.tables import ARTICLE_DATASET, of_dataset, read_table, table_errors
from stages.lib.wording import title

TABLES = ("summary", "article", "runs", "latency", "per_class", "paired_images", "tax", "tax_change", "recipes",
          "robustness", "robustness_gap", "mce", "int8")
# no MNIST in the study; the baseline alone; one dataset; no int8 form or no 1-bit network
MAY_BE_EMPTY = ("article", "paired_images", "tax", "tax_change", "recipes", "robustness_gap", "mce", "int8")
# tables that snapshots assembled before them do not have (the extended one predates int8): read as empty
LATER = ("int8",)


def _markdown(table: pd.DataFrame, **options) -> str:
    return table.to_markdown(index=False, **options) if not table.empty else ""


def report_context(tables: dict[str, pd.DataFrame], plots_rel: str, baseline: str,
                   budgets_kib: Sequence[float | None], tables_path: str,
                   margins_pp: dict[str, float] | None = None) -> dict:
    """Everything ``report.md.j2`` says (``margins_pp``: per dataset, the
    margin within which budget picks take the smaller file)."""
    margins_pp = margins_pp or {}
    summary, latency, recipes = tables["summary"], tables["latency"], tables["recipes"]
    datasets = list(dict.fromkeys(summary["dataset"]))
    headline = headline_variant(summary, baseline)
    first = of_dataset(summary, datasets[0])
    on_article_dataset = summary[summary["dataset"] == ARTICLE_DATASET]
    limited = [budget for budget in budgets_kib if budget is not None]   # no limit on RAM: the file's pick again
    return {
        "baseline": baseline,
        "primary_line": primary_line(summary, baseline, tables.get("same_flash")),
        "headline": headline,
        "answer": answer(tables, baseline, budgets_kib, margins_pp),
        "several_datasets": len(datasets) > 1,
        "cost_findings": cost_findings(tables["tax"], tables["tax_change"], headline),
        "cost_table": _markdown(readable_cost(summary, tables["tax_change"], baseline)),
        "class_findings": [sentence for dataset in datasets if (sentence := class_summary(
            of_dataset(tables["per_class"], dataset), of_dataset(tables["paired_images"], dataset), title(dataset)))],
        "savings_findings": savings_findings(first, headline),
        "same_files": same_files_sentence(summary),
        "savings_table": _markdown(readable_savings(first)),
        "budgets": [{"title": title(dataset),
                     "picks": budget_picks(of_dataset(summary, dataset), budgets_kib, of_dataset(tables["runs"], dataset),
                                           validation_images(tables["runs"]).get(dataset),
                                           margin_pp=margins_pp.get(dataset)),
                     "ram_picks": budget_sentences(of_dataset(summary, dataset), limited,
                                                   of_dataset(tables["runs"], dataset),
                                                   validation_images(tables["runs"]).get(dataset), "ram_kib",
                                                   margins_pp.get(dataset)),
                     "deployed_frontier": frontier(of_dataset(summary, dataset), "on_deployed_pareto_frontier"),
                     "larq_frontier": frontier(of_dataset(summary, dataset), "on_pareto_frontier")}
                    for dataset in datasets],
        "speed_findings": speed_findings(first[first["variant"].isin([baseline, headline])], baseline,
                                         of_dataset(latency, datasets[0])),
        "speed_summary": speed_summary(latency, baseline) if summary["variant"].nunique() > 2 else "",
        "speeds_table": _markdown(readable_speeds(latency, baseline)),
        "bench": benchmark_context(latency),
        "int8_findings": int8_findings(tables["int8"], title),
        "int8_table": _markdown(readable_int8(tables["int8"]).assign(
            dataset=lambda table: table["dataset"].map(title))) if not tables["int8"].empty else "",
        "recipe_findings": [sentence for dataset in datasets
                            if (sentence := recipe_summary(of_dataset(recipes, dataset), title(dataset)))],
        "recipes_table": _markdown(readable_recipes(recipes)),
        "robustness_findings": robustness_findings(tables["robustness_gap"], tables["mce"], tables["robustness"],
                                                   headline, title),
        "robustness": [{"title": title(dataset),
                        "table": _markdown(readable_robustness(of_dataset(tables["robustness"], dataset),
                                                               of_dataset(tables["robustness_gap"], dataset),
                                                               headline, baseline))}
                       for dataset in datasets if headline] if not tables["robustness_gap"].empty else [],
        "corruptions": corruption_context(tables["robustness"], tables["runs"]),
        "article_dataset": title(ARTICLE_DATASET),
        "article_findings": (article_findings(on_article_dataset, tables["article"])
                             if not tables["article"].empty else []),
        "iso": iso_context(tables, baseline),
        "plots_rel": plots_rel,
        "tables_path": tables_path,
    }


def iso_context(tables: dict[str, pd.DataFrame], baseline: str) -> dict:
    """The section across widths: only when some family has more than one
    width (a study of one width has nothing to say there)."""
    frontier = tables.get("frontier", pd.DataFrame(columns=["family", "width"]))
    if frontier.empty or not (frontier.groupby("family")["width"].nunique() > 1).any():
        return {"table": ""}
    return {"table": _markdown(readable_frontier(frontier, title)),
            "width_match": [width_match_sentence(row, baseline, title)
                            for row in tables["width_match"].to_dict("records")],
            "sizes": size_sentences(frontier)}


def primary_line(summary: pd.DataFrame, baseline: str, same_flash: pd.DataFrame | None = None) -> str:
    """Which comparisons are primary and which exploratory, in one line."""
    primary = list(dict.fromkeys(summary.loc[summary["accuracy_gap_family"] == PRIMARY, "variant"]))
    flash = [] if same_flash is None or same_flash.empty else list(dict.fromkeys(
        f"{row['one_bit']}` against `{row['twin']}" for row in same_flash.to_dict("records")))
    if not primary and not flash:
        return (f"No primary comparison is in this study: every gap to `{baseline}` is exploratory, adjusted over the "
                "variants of its dataset (Bonferroni)")
    parts = []
    if flash:
        parts.append(", ".join(f"`{name}`" for name in flash) + " (its equal-flash twin, fixed before training)")
    if primary:
        parts.append(", ".join(f"`{name}`" for name in primary) + f" against `{baseline}`")
    tables = [same_flash] if same_flash is not None and not same_flash.empty else []
    size = max([int(summary["accuracy_gap_family_size"][summary["accuracy_gap_family"] == PRIMARY].max())
                if primary else 0] + [int(table["same_flash_family_size"].max()) for table in tables])
    margins = "" if not tables or "same_flash_margin" not in same_flash else ", ".join(
        f"{row['same_flash_margin']:g} pp on {title(row['dataset'])}" for row in
        same_flash.drop_duplicates("dataset").to_dict("records") if not pd.isna(row["same_flash_margin"]))
    return (f"Primary: {'; '.join(parts)}, on each dataset: one family of {size}, named in params before the runs and "
            "adjusted together by Holm (adding variants cannot change it)"
            + (f"; a tie is claimed only within the margin fixed beforehand ({margins}), by two one-sided tests"
               if margins else "")
            + "; every other comparison is exploratory, adjusted within its family (Bonferroni)")


def corruption_context(robustness: pd.DataFrame, runs: pd.DataFrame) -> dict:
    """How many corruptions, of which kind, on which test images, and how
    many corrupted images each deployed model was checked on."""
    names = list(dict.fromkeys(robustness["corruption"]))
    return {"count": len(names), "names": ", ".join(name.replace("_", " ") for name in names),
            "images": evaluated_images(robustness, runs), "checked": checked_images(robustness, " images")}


def details_context(tables: dict[str, pd.DataFrame], baseline: str, tables_path: str) -> dict:
    """Everything ``details.md.j2`` lists."""
    summary, latency, runs = tables["summary"], tables["latency"], tables["runs"]
    datasets = list(dict.fromkeys(summary["dataset"]))
    first = of_dataset(summary, datasets[0])
    return {
        "baseline": baseline,
        "tables_path": tables_path,
        "datasets": [{
            "title": title(dataset),
            "summary_table": _markdown(readable_summary(of_dataset(summary, dataset))),
            "class_findings": class_findings(of_dataset(tables["per_class"], dataset),
                                             of_dataset(tables["paired_images"], dataset), baseline),
            "per_class_table": _markdown(readable_per_class(of_dataset(tables["per_class"], dataset))),
            "recipe_findings": recipe_findings(of_dataset(tables["recipes"], dataset), baseline),
            "latency_table": _markdown(readable_latency(of_dataset(latency, dataset), baseline)),
            "options_table": _markdown(latency_by_options(of_dataset(latency, dataset))),
        } for dataset in datasets],
        "tax_table": _markdown(readable_tax(tables["tax"])),
        "robustness": [{"title": title(dataset),
                        "table": _markdown(readable_accuracy(of_dataset(tables["robustness"], dataset)))}
                       for dataset in datasets],
        "deployment_findings": deployment_findings(first),
        "deployment_table": _markdown(readable_deployment(first)),
        "profiles_table": _markdown(first[["variant", "params_by_bitwidth", "memory_kib", "macs_by_precision",
                                           "binarized_mac_fraction"]].rename(columns={
            "params_by_bitwidth": "parameters by bit width", "memory_kib": "memory (KiB)",
            "macs_by_precision": "MACs by precision", "binarized_mac_fraction": "binarized MAC fraction"}),
            floatfmt=".4f"),
        "article_table": _markdown(readable_article(tables["article"])),
        # an int8 form's loss is not measured (its accuracy is the int8 model's answers): an empty cell
        "runs_table": _markdown(runs.assign(dataset=runs["dataset"].map(title), test_loss=runs["test_loss"].map(
            lambda loss: "" if pd.isna(loss) else f"{loss:.4f}"))[
            ["dataset", "variant", "seed", "test_accuracy", "test_loss", "train_time_s", "train_images_per_s"]],
            floatfmt=".4f"),
    }


def _environment():
    import jinja2

    return jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent), trim_blocks=True,
                              keep_trailing_newline=True, undefined=jinja2.StrictUndefined,
                              autoescape=False)  # Markdown, not HTML


def render(tables_dir: str | Path, plots_rel: str, baseline: str, budgets_kib: Sequence[float | None],
           details_name: str = "details.md", primary: Sequence[str] = (),
           twins: dict[str, dict[str, str]] | None = None, margins_pp: dict[str, float] | None = None
           ) -> tuple[str, str]:
    """The report and its details file, from the tables in ``tables_dir``."""
    tables_dir = Path(tables_dir)
    tables = {name: read_table(tables_dir, name, may_be_empty=name in MAY_BE_EMPTY)
              if name not in LATER or (tables_dir / f"{name}.csv").exists() else pd.DataFrame(columns=["dataset"])
              for name in TABLES}
    environment = _environment()
    with table_errors(tables_dir):
        tables = judge_tables(tables, baseline, primary, twins, margins_pp)
        report = environment.get_template("report.md.j2").render(
            report_context(tables, plots_rel, baseline, budgets_kib, tables_dir.as_posix(), margins_pp),
            details=details_name)
        details = environment.get_template("details.md.j2").render(
            details_context(tables, baseline, tables_dir.as_posix()))
    return report, details


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="data/spec/report.json", help="the slice of params.yaml it reads")
    parser.add_argument("--tables", default="reports/tables")
    parser.add_argument("--plots", default="reports/plots")
    parser.add_argument("--out", default="reports/report.md")
    parser.add_argument("--details", default=None, help="the details file (default: details.md beside --out)")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    baseline, budgets, primary = checked_baseline(params), memory_budgets(params), checked_primary(params)
    out = Path(args.out)
    details = Path(args.details) if args.details else out.with_name("details.md")
    plots_rel = Path(os.path.relpath(Path(args.plots).resolve(), out.resolve().parent))
    details_rel = Path(os.path.relpath(details.resolve(), out.resolve().parent))
    report, details_text = render(args.tables, plots_rel.as_posix(), baseline, budgets, details_rel.as_posix(),
                                  primary, twin_names(params), margins(params, required=False))
    write_text_atomic(details, details_text)
    write_text_atomic(out, report)
    log.info("report written to %s, details to %s", out, details)


if __name__ == "__main__":
    raise SystemExit(run_cli(main))

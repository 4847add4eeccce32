"""The slices of params.yaml the fan-in stages read (`benchmark`,
`aggregate`, `report`; see :mod:`stages.lib.spec`): every run of the study,
trained and formed. Apart from :mod:`stages.lib.spec`, which every training
run depends on, so that adding a post-training form to the registry retrains
nothing.
"""

from __future__ import annotations

from typing import Any

from stages.lib.forms.registry import FORMS
from stages.lib.spec import variant_definition


def _study(params: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: params["study"][key] for key in keys}


def _formed(params: dict[str, Any]) -> dict[str, Any]:
    """Each post-training form's list of variants (``int8.variants``): the
    networks the benchmark times and the tables read besides the trained
    ones (each form's module checks its list)."""
    return {form.section: {"variants": form.variants(params)} for form in FORMS}


def benchmark_slice(params: dict[str, Any]) -> dict[str, Any]:
    """The study's runs, trained and formed, and the benchmark's settings
    but the headline option set (chosen before timing, read by
    `aggregate`)."""
    return {"study": _study(params, "datasets", "variants", "seeds"),
            "benchmark": {k: v for k, v in params["benchmark"].items() if k != "headline_options"},
            **_formed(params)}


def aggregate_slice(params: dict[str, Any]) -> dict[str, Any]:
    """The study, trained and formed, the baseline, the primary comparisons
    (with the twins `check` derived), the headline option set, and each of
    the study's variants with its recipe's epochs."""
    variants = {name: variant_definition(params, name) for name in params["study"]["variants"]}
    return {
        "study": _study(params, "datasets", "variants", "seeds"),
        "aggregate": params["aggregate"],
        "benchmark": {"headline_options": params["benchmark"]["headline_options"]},
        "variants": variants,
        "recipes": {variant["recipe"]: {"epochs": params["recipes"][variant["recipe"]]["epochs"]}
                    for variant in variants.values()},
        **_formed(params),
    }


def report_slice(params: dict[str, Any]) -> dict[str, Any]:
    """The study's datasets and variants, the baseline, the primary
    comparisons and the report's budgets."""
    return {"study": _study(params, "datasets", "variants"), "aggregate": params["aggregate"],
            "report": params["report"]}


def slices(params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The fan-in stages' slice files, by their path in the spec folder."""
    return {"benchmark.json": benchmark_slice(params), "aggregate.json": aggregate_slice(params),
            "report.json": report_slice(params)}

"""The deployed forms a trained float run is made into after training, by
what the stages that read every form need to know of each.

Every trained run is deployed once as it was trained (LCE's conversion, the
`deploy` stage; named as its run). A *post-training form* is one more
deployed network made of some runs: ``<variant>+<form>`` (``fp32+int8``),
its files written by its own stage from the runs of the variants its params
section lists. What the benchmark, `check` and the tables need of it is
here: which runs it has, which stage writes its files, and how many bits
each weight and MAC takes in its file. They ask this module, never a form
by name.

A new form is one module in ``forms/`` (its conversion, its acceptance
rule and the checks of its params section), its line in :data:`FORMS`, its
stages in ``dvc.yaml`` and its params section.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stages.lib.forms.runtime import RUNTIMES
from stages.lib.names import split_form, with_form


@dataclass(frozen=True)
class Form:
    """A post-training form: networks named ``<variant>+<name>``, made by the
    stage ``stage`` from the runs of the variants listed under
    ``<section>.variants``; its file stores every weight at ``bits`` bits
    and runs every MAC at ``mac_bits`` (int4's weights meet 8-bit
    activations); the runtime that runs it (a key of
    :data:`stages.lib.forms.runtime.RUNTIMES`)."""
    name: str
    section: str
    stage: str
    bits: int
    mac_bits: int
    runtime: str = "lce"

    def network(self, variant: str) -> str:
        """The form's network made of ``variant``'s runs."""
        return with_form(variant, self.name)

    def variants(self, params: dict[str, Any]) -> list[str]:
        """The trained variants the study makes this form of (its section's
        ``variants``; none when the section or the list is absent)."""
        found = params.get(self.section)
        variants = found.get("variants") if isinstance(found, dict) else None
        return list(variants) if isinstance(variants, list) else []


# One line per form; the form's own module (its conversion and acceptance
# rule) takes its entry from BY_NAME. Kept here rather than in each module
# so that what reads forms depends on this file alone, not on conversions.
FORMS: tuple[Form, ...] = (
    Form("int8", section="int8", stage="quantize", bits=8, mac_bits=8),
    Form("int4", section="int4", stage="quantize_int4", bits=4, mac_bits=8, runtime="litert"),
)
BY_NAME = {form.name: form for form in FORMS}
TRAINED_STAGE = "deploy"   # the stage that deploys every run as it was trained


def form_of(network: str) -> Form | None:
    """The post-training form of ``network`` (``fp32+int8``: int8's), or
    None for a network deployed as it was trained."""
    return BY_NAME.get(split_form(network)[1] or "")


def is_post_training(network: str) -> bool:
    return form_of(network) is not None


def source_variant(network: str) -> str:
    """The trained variant a network's runs come from (itself when it is
    deployed as it was trained)."""
    return split_form(network)[0]


def runtime_of(network: str) -> str:
    """The runtime that runs ``network``'s deployed files: its form's, or
    LCE's for a network deployed as it was trained."""
    form = form_of(network)
    return "lce" if form is None else form.runtime


def overhead_of(network: str) -> str:
    """The benchmark's trivial model timed through ``network``'s runtime
    (whose per-call overhead the tables subtract from it)."""
    return RUNTIMES[runtime_of(network)].overhead


def writing_stage(network: str) -> str:
    """The `dvc.yaml` stage that writes ``network``'s deployed files."""
    form = form_of(network)
    return TRAINED_STAGE if form is None else form.stage


def post_training_networks(params: dict[str, Any]) -> list[str]:
    """Every post-training network the study deploys, form by form, in the
    order of each form's variants."""
    return [form.network(variant) for form in FORMS for variant in form.variants(params)]


def post_training_runs(params: dict[str, Any], study: list[tuple[str, str, int]]) -> list[tuple[str, str, int]]:
    """(dataset, network, seed) of every post-training model the study
    deploys, made of the trained runs ``study``: form by form, in the order
    of the runs."""
    return [(dataset, form.network(variant), seed) for form in FORMS
            for dataset, variant, seed in study if variant in form.variants(params)]

"""The ``aggregate`` section, checked: which variant every gap is measured
against (``aggregate.baseline``), which comparisons are primary
(``aggregate.primary``, ``aggregate.same_flash`` with the twins the `twins`
stage derived in each form of ``aggregate.twin_forms``), and the margins
their verdicts read (``aggregate.margin_pp``).

Read by `check` and the table stages only: every training run depends on
:mod:`stages.lib.params`, so a change to how a table is chosen lives here
and retrains nothing. Imports nothing of the analysis that uses it.
"""

from __future__ import annotations

from typing import Any

from stages.lib.common import StudyError
from stages.lib.params import is_number, section, study_variants

SECTION = "aggregate"
KEYS = ("baseline", "primary", "same_flash", "twin_forms", "margin_pp")
# The post-training forms an equal-flash twin can take (each the name of its
# form and of its params section; a test holds them to the forms registry and
# to the bytes stages.lib.forms.twins derives for each).
TWIN_FORMS = ("int8", "int4")
DEFAULT_TWIN_FORMS = ["int8"]


def baseline(params: dict[str, Any]) -> str:
    """``aggregate.baseline``: the variant every gap is measured against; it
    must be one of ``study.variants``, or every comparison would be empty."""
    name = section(params, "aggregate").get("baseline")
    variants = study_variants(params)
    if name not in variants:
        raise StudyError(f"aggregate.baseline must name a variant of study.variants ({', '.join(variants)}), "
                         f"got {name!r}")
    return name


def _named(params: dict[str, Any], key: str, default: list[str] | None = None) -> list[str]:
    """``aggregate.<key>``: distinct names of defined variants (a width of
    one included when ``params`` comes with its widths)."""
    names = section(params, "aggregate").get(key, default)
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names) or len(set(names)) != len(names):
        raise StudyError(f"aggregate.{key} must be a list of distinct variant names, got {names!r}")
    defined = section(params, "variants") if "variants" in params else None
    unknown = [name for name in names if defined is not None and name not in defined]
    if unknown:
        raise StudyError(f"aggregate.{key} names {', '.join(unknown)}, not defined under variants")
    return names


def primary(params: dict[str, Any]) -> list[str]:
    """``aggregate.primary``: the variants whose gap to the baseline is a
    primary comparison, per dataset (every other comparison is
    exploratory). Each must be one of ``study.variants`` other than the
    baseline: a primary named before the runs that the study does not run
    would silently leave its family."""
    names = _named(params, "primary")
    outside = [name for name in names if name not in study_variants(params)]
    if outside:
        raise StudyError(f"aggregate.primary names {', '.join(outside)}, which study.variants leaves out: add it "
                         "there, or name the primaries of this study (aggregate.primary=[] for none)")
    if section(params, "aggregate").get("baseline") in names:
        raise StudyError("aggregate.primary names the baseline itself; its gap to itself is no comparison")
    return names


def same_flash(params: dict[str, Any]) -> dict[str, str]:
    """``aggregate.same_flash``: each 1-bit variant mapped to the float
    variant whose int8 family its equal-flash twin comes from (``{bnn:
    fp32}``; the twin's width is derived by the `twins` stage). Both must be
    defined; empty or absent: none."""
    found = section(params, "aggregate").get("same_flash", {})
    if found is None:
        return {}
    if not isinstance(found, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in found.items()):
        raise StudyError("aggregate.same_flash must map each 1-bit variant to the float variant whose int8 family "
                         f"its equal-flash twin comes from ({{bnn: fp32}}), got {str(found)[:120]!r}")
    defined = section(params, "variants") if "variants" in params else None
    unknown = [name for pair in found.items() for name in pair if defined is not None and name not in defined]
    if unknown:
        raise StudyError(f"aggregate.same_flash names {', '.join(unknown)}, not defined under variants")
    return dict(found)


def twin_forms(params: dict[str, Any]) -> list[str]:
    """``aggregate.twin_forms``: the post-training forms in which each 1-bit
    network of ``aggregate.same_flash`` meets its equal-flash twin (one
    primary comparison per form, per dataset); absent: int8 alone."""
    found = section(params, "aggregate").get("twin_forms", DEFAULT_TWIN_FORMS)
    if (not isinstance(found, list) or not found or len(set(map(str, found))) != len(found)
            or not all(name in TWIN_FORMS for name in found)):
        raise StudyError(f"aggregate.twin_forms must be a non-empty list of distinct forms among "
                         f"{', '.join(TWIN_FORMS)}, got {str(found)[:120]!r}")
    return list(found)


def twins(params: dict[str, Any], records: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Per form of ``aggregate.twin_forms``, each 1-bit network of
    ``aggregate.same_flash`` with its twin's name, from the `twins` stage's
    ``records`` (by form, then 1-bit network): refused in one line when a
    record is missing or was derived from other variants, when the study
    does not train the 1-bit network or its twin, or does not make the
    twin's form of it."""
    named, study = same_flash(params), study_variants(params)
    found: dict[str, dict[str, str]] = {}
    for form in twin_forms(params) if named else []:
        made = section(params, form).get("variants") if isinstance(params.get(form), dict) else []
        of_form = records.get(form) if isinstance(records, dict) else None
        for one_bit, base in named.items():
            record = of_form.get(one_bit) if isinstance(of_form, dict) else None
            if (not isinstance(record, dict) or record.get("base") != base or record.get("form") != form
                    or record.get("one_bit_spec") != params["variants"][one_bit]
                    or record.get("base_spec") != params["variants"][base]):
                raise StudyError(f"aggregate.same_flash.{one_bit}: its {form} twin was not derived from these "
                                 "variants; run the `twins` stage first (`dvc repro`, or `python -m stages.twins "
                                 "--out data/twins`)")
            twin = record["name"]
            missing = [name for name in (one_bit, twin) if name not in study]
            if missing:
                raise StudyError(f"aggregate.same_flash.{one_bit}: the equal-flash {form} twin of {one_bit} is "
                                 f"{twin}+{form} ({record['twin_bytes']} bytes against {record['one_bit_bytes']}; "
                                 f"{record['wider_name']} would take {record['wider_bytes']}): add "
                                 f"{' and '.join(missing)} to study.variants (and {twin} to {form}.variants), or "
                                 f"drop {one_bit} from aggregate.same_flash")
            if not isinstance(made, list) or twin not in made:
                raise StudyError(f"aggregate.same_flash.{one_bit}: its twin {twin} must be in {form}.variants (its "
                                 f"{form} form is the one of equal flash)")
            found.setdefault(form, {})[one_bit] = twin
    return found


def twin_names(params: dict[str, Any]) -> dict[str, dict[str, str]]:
    """The twins `check` wrote into a table stage's slice
    (``aggregate.twins``: per form, each 1-bit network of
    ``aggregate.same_flash`` with its twin's trained variant); none in a
    slice without them."""
    found = section(params, "aggregate").get("twins") or {}
    if not isinstance(found, dict) or not all(isinstance(of_form, dict) for of_form in found.values()):
        raise StudyError(f"aggregate.twins in {str(found)[:120]!r} is not a mapping of forms: rerun `check`")
    return {form: dict(of_form) for form, of_form in found.items()}


def margins(params: dict[str, Any], required: bool = True) -> dict[str, float]:
    """``aggregate.margin_pp``: per dataset of the study, the smallest
    accuracy difference, in percentage points, a deployer would act on;
    the primaries' verdicts of equivalence are read against it. Every
    dataset of the study needs one, positive (a snapshot's tables written
    before margins existed: none, when not ``required``)."""
    found = section(params, "aggregate").get("margin_pp")
    if found is None and not required:
        return {}
    datasets = section(params, "study").get("datasets") or []
    if not isinstance(found, dict):
        raise StudyError(f"aggregate.margin_pp must map each dataset to a margin in percentage points (mnist: 0.5), "
                         f"got {str(found)[:120]!r}")
    for name in datasets:
        value = found.get(name)
        if not is_number(value) or not 0 < value < 100:
            raise StudyError(f"aggregate.margin_pp.{name} must be a positive number of percentage points below 100, "
                             f"got {str(value)[:40]!r}")
    return {name: float(value) for name, value in found.items() if is_number(value)}


def check(params: dict[str, Any]) -> None:
    """The whole section: no key but :data:`KEYS`, each one checked."""
    section(params, SECTION, KEYS)
    baseline(params)
    primary(params)
    same_flash(params)
    twin_forms(params)
    margins(params)


def slices(params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """None of its own: the table stages' slices hold the section
    (:mod:`stages.lib.fanin_slices`)."""
    return {}

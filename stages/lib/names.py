"""The study's names: one grammar, which every module that writes or reads a
name asks.

A *network* is what is trained or deployed::

    <variant>[_w<width>][+<form>]

- ``<variant>``: a key of params.yaml's ``variants`` (``fp32``, ``bnn``,
  ``bnn_fp_edges_cosine``): letters, digits and underscores;
- ``_w<width>``: that variant at another width than the article's (its hidden
  channels and units times the width: ``fp32_w0.25``, ``bnn_w2``), written as
  Python's ``g`` format writes it, so that one network has one name; without
  it, width 1;
- ``+<form>``: a deployed form of its own, converted from the trained network
  (``fp32_w0.352+int8``); without it, the trained network and its LCE file.

A network's *family* is its name without the width (``fp32+int8`` for
``fp32_w0.25+int8``). A *run* is ``<dataset>-<network>-<seed>``: its folders
and DVC's stage keys (``train@mnist-bnn-0``, ``quantize@mnist-fp32-0`` writing
``mnist-fp32+int8-0``).
"""

from __future__ import annotations

import re
from typing import Any

from stages.lib.common import StudyError

NAME_PATTERN = re.compile(r"[A-Za-z0-9_]+")
WIDTH_NAME = re.compile(r"(?P<base>[A-Za-z0-9_]+?)_w(?P<width>[0-9]+(?:\.[0-9]+)?)")
FORM_MARK = "+"
MAX_WIDTH = 16


def split_width(name: str) -> tuple[str, float]:
    """``(variant, width)`` of a trained network's name: ``fp32_w0.25`` is
    ``fp32`` at width 0.25, a name without the suffix is at width 1. A width
    that is not positive, above :data:`MAX_WIDTH`, 1, or not written
    canonically is one line naming the name to use."""
    match = WIDTH_NAME.fullmatch(name)
    if not match:
        return name, 1.0
    base, width = match["base"], float(match["width"])
    if not 0 < width <= MAX_WIDTH:
        raise StudyError(f"{name}: a width must be above 0 and at most {MAX_WIDTH}, got {match['width']}")
    if width == 1:
        raise StudyError(f"{name}: width 1 is the article's network; call it {base}")
    if match["width"] != format(width, "g"):
        raise StudyError(f"{name}: write the width as {format(width, 'g')} ({base}_w{format(width, 'g')}), so that "
                         "one network has one name")
    return base, width


def is_width_name(name: str) -> bool:
    """Whether ``name`` spells a variant at another width (``<variant>_w<width>``)."""
    return WIDTH_NAME.fullmatch(name) is not None


def width_name(variant: str, width: float) -> str:
    """The name of ``variant`` at ``width`` (the inverse of :func:`split_width`)."""
    return variant if width == 1 else f"{variant}_w{format(width, 'g')}"


def check_name(where: str, name: Any) -> str:
    """Variant (and dataset) names become folder and stage names: letters,
    digits and underscores only (and a width's decimal point), so that no
    name can reach outside its folder or be misread in DVC's
    ``<variant>-<seed>`` stage keys."""
    if not isinstance(name, str) or not (NAME_PATTERN.fullmatch(name) or WIDTH_NAME.fullmatch(name)):
        raise StudyError(f"{where}: {str(name)[:60]!r} is not a valid name; use letters, digits and underscores only "
                         "(and _w<width> for another width, as in fp32_w0.25)")
    if WIDTH_NAME.fullmatch(name):
        split_width(name)
    return name


def with_form(trained: str, form: str | None) -> str:
    """The name of the deployed ``form`` of the trained network ``trained``
    (None: the trained network itself, deployed by LCE)."""
    return trained if form is None else f"{trained}{FORM_MARK}{form}"


def split_form(network: str) -> tuple[str, str | None]:
    """``(trained network, form)`` of a network's name: ``fp32_w0.25+int8``
    is the int8 form of ``fp32_w0.25``; a name without a form, ``(name,
    None)``."""
    trained, mark, form = network.partition(FORM_MARK)
    return (trained, form) if mark else (network, None)


def family(network: str) -> tuple[str, float]:
    """``(family, width)`` of a network's name: ``fp32_w0.25+int8`` is the
    family ``fp32+int8`` at width 0.25."""
    trained, form = split_form(network)
    base, width = split_width(trained)
    return with_form(base, form), width


def run_name(dataset: str, network: str, seed: int) -> str:
    """A run's name, as its folders and DVC's stage keys
    (``train@<dataset>-<network>-<seed>``) spell it."""
    return f"{dataset}-{network}-{seed}"

"""Stage `profile`: what a precision variant weighs and computes, by Larq.

The profile depends on the architecture and its quantizers, not on trained
weights, so there is one per variant. It writes Larq's own summary table as
text and a JSON of the figures, read from Larq's profile objects
(``larq.models.ModelProfile``), never scraped from the printed table:

- ``params_total`` and ``params_by_bitwidth`` (``params_1bit``,
  ``params_32bit`` for the two the study compares);
- ``memory_kib``: weights at their own bit widths (Larq's "model size");
- ``fp32_equivalent_kib``: the same weights all at 32 bits;
- ``macs_total`` and ``macs_by_precision``: multiply-accumulates of the
  layers Larq counts (convolutions and dense layers), by the larger bit
  width of their two inputs (``macs_1bit``, ``macs_32bit``);
- ``binarized_mac_fraction``: ``macs_1bit / macs_total``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import stages  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from stages.lib.common import atomic_directory, load_params, log, run_cli, write_json_atomic
from stages.lib.training.networks import build_model
from stages.lib.training.variants import variant_from_params

BITS_PER_KIB = 8 * 1024


def profile_figures(model) -> dict[str, Any]:
    """The figures of Larq's profile of ``model`` (see the module doc)."""
    from larq.models import ModelProfile

    profile = ModelProfile(model)
    params_by_bitwidth = {str(bits): profile.weight_count(bits) for bits in profile.unique_param_bidtwidths}
    macs_by_precision = {str(bits): profile.op_count("mac", bits) for bits in profile.unique_op_precisions}
    macs_total = profile.op_count("mac")
    return {
        "params_total": profile.weight_count(),
        "params_1bit": params_by_bitwidth.get("1", 0),
        "params_32bit": params_by_bitwidth.get("32", 0),
        "params_by_bitwidth": params_by_bitwidth,
        "memory_kib": profile.memory / BITS_PER_KIB,
        "fp32_equivalent_kib": profile.fp_equivalent_memory / BITS_PER_KIB,
        "macs_total": macs_total,
        "macs_1bit": macs_by_precision.get("1", 0),
        "macs_32bit": macs_by_precision.get("32", 0),
        "macs_by_precision": macs_by_precision,
        "binarized_mac_fraction": macs_by_precision.get("1", 0) / macs_total if macs_total else 0.0,
    }


def summary_text(model) -> str:
    """Larq's printed summary of ``model`` (its layer table and totals)."""
    import larq as lq

    lines: list[str] = []
    lq.models.summary(model, print_fn=lines.append)
    return "\n".join(lines) + "\n"


def write_profile(variant_name: str, variants_section: Any, out_dir: str | Path) -> dict[str, Any]:
    variant = variant_from_params(variant_name, variants_section)
    model = build_model(variant)
    figures = {"variant": variant_name, **profile_figures(model)}
    with atomic_directory(out_dir) as tmp:
        (tmp / "summary.txt").write_text(summary_text(model))
        write_json_atomic(tmp / "profile.json", figures)
    log.info(
        "%s: %d parameters (%d at 32 bits), %.2f KiB, %d MACs, %.2f%% binarized",
        variant_name, figures["params_total"], figures["params_32bit"], figures["memory_kib"],
        figures["macs_total"], 100 * figures["binarized_mac_fraction"],
    )
    return figures


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.profile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", required=True, help="a variant named under `variants` in params.yaml")
    parser.add_argument("--params", required=True,
                        help="the slice of params.yaml it reads (data/spec/architecture/<variant>.json)")
    parser.add_argument("--out", required=True, help="folder for profile.json and summary.txt")
    args = parser.parse_args(argv)
    write_profile(args.variant, load_params(args.params).get("variants"), args.out)


if __name__ == "__main__":
    raise SystemExit(run_cli(main))

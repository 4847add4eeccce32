"""Stage `twins`: derive, before anything trains, the equal-flash twins of
each 1-bit network named in ``aggregate.same_flash``, one per form of
``aggregate.twin_forms``: the widest network of the float family it names
whose file in that form (int8, int4) is no larger than the 1-bit network's
file (:mod:`stages.lib.forms.twins`: the bytes come from converting each
architecture with generic weights; no trained weight is read).

It runs before `check` (which refuses a study that does not train a twin
and make its form), reads only ``aggregate.same_flash``,
``aggregate.twin_forms`` and the variants, and writes ``twins.json``: per
form, per 1-bit network, its twin's name, width and bytes, the 1-bit file's
bytes, and the next wider network's bytes. DVC's run cache keeps it: the
derivation (about 20 s a network and form) reruns only when one of those
params changes.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import stages  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from stages.lib.common import atomic_directory, load_params, log, run_cli, write_json_atomic
from stages.lib.settings.aggregate import same_flash, twin_forms
from stages.lib.training.variants import variant_from_params, with_widths

TWINS_FILE = "twins.json"


def derive_all(params: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """Every twin of ``aggregate.same_flash``, as records by form, then by
    1-bit name (none when it names no 1-bit network)."""
    from stages.lib.forms.twins import derive

    named, forms = same_flash(params), twin_forms(params)
    params = with_widths(params)
    variants = params.get("variants")
    records: dict[str, dict[str, dict[str, Any]]] = {}
    for one_bit, base in named.items():
        one_bit_variant, base_variant = variant_from_params(one_bit, variants), variant_from_params(base, variants)
        budget = None
        for form in forms:
            twin = derive(one_bit_variant, base_variant, form, log=log.info, budget=budget)
            budget = twin.one_bit_bytes
            log.info("%s (%d bytes): its equal-flash %s twin is %s+%s (%d bytes; %s would take %d)", one_bit,
                     twin.one_bit_bytes, form, twin.name, form, twin.twin_bytes, twin.wider_name, twin.wider_bytes)
            records.setdefault(form, {})[one_bit] = {**twin.record(), "one_bit_spec": variants[one_bit],
                                                     "base_spec": variants[base]}
    return records


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.twins", description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", required=True, help=f"folder for {TWINS_FILE}")
    args = parser.parse_args(argv)
    records = derive_all(load_params(args.params))
    with atomic_directory(args.out) as tmp:
        write_json_atomic(tmp / TWINS_FILE, records)


if __name__ == "__main__":
    raise SystemExit(run_cli(main))

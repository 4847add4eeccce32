"""Checked views of params.yaml, one module per section: what the section
holds, typed, its checks, each a one-line error naming the key.

A stage depends on the modules of the sections it reads, so a change to
how one section is checked reruns only the stages that read it. Here:
``aggregate`` and ``report`` (read by the table stages and `check`),
``deploy``, ``int8`` and ``int4`` (read by their conversion stages) and
``robustness`` (read by the robustness stages). Each has its ``SECTION``,
its ``check(params)`` (its keys and values) and the slice files it writes,
``slices(params)`` (none for the table stages' sections, whose slices
:mod:`stages.lib.fanin_slices` writes): `check` loops over them.
The sections every training run reads (``data``, ``study``, ``train``,
``variants``, ``recipes``, ``benchmark``) are still checked by
:mod:`stages.lib.params`, :mod:`stages.lib.training.variants` and
:mod:`stages.lib.training.recipes`.
"""

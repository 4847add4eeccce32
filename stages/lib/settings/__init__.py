"""Checked views of params.yaml, one module per section: what the section
holds, typed, its checks, each a one-line error naming the key.

A stage depends on the modules of the sections it reads, so a change to
how one section is checked reruns only the stages that read it. Here so
far: ``aggregate`` and ``report`` (read by the table stages and `check`),
``deploy`` and ``int8`` (read by their conversion stages). Each module of a
section checked apart (``deploy``, ``int8``, and ``robustness`` in
:mod:`stages.lib.data.robustness`) has its ``SECTION``, ``check(params)``
and the slice files it writes, ``slices(params)``: `check` loops over them.
The sections every training run reads (``data``, ``study``, ``train``,
``variants``, ``recipes``, ``benchmark``) are still checked by
:mod:`stages.lib.params`, :mod:`stages.lib.training.variants` and
:mod:`stages.lib.training.recipes`.
"""

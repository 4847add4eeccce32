"""Checked views of params.yaml, one module per section: what the section
holds, typed, its checks, each a one-line error naming the key.

A stage depends on the modules of the sections it reads, so a change to
how one section is checked reruns only the stages that read it. So far
here: ``aggregate`` and ``report`` (read by the table stages and `check`
alone). The sections every training run reads (``data``, ``study``,
``train``, ``variants``, ``recipes``, ``benchmark``) are checked by
:mod:`stages.lib.params`, :mod:`stages.lib.training.variants` and
:mod:`stages.lib.training.recipes`; ``deploy``, ``robustness`` and ``int8``
by their forms' and data's modules (:mod:`stages.lib.forms.lce`,
:mod:`stages.lib.data.robustness`, :mod:`stages.lib.forms.int8`).
`check` calls every one of them before anything runs.
"""

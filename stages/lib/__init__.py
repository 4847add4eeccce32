"""The library the stage command lines share: one concept a module.

- ``common``: errors, logging, atomic writes, the command-line wrapper;
- ``params``: the checks every params.yaml section goes through;
- ``datasets``: the registry of datasets (files, checksums, classes) and
  loading them;
- ``networks``: the article's two networks and the precision variants;
- ``lce``: model surgery and conversion for Larq Compute Engine;
- ``graph``: what a converted ``.tflite`` graph holds (operators, MACs,
  flash and RAM);
- ``stats``: the intervals and tests every table uses.
"""

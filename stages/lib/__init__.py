"""The library the stage command lines share, one concept a module, grouped
by what the study does with it:

- here, what every stage uses: ``common`` (errors, logging, atomic writes,
  the command-line wrapper), ``names`` (the grammar of a network's and a
  run's name), ``wording`` (how a number is written), ``params`` (the checks
  of params.yaml and their shared rules), ``spec`` (the slice of params.yaml each stage reads) and
  ``layout`` (where each output lives; no name reaches outside);
- ``data``: the datasets, the corruptions of their test images, and the
  robustness evaluation on them;
- ``training``: the precision variants and their network, the recipes, a
  trained model on disk;
- ``forms``: the deployed forms (LCE's conversion, int8 quantization), what
  they share, and what a converted graph holds;
- ``analysis``: the statistics, the verdicts and their words, and each table
  `aggregate` writes;
- ``reporting``: the figures and the report's answer.
"""

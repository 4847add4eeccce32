"""Training recipes: how a variant is trained, apart from what it is.

A recipe is a named entry under ``recipes`` in ``params.yaml``; each variant
names one (``variants.<name>.recipe``, ``article`` when left out). A recipe
holds the optimizer of the real-valued weights and its learning rate, the
learning-rate schedule, the epochs, the batch size, the batch-norm momentum
and, optionally, Bop for the binary weights (Helwegen et al. 2019, "Latent
Weights Do Not Exist"): Bop flips a binary weight when the moving average of
its gradient passes a threshold, and ``larq.optimizers.CaseOptimizer`` hands
every other weight to the recipe's optimizer.

:func:`recipe_from_params` checks a recipe the way variants are checked, so
a bad key fails with one line before anything trains;
:func:`make_optimizer` builds what ``model.compile`` takes.

Under Bop a binary kernel is always exactly -1 or +1 (Bop writes the sign),
so ``weight_clip`` never changes it and ``ste_sign`` passes its gradient
(its straight-through estimator is open for |w| <= 1): the constraint is
harmless and no weight starves. The recipe variants keep their base
variant's quantizers and constraint, so that only the training differs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from stages.lib.common import StudyError
from stages.lib.names import check_name
from stages.lib.params import is_int, is_number

DEFAULT_RECIPE = "article"
OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("constant", "cosine", "step")
RECIPE_KEYS = ("optimizer", "learning_rate", "schedule", "epochs", "batch_size", "batchnorm_momentum", "bop")
SCHEDULE_KEYS = {
    "constant": (),
    "cosine": ("warmup_epochs", "final_fraction"),
    "step": ("every_epochs", "factor"),
}


@dataclass(frozen=True)
class Schedule:
    """How the learning rate moves over training.

    - ``constant``: the recipe's rate throughout;
    - ``cosine``: a linear warm-up from 0 over ``warmup_epochs``, then a
      cosine decay from the recipe's rate to ``final_fraction`` of it at the
      last step;
    - ``step``: the rate multiplied by ``factor`` every ``every_epochs``.
    """

    name: str
    warmup_epochs: int = 0
    final_fraction: float = 0.0
    every_epochs: int = 0
    factor: float = 1.0


@dataclass(frozen=True)
class Bop:
    threshold: float
    gamma: float


@dataclass(frozen=True)
class Recipe:
    name: str
    optimizer: str
    learning_rate: float
    schedule: Schedule
    epochs: int
    batch_size: int
    batchnorm_momentum: float
    bop: Bop | None


def _positive_int(where: str, value: Any) -> int:
    if not is_int(value) or value <= 0:
        raise StudyError(f"{where} must be a positive whole number, got {value!r}")
    return value


def _positive_number(where: str, value: Any) -> float:
    if not is_number(value) or not value > 0 or not math.isfinite(value):
        raise StudyError(f"{where} must be a positive number, got {value!r}")
    return float(value)


def _schedule(where: str, spec: Any, epochs: int) -> Schedule:
    if not isinstance(spec, dict) or spec.get("name") not in SCHEDULES:
        name = spec.get("name") if isinstance(spec, dict) else spec
        raise StudyError(f"{where}: unknown schedule {name!r}; valid: {', '.join(SCHEDULES)} "
                         "(a mapping such as {name: cosine, warmup_epochs: 1, final_fraction: 0.0})")
    name = spec["name"]
    keys = SCHEDULE_KEYS[name]
    unknown = [str(k) for k in spec if k != "name" and k not in keys]
    if unknown:
        valid = ", ".join(keys) if keys else "none"
        raise StudyError(f"{where} has unknown keys {', '.join(unknown)} for a {name} schedule; valid keys: {valid}")
    missing = [k for k in keys if k not in spec]
    if missing:
        raise StudyError(f"{where} lacks {', '.join(missing)} for a {name} schedule")
    if name == "cosine":
        warmup = spec["warmup_epochs"]
        if not is_int(warmup) or not 0 <= warmup < epochs:
            raise StudyError(f"{where}.warmup_epochs must be a whole number from 0 to epochs - 1 ({epochs - 1}), "
                             f"got {warmup!r}")
        final = spec["final_fraction"]
        if not is_number(final) or not 0 <= final <= 1:
            raise StudyError(f"{where}.final_fraction must be a number from 0 to 1, got {final!r}")
        return Schedule(name, warmup_epochs=warmup, final_fraction=float(final))
    if name == "step":
        every = _positive_int(f"{where}.every_epochs", spec["every_epochs"])
        factor = spec["factor"]
        if not is_number(factor) or not 0 < factor < 1:
            raise StudyError(f"{where}.factor must be a number between 0 and 1, got {factor!r}")
        return Schedule(name, every_epochs=every, factor=float(factor))
    return Schedule(name)


def recipe_from_params(name: Any, recipes_section: Any, where: str = "recipes") -> Recipe:
    """Check ``recipes.<name>`` and return it as a :class:`Recipe`; any
    problem raises a one-line :class:`StudyError` naming the param.
    ``where`` names what asked for the recipe (a variant's ``recipe`` key)."""
    if not isinstance(recipes_section, dict) or not recipes_section:
        raise StudyError("params.yaml has no `recipes` section describing the training recipes")
    check_name(where, name)
    if name not in recipes_section:
        raise StudyError(f"{where}: unknown recipe {name!r}; params.yaml defines {', '.join(sorted(recipes_section))} "
                         "under `recipes`")
    spec = recipes_section[name]
    at = f"recipes.{name}"
    if not isinstance(spec, dict):
        raise StudyError(f"{at} must be a mapping of {', '.join(RECIPE_KEYS)}")
    missing = [k for k in RECIPE_KEYS if k not in spec]
    unknown = [str(k) for k in spec if k not in RECIPE_KEYS]
    if missing:
        raise StudyError(f"{at} lacks {', '.join(missing)}")
    if unknown:
        raise StudyError(f"{at} has unknown keys {', '.join(unknown)}; valid keys: {', '.join(RECIPE_KEYS)}")
    if spec["optimizer"] not in OPTIMIZERS:
        raise StudyError(f"{at}.optimizer: unknown optimizer {spec['optimizer']!r}; valid: {', '.join(OPTIMIZERS)}")
    epochs = _positive_int(f"{at}.epochs", spec["epochs"])
    momentum = spec["batchnorm_momentum"]
    if not is_number(momentum) or not 0 <= momentum < 1:
        raise StudyError(f"{at}.batchnorm_momentum must be a number from 0 to below 1, got {momentum!r}")
    bop = spec["bop"]
    if bop is not None:
        if not isinstance(bop, dict) or sorted(bop) != ["gamma", "threshold"]:
            raise StudyError(f"{at}.bop must be null or a mapping of threshold and gamma, got {bop!r}")
        gamma = bop["gamma"]
        if not is_number(gamma) or not 0 < gamma <= 1:
            raise StudyError(f"{at}.bop.gamma must be a number above 0 and at most 1, got {gamma!r}")
        bop = Bop(threshold=_positive_number(f"{at}.bop.threshold", bop["threshold"]), gamma=float(gamma))
    return Recipe(
        name=name,
        optimizer=spec["optimizer"],
        learning_rate=_positive_number(f"{at}.learning_rate", spec["learning_rate"]),
        schedule=_schedule(f"{at}.schedule", spec["schedule"], epochs),
        epochs=epochs,
        batch_size=_positive_int(f"{at}.batch_size", spec["batch_size"]),
        batchnorm_momentum=float(momentum),
        bop=bop,
    )


def learning_rate(recipe: Recipe, steps_per_epoch: int):
    """The recipe's learning rate: a number for a constant schedule (what the
    article's recipe always compiled), else a Keras schedule over training
    steps."""
    import stages  # noqa: F401  (selects Keras 2 before TensorFlow loads)
    import tensorflow as tf

    schedule, rate = recipe.schedule, recipe.learning_rate
    if schedule.name == "constant":
        return rate
    if schedule.name == "step":
        # Keras holds a value while step <= its boundary: the new rate starts
        # with the first step of epoch `every_epochs` + 1, counting from 1
        boundaries = [epoch * steps_per_epoch - 1 for epoch in range(schedule.every_epochs, recipe.epochs,
                                                                     schedule.every_epochs)]
        values = [rate * schedule.factor ** index for index in range(len(boundaries) + 1)]
        return tf.keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values) if boundaries else rate
    warmup_steps = schedule.warmup_epochs * steps_per_epoch
    return tf.keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup_steps else rate,
        decay_steps=recipe.epochs * steps_per_epoch - warmup_steps,
        alpha=schedule.final_fraction,
        warmup_target=rate if warmup_steps else None,
        warmup_steps=warmup_steps,
    )


def make_optimizer(recipe: Recipe, steps_per_epoch: int):
    """What ``model.compile`` takes for ``recipe``: its optimizer with its
    schedule; under Bop, a ``CaseOptimizer`` that gives the binary weights
    (Larq's ``precision == 1`` variables) to Bop and the rest to that
    optimizer (Larq's ``CaseOptimizer`` takes only Keras's legacy
    optimizers)."""
    import stages  # noqa: F401  (selects Keras 2 before TensorFlow loads)
    import larq as lq
    import tensorflow as tf

    rate = learning_rate(recipe, steps_per_epoch)
    family = tf.keras.optimizers.legacy if recipe.bop else tf.keras.optimizers
    real = family.Adam(learning_rate=rate) if recipe.optimizer == "adam" else family.SGD(learning_rate=rate)
    if recipe.bop is None:
        return real
    return lq.optimizers.CaseOptimizer(
        (lq.optimizers.Bop.is_binary_variable, lq.optimizers.Bop(threshold=recipe.bop.threshold,
                                                                 gamma=recipe.bop.gamma)),
        default_optimizer=real,
    )

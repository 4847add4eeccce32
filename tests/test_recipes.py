import dataclasses
import math

import numpy as np
import pytest

from stages.lib.params import Validation
from stages.lib.common import StudyError
from stages.lib.training.recipes import Bop, Recipe, Schedule, learning_rate, make_optimizer, recipe_from_params


def _recipe(schedule, epochs=10, rate=0.01, bop=None):
    return Recipe("test", "adam", rate, schedule, epochs, 64, 0.99, bop)


def _rates(recipe, steps_per_epoch, steps):
    rate = learning_rate(recipe, steps_per_epoch)
    return [float(rate(step)) if callable(rate) else rate for step in steps]


def test_constant_schedule_is_the_plain_number_the_article_compiled():
    assert learning_rate(_recipe(Schedule("constant"), rate=0.001), 938) == 0.001


def test_cosine_schedule_without_warm_up():
    recipe = _recipe(Schedule("cosine", final_fraction=0.0), epochs=10)
    # 100 steps an epoch, 1,000 in all: the rate at the start, half way, three quarters, the end
    assert _rates(recipe, 100, [0, 500, 750, 1000]) == pytest.approx([0.01, 0.005, 0.01 * (1 + math.cos(0.75 * math.pi)) / 2,
                                                                      0.0], abs=1e-9)


def test_cosine_schedule_with_warm_up_and_a_floor():
    recipe = _recipe(Schedule("cosine", warmup_epochs=2, final_fraction=0.1), epochs=10)
    # a linear warm-up from 0 over 200 steps, then cosine from 0.01 to 0.001 over the other 800
    assert _rates(recipe, 100, [0, 100, 200, 600, 1000]) == pytest.approx([0.0, 0.005, 0.01, 0.0055, 0.001], abs=1e-9)


def test_step_schedule():
    recipe = _recipe(Schedule("step", every_epochs=3, factor=0.1), epochs=10)
    # x0.1 after epochs 3, 6 and 9 (100 steps each)
    assert _rates(recipe, 100, [0, 299, 300, 599, 600, 900, 999]) == pytest.approx(
        [0.01, 0.01, 0.001, 0.001, 0.0001, 0.00001, 0.00001], rel=1e-6)


def test_the_params_recipes_are_valid_and_the_article_s_is_unchanged(study_params):
    recipes = {name: recipe_from_params(name, study_params["recipes"]) for name in study_params["recipes"]}
    assert recipes["article"] == Recipe("article", "adam", 0.001, Schedule("constant"), 6, 64, 0.99, None)
    assert recipes["bop"].bop == Bop(threshold=1e-6, gamma=1e-3)
    assert recipes["cosine"].epochs == 12 and recipes["cosine"].schedule.name == "cosine"


def test_recipe_variants_keep_their_base_s_architecture(study_params):
    from stages.lib.training.variants import variant_from_params

    variants = study_params["variants"]
    for name in ("fp32_cosine", "bnn_bop", "bnn_cosine", "bnn_fp_edges_bop", "bnn_fp_edges_cosine"):
        base, recipe = name.rsplit("_", 1)
        variant = variant_from_params(name, variants)
        assert variant.recipe == recipe and variant_from_params(base, variants).recipe == "article"
        assert variant.architecture() == variant_from_params(base, variants).architecture(), name


def test_an_unknown_recipe_is_one_line(study_params):
    with pytest.raises(StudyError, match=r"^variants.bnn.recipe: unknown recipe 'fast'; params.yaml defines article, "
                                         r"bop, cosine under `recipes`$"):
        recipe_from_params("fast", study_params["recipes"], where="variants.bnn.recipe")


def _tiny_problem(seed=0):
    """A binary dense layer (ste_sign kernel, weight_clip) on 4 inputs, then
    a real-valued dense layer, and 256 points of a separable problem."""
    import stages  # noqa: F401
    import larq as lq
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    model = tf.keras.Sequential([
        tf.keras.Input(shape=(4,)),
        lq.layers.QuantDense(8, kernel_quantizer="ste_sign", kernel_constraint="weight_clip", use_bias=False,
                             name="binary"),
        tf.keras.layers.Dense(2, name="real"),
    ])
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(256, 4)).astype(np.float32)
    y = (x[:, 0] - x[:, 1] > 0).astype(np.int32)
    return model, x, y


def test_bop_flips_binary_weights_and_leaves_the_others_to_the_default_optimizer():
    import larq as lq
    import tensorflow as tf

    model, x, y = _tiny_problem()
    recipe = _recipe(Schedule("constant"), epochs=5, rate=0.01, bop=Bop(threshold=1e-6, gamma=1e-2))
    optimizer = make_optimizer(recipe, steps_per_epoch=8)
    assert isinstance(optimizer, lq.optimizers.CaseOptimizer)
    bop, adam = optimizer.optimizers[0], optimizer.default
    assert isinstance(bop, lq.optimizers.Bop) and isinstance(adam, tf.keras.optimizers.legacy.Adam)
    binary_before = np.sign(model.get_layer("binary").get_weights()[0])
    real_before = model.get_layer("real").get_weights()[0].copy()
    model.compile(optimizer=optimizer, loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=32, epochs=5, verbose=0, shuffle=False)
    binary = model.get_layer("binary").get_weights()[0]
    # Bop writes signs: every binary weight is exactly -1 or +1, and some flipped
    assert set(np.unique(binary)) <= {-1.0, 1.0}
    assert 0 < np.sum(np.sign(binary) != binary_before) < binary.size
    # the real-valued weights moved by Adam, not by sign flips
    real = model.get_layer("real").get_weights()[0]
    assert not np.array_equal(real, real_before) and len(np.unique(np.abs(real))) > 2
    # Bop holds state only for the binary kernel; Adam for the rest
    assert [v.name for v in bop.variables() if "/m:" in v.name] == ["binary/kernel/m:0"]
    assert all("binary" not in v.name for v in adam.variables())


def test_without_bop_the_optimizer_is_keras_s_own():
    import tensorflow as tf

    optimizer = make_optimizer(_recipe(Schedule("constant"), rate=0.001), steps_per_epoch=10)
    assert isinstance(optimizer, tf.keras.optimizers.Adam) and float(optimizer.learning_rate) == pytest.approx(0.001)
    sgd = make_optimizer(dataclasses.replace(_recipe(Schedule("cosine")), optimizer="sgd"), steps_per_epoch=10)
    assert isinstance(sgd, tf.keras.optimizers.SGD)


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["article", "cosine", "bop"])
def test_a_tiny_run_under_each_recipe_is_deterministic_bit_for_bit(study_params, mnist_dir, tmp_path, recipe):
    from test_train import TINY, tiny_recipe

    from stages.lib.training.variants import variant_from_params
    from stages.train import train_run

    variant = variant_from_params("bnn", study_params["variants"])
    chosen = tiny_recipe(study_params, recipe, epochs=2)
    results = [train_run(variant, chosen, 0, TINY, mnist_dir, tmp_path / f"{i}" / "model", tmp_path / f"{i}" / "live",
                         train_limit=640, test_limit=200, verbose=0, validation=Validation(64, 0)) for i in (0, 1)]
    timing = {"train_time_s": 0.0, "train_images_per_s": 0.0}
    assert dataclasses.replace(results[0], **timing) == dataclasses.replace(results[1], **timing)
    assert results[0].epochs == 2
    first, second = ((tmp_path / f"{i}" / "live" / "predictions.csv").read_bytes() for i in (0, 1))
    assert first == second

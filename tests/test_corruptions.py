"""The corruptions: each one's exact, checkable property, and that the
corrupted bytes depend only on the seed, the corruption and the image."""

import hashlib

import numpy as np
import pytest
from scipy import ndimage, stats

from stages.lib.data.corruptions import CORRUPTIONS, corrupt, image_rngs, rotate, scale, shear, shot_noise, impulse_noise
from stages.lib.data.datasets import load_split


@pytest.fixture(scope="module")
def digits(mnist_dir):
    """The first 200 MNIST test images (uint8)."""
    return load_split(mnist_dir, "test", 200)[0]


def _levels():
    return [(name, c.level) for name, c in CORRUPTIONS.items()]


@pytest.mark.parametrize("name, level", _levels(), ids=list(CORRUPTIONS))
def test_every_corruption_keeps_shape_dtype_and_range_and_changes_the_images(digits, name, level):
    out = corrupt(digits, name, level, seed=0)
    assert out.dtype == np.uint8 and out.shape == digits.shape
    # on floats too: the corruption itself stays within [0, 1]
    floats = CORRUPTIONS[name].apply(digits[:20].astype(float) / 255, image_rngs(0, name, range(20)),
                                     CORRUPTIONS[name].value(level))
    assert floats.shape == (20, 28, 28) and floats.min() >= 0 and floats.max() <= 1
    changed = (out != digits).any(axis=(1, 2))
    assert changed.mean() > 0.9, f"{name} leaves {int((~changed).sum())} of 200 images as they were"


def test_stripe_inverts_columns_0_to_6_and_21_to_27_only(digits):
    out = corrupt(digits, "stripe", None, seed=0)
    np.testing.assert_array_equal(out[:, :, :7], 255 - digits[:, :, :7])
    np.testing.assert_array_equal(out[:, :, 21:], 255 - digits[:, :, 21:])
    np.testing.assert_array_equal(out[:, :, 7:21], digits[:, :, 7:21])


def test_inversion_and_brightness_on_grey_images(digits):
    np.testing.assert_array_equal(corrupt(digits, "inversion", None, seed=0), 255 - digits)
    # MNIST-C's brightness adds to HSV's value channel, which for a grey image is the grey level
    expected = np.rint(np.clip(digits / 255 + 0.5, 0, 1) * 255).astype(np.uint8)
    np.testing.assert_array_equal(corrupt(digits, "brightness", 5, seed=0), expected)


def test_contrast_keeps_each_image_s_mean_and_scales_its_spread(digits):
    out = corrupt(digits, "contrast", 4, seed=0).astype(float)
    # no pixel is clipped at factor 0.1, so the mean stays (within rounding) and deviations shrink tenfold
    np.testing.assert_allclose(out.mean(axis=(1, 2)), digits.mean(axis=(1, 2)), atol=0.5)
    np.testing.assert_allclose(out.std(axis=(1, 2)), 0.1 * digits.std(axis=(1, 2)), atol=0.5)


def _centre_of_mass(images):
    return np.array([ndimage.center_of_mass(image.astype(float)) for image in images])


@pytest.mark.parametrize("level", [1, 2, 3])
def test_translate_by_k_moves_the_centre_of_mass_by_k_pixels_along_each_axis(digits, level):
    # the digits that keep `pixels` of blank margin on every side, so the shift loses no pixel
    pixels = CORRUPTIONS["translate"].value(level)
    ink = digits > 0
    rows, cols = ink.any(axis=2), ink.any(axis=1)
    margin = np.minimum(np.minimum(rows.argmax(1), rows[:, ::-1].argmax(1)),
                        np.minimum(cols.argmax(1), cols[:, ::-1].argmax(1)))
    digits = digits[margin >= pixels]
    assert len(digits) > 50
    out = corrupt(digits, "translate", level, seed=0)
    assert (out.sum(axis=(1, 2)) == digits.sum(axis=(1, 2))).all()
    moved = _centre_of_mass(out) - _centre_of_mass(digits)
    np.testing.assert_allclose(np.abs(moved), pixels, atol=1e-9)
    # each direction's sign is drawn per image: both signs occur along each axis
    assert {1.0, -1.0} <= set(np.sign(moved[:, 0])) and {1.0, -1.0} <= set(np.sign(moved[:, 1]))


@pytest.mark.parametrize("corruption, identity", [(rotate, 0.0), (shear, 0.0), (scale, 1.0)])
def test_rotate_shear_and_scale_by_nothing_are_the_identity(digits, corruption, identity):
    floats = digits.astype(float) / 255
    out = corruption(floats, image_rngs(0, corruption.__name__, range(len(digits))), identity)
    np.testing.assert_array_equal(np.rint(out * 255).astype(np.uint8), digits)


def test_rotate_and_scale_keep_the_centre_of_mass_near_the_centre(digits):
    # both act about the grid's centre: a digit's centre of mass moves, but stays near it
    for name in ("rotate", "scale"):
        out = corrupt(digits, name, CORRUPTIONS[name].level, seed=0)
        distance = np.linalg.norm(_centre_of_mass(out) - 13.5, axis=1)
        assert np.median(distance) < np.median(np.linalg.norm(_centre_of_mass(digits) - 13.5, axis=1)) + 1.5


@pytest.mark.parametrize("grey", [0.1, 0.25, 0.5])
def test_shot_noise_keeps_the_mean_its_poisson_law_gives(grey):
    photons = CORRUPTIONS["shot_noise"].value(5)
    images = np.full((400, 28, 28), grey)
    out = shot_noise(images, image_rngs(0, "shot_noise", range(400)), photons)
    # E[min(Poisson(photons * grey) / photons, 1)]: the mean is kept but for what clipping at 1 takes
    counts = np.arange(0, 200)
    expected = np.sum(np.minimum(counts / photons, 1) * stats.poisson.pmf(counts, photons * grey))
    spread = out.std() / np.sqrt(out.size)
    assert abs(out.mean() - expected) < 5 * spread
    assert expected <= grey


@pytest.mark.parametrize("grey", [0.0, 0.3, 1.0])
def test_impulse_noise_keeps_the_mean_of_salt_and_pepper(grey):
    amount = CORRUPTIONS["impulse_noise"].value(4)
    images = np.full((400, 28, 28), grey)
    out = impulse_noise(images, image_rngs(0, "impulse_noise", range(400)), amount)
    expected = (1 - amount) * grey + amount / 2
    spread = np.sqrt(amount * (1 - amount) / out.size)  # at most the standard error of a pixel's mean
    assert abs(out.mean() - expected) < 5 * max(spread, out.std() / np.sqrt(out.size))
    assert set(np.unique(out)) <= {0.0, grey, 1.0}
    assert abs((out != grey).mean() - amount * (0.5 if grey in (0.0, 1.0) else 1.0)) < 0.01


def test_canny_edges_are_binary_and_lie_on_the_digit_s_outline(digits):
    out = corrupt(digits, "canny_edges", None, seed=0)
    assert set(np.unique(out)) <= {0, 255}
    # every edge pixel is within two pixels of the digit, and the border is never an edge
    near = ndimage.binary_dilation(digits > 0, iterations=2)
    assert not (out.astype(bool) & ~near).any()
    assert not out[:, [0, -1], :].any() and not out[:, :, [0, -1]].any()


def test_the_same_seed_gives_the_same_bytes_and_each_image_its_own_draws(digits):
    for name, level in _levels():
        first = corrupt(digits[:50], name, level, seed=0)
        np.testing.assert_array_equal(first, corrupt(digits[:50], name, level, seed=0))
        # a batch elsewhere in the split draws what the whole split draws there
        np.testing.assert_array_equal(corrupt(digits[20:30], name, level, seed=0, first_index=20), first[20:30])
    # the same image at two indices gets different noise; another seed, other noise
    twice = np.repeat(digits[:1], 2, axis=0)
    for name in ("shot_noise", "impulse_noise", "glass_blur", "spatter", "fog", "motion_blur"):
        level = CORRUPTIONS[name].level
        noisy = corrupt(twice, name, level, seed=0)
        assert (noisy[0] != noisy[1]).any(), name
        assert (corrupt(twice, name, level, seed=1)[0] != noisy[0]).any(), name


# The bytes of every corruption of the first 200 MNIST test images at seed
# 0: the same on every machine (seeded per image; NumPy's generators and
# SciPy's filters are deterministic), or the corrupted files would differ
# between two machines.
CORRUPTED_SHA256 = "305cc5011c2470f2590947ffd86d59237fdfd6b1c9e9fce9d6f0bd2a0eb723a3"


def test_corrupted_bytes_are_pinned(digits):
    digest = hashlib.sha256()
    for name, level in _levels():
        digest.update(corrupt(digits, name, level, seed=0).tobytes())
    assert digest.hexdigest() == CORRUPTED_SHA256

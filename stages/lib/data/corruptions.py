"""The corruptions of MNIST-C (Mu and Gilmer, 2019), plus contrast and
inversion (Fashion-MNIST-C's), written anew on NumPy and SciPy.

Each corruption maps a batch of 28x28 grey images in [0, 1] to another, with
one parameter its severity level selects (the levels and MNIST-C's chosen
level come from google-research/mnist-c's ``corruptions.py``). Every random
draw comes from a generator seeded by (seed, corruption, image index), so a
corrupted image's bytes depend on nothing else: not on the batch, the order,
the other corruptions or the machine. :func:`corrupt` works on uint8 pixels,
the format of the clean split, and rounds its result to the nearest integer.

Where the original leans on a library this project does not carry, the
docstring says how this version differs: motion blur (ImageMagick), fog (a
GPL diamond-square), glass blur and the affine corruptions (scikit-image),
canny edges (scikit-image's Canny).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from stages.lib.common import StudyError

SIZE = 28
CENTRE = (SIZE - 1) / 2  # the pixel grid's centre, which the affine corruptions keep in place

Images = np.ndarray  # (n, 28, 28) floats in [0, 1]
Rngs = Sequence[np.random.Generator]


@dataclass(frozen=True)
class Corruption:
    """A corruption: ``apply(images, rngs, value)`` with one generator per
    image; ``levels`` the value of each severity 1..5 (empty when it has
    none); ``level`` the one MNIST-C uses."""

    name: str
    apply: Callable[[Images, Rngs, Any], Images]
    levels: tuple[Any, ...] = ()
    level: int | None = None
    summary: str = ""

    def value(self, level: int | None) -> Any:
        return self.levels[level - 1] if self.levels else None


# -- noise ---------------------------------------------------------------

def shot_noise(images: Images, rngs: Rngs, photons: float) -> Images:
    """Poisson noise: each pixel becomes Poisson(photons x p) / photons,
    clipped to 1. Before clipping every pixel keeps its mean p; on a pixel
    of value p the mean after clipping is E[min(Poisson(photons p) /
    photons, 1)]."""
    lam = images * photons
    return np.clip(np.stack([rng.poisson(one) for rng, one in zip(rngs, lam)]) / photons, 0, 1)


def impulse_noise(images: Images, rngs: Rngs, amount: float) -> Images:
    """Salt and pepper: each pixel with probability ``amount`` becomes 0 or
    1, each with probability one half, so a pixel of value p has mean
    (1 - amount) p + amount / 2."""
    hit = np.stack([rng.random(images.shape[1:]) for rng in rngs])
    salt = np.stack([rng.random(images.shape[1:]) for rng in rngs])
    return np.where(hit < amount, (salt < 0.5).astype(float), images)


# -- blur ----------------------------------------------------------------

def _gaussian(images: Images, sigma: float, cols: bool = True) -> Images:
    """scikit-image's ``gaussian`` per image: edges repeat the nearest pixel,
    the kernel reaches four sigmas; ``cols=False`` blurs down the columns
    only."""
    return ndimage.gaussian_filter(images, sigma=(0, sigma, sigma if cols else 0), mode="nearest", truncate=4.0)


def glass_blur(images: Images, rngs: Rngs, value: tuple[float, int, int]) -> Images:
    """Blur, shuffle pixels locally, blur again. The shuffle visits the
    pixels from the bottom right to the top left (``iterations`` times) and
    swaps each, with probability one half, with a pixel up to ``delta`` away
    (offsets drawn from -delta to delta - 1, as the original's
    ``randint``); the blurred image is truncated to uint8 before the
    shuffle, as there. MNIST-C calls scikit-image's ``gaussian`` with
    ``multichannel=True`` on a 2-D image, which takes the columns for
    channels: its blur runs down each column only, and so does this one.
    The draws for every visit are made up front, which
    gives the same distribution as drawing them during the visit."""
    sigma, delta, iterations = value
    pixels = np.floor(_gaussian(images, sigma, cols=False) * 255)
    visits = [(row, col) for _ in range(iterations)
              for row in range(SIZE - delta, delta, -1) for col in range(SIZE - delta, delta, -1)]
    n = len(images)
    swap = np.empty((n, len(visits)), bool)
    offsets = np.empty((n, len(visits), 2), int)
    for i, rng in enumerate(rngs):
        swap[i] = rng.random(len(visits)) < 0.5
        offsets[i] = rng.integers(-delta, delta, size=(len(visits), 2))
    index = np.arange(n)
    for step, (row, col) in enumerate(visits):
        which = index[swap[:, step]]
        other_row, other_col = row + offsets[which, step, 1], col + offsets[which, step, 0]
        here = pixels[which, row, col].copy()
        pixels[which, row, col] = pixels[which, other_row, other_col]
        pixels[which, other_row, other_col] = here
    return np.clip(_gaussian(pixels / 255, sigma, cols=False), 0, 1)


def motion_blur(images: Images, rngs: Rngs, value: tuple[float, float]) -> Images:
    """ImageMagick's ``-motion-blur radius x sigma + angle`` (MNIST-C's, with
    an angle drawn from -45 to 45 degrees): each pixel becomes the weighted
    mean of the 2 radius + 1 pixels on a line leaving it at that angle, the
    weights a one-sided Gaussian of ``sigma``, pixels past the edge taken from
    the nearest edge pixel. ImageMagick rounds each tap's offset to a whole
    pixel as here; it works on 16-bit integers and MNIST-C passes the image
    through PNG, where this works on floats and rounds once at the end."""
    radius, sigma = value
    width = int(2 * radius + 1)
    taps = np.arange(width)
    weights = np.exp(-taps**2 / (2 * sigma**2))
    weights /= weights.sum()
    angles = np.radians(np.array([rng.uniform(-45, 45) for rng in rngs]) + 90)
    # ImageMagick's line direction: x = width sin(angle + 90), y = width cos(angle + 90), as whole pixels.
    dx, dy = np.trunc(width * np.sin(angles)), np.trunc(width * np.cos(angles))
    norm = np.hypot(dx, dy)
    col_step = np.ceil(taps[None, :] * dy[:, None] / norm[:, None] - 0.5).astype(int)
    row_step = np.ceil(taps[None, :] * dx[:, None] / norm[:, None] - 0.5).astype(int)
    padded = np.pad(images, ((0, 0), (width, width), (width, width)), mode="edge")
    rows = np.arange(SIZE)[None, :, None] + width
    cols = np.arange(SIZE)[None, None, :] + width
    index = np.arange(len(images))[:, None, None]
    out = np.zeros_like(images)
    for tap in taps:
        out += weights[tap] * padded[index, rows + row_step[:, tap, None, None], cols + col_step[:, tap, None, None]]
    return np.clip(out, 0, 1)


# -- geometry ------------------------------------------------------------

def _affine(images: Images, matrices: np.ndarray) -> Images:
    """Each image resampled (bilinear, zeros outside) at ``matrix @ (col,
    row) + t`` for each output pixel, ``t`` chosen so that the grid's centre
    stays in place: scikit-image's ``warp`` with ``inverse_map`` the affine
    transform, as MNIST-C builds it."""
    out = np.empty_like(images)
    centre = np.array([CENTRE, CENTRE])
    for i, (image, matrix) in enumerate(zip(images, matrices)):
        in_rows_cols = matrix[::-1, ::-1]  # (col, row) order to SciPy's (row, col)
        offset = centre - in_rows_cols @ centre
        out[i] = ndimage.affine_transform(image, in_rows_cols, offset=offset, order=1, mode="constant", cval=0.0)
    return np.clip(out, 0, 1)


def _signs(rngs: Rngs, count: int = 1) -> np.ndarray:
    return np.array([rng.choice([-1, 1], count) for rng in rngs], float)


def shear(images: Images, rngs: Rngs, angle: float) -> Images:
    """A shear by ``angle`` radians of random sign, about the centre, with
    the matrix of scikit-image's ``AffineTransform(shear=...)`` of MNIST-C's
    time: [[1, -sin(shear)], [0, cos(shear)]] on (col, row)."""
    matrices = [np.array([[1.0, -math.sin(s * angle)], [0.0, math.cos(s * angle)]]) for s in _signs(rngs)[:, 0]]
    return _affine(images, np.array(matrices).reshape(len(images), 2, 2))


def rotate(images: Images, rngs: Rngs, angle: float) -> Images:
    """A rotation by ``angle`` radians of random sign about the centre."""
    matrices = []
    for s in _signs(rngs)[:, 0]:
        c, t = math.cos(s * angle), math.sin(s * angle)
        matrices.append([[c, -t], [t, c]])
    return _affine(images, np.array(matrices, float).reshape(len(images), 2, 2))


def scale(images: Images, rngs: Rngs, factor: float) -> Images:
    """Sampling the image at ``factor`` times each pixel's distance from the
    centre: the digit shrinks by 1 / factor about the centre."""
    return _affine(images, np.broadcast_to(np.eye(2) * factor, (len(images), 2, 2)).copy())


def translate(images: Images, rngs: Rngs, pixels: int) -> Images:
    """A shift by ``pixels`` along each axis, each direction's sign random:
    whatever leaves the grid is lost, zeros come in."""
    out = np.zeros_like(images)
    for i, (sign_col, sign_row) in enumerate(_signs(rngs, 2).astype(int)):
        shift_col, shift_row = -sign_col * pixels, -sign_row * pixels
        out[i] = ndimage.shift(images[i], (shift_row, shift_col), order=0, mode="constant", cval=0.0)
    return out


# -- lighting --------------------------------------------------------------

def brightness(images: Images, rngs: Rngs, amount: float) -> Images:
    """Every pixel plus ``amount``, clipped to 1. MNIST-C adds it to the
    value channel of HSV; for a grey image that channel is the grey level,
    so the two are the same."""
    return np.clip(images + amount, 0, 1)


def contrast(images: Images, rngs: Rngs, factor: float) -> Images:
    """Each image's pixels pulled toward their mean: (p - mean) x factor +
    mean."""
    means = images.mean(axis=(1, 2), keepdims=True)
    return np.clip((images - means) * factor + means, 0, 1)


def inversion(images: Images, rngs: Rngs, value: None) -> Images:
    """1 - p: white digits on black become black on white."""
    return 1 - images


def stripe(images: Images, rngs: Rngs, value: None) -> Images:
    """Columns 0 to 6 and 21 to 27 inverted, the middle 14 left."""
    out = images.copy()
    out[:, :, :7] = 1 - out[:, :, :7]
    out[:, :, 21:] = 1 - out[:, :, 21:]
    return out


def _diamond_square(rng: np.random.Generator, size: int, decay: float) -> np.ndarray:
    """A plasma fractal on a ``size`` x ``size`` torus (``size`` a power of
    two), scaled to [0, 1]: each new point is the mean of its 4 neighbours
    on the coarser grid plus noise whose range shrinks by ``decay`` each
    level (it starts at 100 x U(-100, 100), as MNIST-C's)."""
    grid = np.zeros((size, size))
    step, spread = size, 100.0
    while step >= 2:
        half = step // 2
        corners = grid[::step, ::step]
        centres = (corners + np.roll(corners, -1, 0) + np.roll(corners, -1, 1) + np.roll(np.roll(corners, -1, 0), -1, 1))
        grid[half::step, half::step] = centres / 4 + spread * rng.uniform(-spread, spread, centres.shape)
        centres = grid[half::step, half::step]
        # Points between two corners of a row: their two corners and the centres above and below.
        row_edges = corners + np.roll(corners, -1, 1) + centres + np.roll(centres, 1, 0)
        grid[::step, half::step] = row_edges / 4 + spread * rng.uniform(-spread, spread, corners.shape)
        col_edges = corners + np.roll(corners, -1, 0) + centres + np.roll(centres, 1, 1)
        grid[half::step, ::step] = col_edges / 4 + spread * rng.uniform(-spread, spread, corners.shape)
        step //= 2
        spread /= decay
    grid -= grid.min()
    return grid / grid.max()


FOG_MAP = 32


def fog(images: Images, rngs: Rngs, value: tuple[float, float]) -> Images:
    """A plasma fractal (diamond-square) added at ``strength``, then the image
    scaled so its brightest pixel stays as bright: (p + strength f) x max /
    (max + strength). MNIST-C draws its fractal on a 256 x 256 map and
    keeps the top-left 28 x 28 corner, scaled by the whole map's range; this
    draws a 32 x 32 map (the smallest power of two that holds the image), so
    the fog's full range shows inside every image: its clouds are coarser
    and vary more across one image than MNIST-C's, at the same strength."""
    strength, decay = value
    fractal = np.stack([_diamond_square(rng, FOG_MAP, decay)[:SIZE, :SIZE] for rng in rngs])
    brightest = images.max(axis=(1, 2), keepdims=True)
    return np.clip((images + strength * fractal) * brightest / (brightest + strength), 0, 1)


def spatter(images: Images, rngs: Rngs, value: tuple[float, float, float, float, float]) -> Images:
    """Mud: Gaussian noise (mean, spread) blurred by ``blur``, kept above
    ``threshold``; that mask blurred by ``mask_blur`` and kept where at least
    0.8 covers the image with grey 63/255 in proportion."""
    mean, spread, blur, threshold, mask_blur = value
    liquid = np.stack([rng.normal(mean, spread, images.shape[1:]) for rng in rngs])
    liquid = _gaussian(liquid, blur)
    mask = _gaussian((liquid > threshold).astype(float), mask_blur)
    mask[mask < 0.8] = 0
    return np.clip(images * (1 - mask) + 63 / 255 * mask, 0, 1)


# -- lines -----------------------------------------------------------------

def _line(col0: float, row0: float, col1: float, row1: float) -> np.ndarray:
    """MNIST-C's soft line from (col0, row0) to (col1, row1): a pixel's
    intensity falls with its vertical distance d to the line as 1 + log(1 -
    d / 2.3), clipped to [0, 1]; columns outside [floor(col0), ceil(col1))
    are blank, and so is a vertical line."""
    if col1 == col0:
        return np.zeros((SIZE, SIZE))
    cols = np.arange(SIZE, dtype=float)[None, :]
    rows = np.arange(SIZE, dtype=float)[:, None]
    distance = np.clip(np.abs(rows - (row0 + (row1 - row0) / (col1 - col0) * (cols - col0))), 0, 2.3 - 1e-10)
    line = np.clip(np.log(1 - distance / 2.3) + 1, 0, 1)
    line[:, :math.floor(col0)] = 0
    line[:, math.ceil(col1):] = 0
    return line


def dotted_line(images: Images, rngs: Rngs, value: None) -> Images:
    """A soft line across the image between two random rows, drawn only in
    columns 2-3, 6-7, ... (every other pair of columns)."""
    drawn = (np.arange(SIZE) // 2) % 2 == 1
    out = np.empty_like(images)
    for i, rng in enumerate(rngs):
        row0, row1 = rng.integers(0, SIZE - 1, size=2)
        out[i] = np.clip(images[i] + _line(0, row0, SIZE - 1, row1) * drawn, 0, 1)
    return out


def _zigzag_points(row0: int, rise: int) -> np.ndarray:
    """The corners of MNIST-C's zigzag from column 2 to 25 starting at
    ``row0`` and rising ``rise`` rows: teeth 2 pixels long and 2 high along
    the line, then the line's end."""
    half_period, height = 2.0, 2.0
    col0, col1 = 2, 25
    theta = math.atan(rise / (col1 - col0))
    length = (col1 - col0) / math.cos(theta)
    points = [(0.0, 0.0)]
    teeth = int((length - half_period) // (2 * half_period)) + 1
    for i in range(teeth):
        points.append(((2 * i + 1) * half_period, (-1) ** i * height))
    whole = 2 * half_period * (length // (2 * half_period))
    if length != whole:
        points.append((length, points[-1][1] / (2 * (length - whole))))
    along, across = np.array(points).T
    cols = along * math.cos(theta) - across * math.sin(theta) + col0
    rows = along * math.sin(theta) + across * math.cos(theta) + row0
    return np.stack([cols, rows], axis=1)


def zigzag(images: Images, rngs: Rngs, value: None) -> Images:
    """A zigzag of soft lines from column 2 to column 25, starting at a
    random row and rising or falling up to 5 rows."""
    out = np.empty_like(images)
    for i, rng in enumerate(rngs):
        row0 = int(rng.integers(0, SIZE - 1))
        rise = int(rng.integers(-5, 5))
        image = images[i].copy()
        points = _zigzag_points(row0, rise)
        for (c0, r0), (c1, r1) in zip(points[:-1], points[1:]):
            image = np.clip(image + _line(c0, r0, c1, r1), 0, 1)
        out[i] = image
    return out


# -- edges -------------------------------------------------------------------

def _suppressed(magnitude: np.ndarray, grad_rows: np.ndarray, grad_cols: np.ndarray) -> np.ndarray:
    """Pixels whose gradient magnitude is at least that of both neighbours
    along the gradient, each neighbour interpolated between the pixel on
    the gradient's major axis and the diagonal one toward its minor axis.
    The one-pixel border is never an edge."""
    n = len(magnitude)
    padded = np.pad(magnitude, ((0, 0), (1, 1), (1, 1)))
    index, rows, cols = np.meshgrid(np.arange(n), np.arange(SIZE), np.arange(SIZE), indexing="ij")
    rows_major = np.abs(grad_rows) >= np.abs(grad_cols)
    major = np.where(rows_major, grad_rows, grad_cols)
    minor = np.where(rows_major, grad_cols, grad_rows)
    with np.errstate(divide="ignore", invalid="ignore"):
        weight = np.abs(minor) / np.abs(major)
    step_major, step_minor = np.sign(major).astype(int), np.sign(minor).astype(int)
    d_row_axis = np.where(rows_major, step_major, 0)
    d_col_axis = np.where(rows_major, 0, step_major)
    d_row_diag = d_row_axis + np.where(rows_major, 0, step_minor)
    d_col_diag = d_col_axis + np.where(rows_major, step_minor, 0)
    keep = np.ones_like(magnitude, bool)
    for sign in (1, -1):
        axis = padded[index, rows + 1 + sign * d_row_axis, cols + 1 + sign * d_col_axis]
        diagonal = padded[index, rows + 1 + sign * d_row_diag, cols + 1 + sign * d_col_diag]
        keep &= weight * diagonal + (1 - weight) * axis <= magnitude
    keep[:, [0, -1], :] = False
    keep[:, :, [0, -1]] = False
    return keep


def _sobel(images: Images, axis: int) -> Images:
    """SciPy's ``sobel`` of each image along ``axis`` (1: rows, 2: columns):
    the difference along it, smoothed (1, 2, 1) along the image's other axis
    only (SciPy's own would smooth across the batch too)."""
    other = 3 - axis
    derivative = ndimage.correlate1d(images, [-1, 0, 1], axis=axis, mode="reflect")
    return ndimage.correlate1d(derivative, [1, 2, 1], axis=other, mode="reflect")


def canny_edges(images: Images, rngs: Rngs, value: None) -> Images:
    """Canny's edges as scikit-image computes them by default: a Gaussian of
    sigma 1 normalised for the zeros beyond the border, Sobel gradients,
    non-maximum suppression along the interpolated gradient, then
    hysteresis: edges are the suppressed pixels of magnitude at least 0.1
    connected (8 neighbours) to one of at least 0.2. White edges on black."""
    smoothed = ndimage.gaussian_filter(images, (0, 1, 1), mode="constant")
    smoothed /= ndimage.gaussian_filter(np.ones(images.shape[1:]), 1, mode="constant")[None] + np.finfo(float).eps
    grad_rows, grad_cols = _sobel(smoothed, 1), _sobel(smoothed, 2)
    magnitude = np.hypot(grad_rows, grad_cols)
    maxima = _suppressed(magnitude, grad_rows, grad_cols)
    weak, strong = maxima & (magnitude >= 0.1), maxima & (magnitude >= 0.2)
    connect = np.zeros((3, 3, 3), bool)
    connect[1] = True
    labels, count = ndimage.label(weak, structure=connect)
    keep = np.zeros(count + 1, bool)
    keep[np.unique(labels[strong])] = True
    keep[0] = False
    return keep[labels].astype(float)


CORRUPTIONS: dict[str, Corruption] = {c.name: c for c in (
    Corruption("shot_noise", shot_noise, (60, 25, 12, 5, 3), 5, "Poisson noise"),
    Corruption("impulse_noise", impulse_noise, (0.03, 0.06, 0.09, 0.17, 0.27), 4, "salt and pepper"),
    Corruption("glass_blur", glass_blur, ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)), 1,
               "blur, local pixel shuffle, blur"),
    Corruption("motion_blur", motion_blur, ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15)), 1, "blur along a line"),
    Corruption("shear", shear, (0.2, 0.4, 0.6, 0.8, 1.0), 2, "shear about the centre"),
    Corruption("scale", scale, (1 / 0.9, 1 / 0.8, 1 / 0.7, 1 / 0.6, 1 / 0.5), 3, "shrink about the centre"),
    Corruption("rotate", rotate, (0.2, 0.4, 0.6, 0.8, 1.0), 2, "rotation about the centre"),
    Corruption("translate", translate, (1, 2, 3, 4, 5), 3, "shift along both axes"),
    Corruption("brightness", brightness, (0.1, 0.2, 0.3, 0.4, 0.5), 5, "every pixel brighter"),
    Corruption("stripe", stripe, summary="outer columns inverted"),
    Corruption("fog", fog, ((1.5, 2), (2.0, 2), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4)), 5, "fractal haze"),
    Corruption("spatter", spatter, ((0.65, 0.3, 4, 0.69, 0.6), (0.65, 0.3, 3, 0.68, 0.6), (0.65, 0.3, 2, 0.68, 0.5),
                                    (0.65, 0.3, 1, 0.65, 1.5), (0.67, 0.4, 1, 0.65, 1.5)), 4, "mud blots"),
    Corruption("dotted_line", dotted_line, summary="a dotted line across"),
    Corruption("zigzag", zigzag, summary="a zigzag line across"),
    Corruption("canny_edges", canny_edges, summary="edges only"),
    Corruption("contrast", contrast, (0.4, 0.3, 0.2, 0.1, 0.05), 4, "contrast reduced"),
    Corruption("inversion", inversion, summary="grey levels inverted"),
)}


def image_rngs(seed: int, name: str, indices: Sequence[int]) -> list[np.random.Generator]:
    """One generator per image, seeded by (seed, the corruption's name, the
    image's index in the test split)."""
    key = zlib.crc32(name.encode())
    return [np.random.default_rng([seed, key, int(index)]) for index in indices]


def corrupt(images: np.ndarray, name: str, level: int | None, seed: int, first_index: int = 0) -> np.ndarray:
    """``images`` (uint8, n x 28 x 28, the test split from image
    ``first_index`` on) under the named corruption at ``level`` (None for a
    corruption without levels), as uint8."""
    corruption = CORRUPTIONS[name]
    if images.dtype != np.uint8 or images.shape[1:] != (SIZE, SIZE):
        raise StudyError(f"{name}: expected uint8 images of {SIZE}x{SIZE}, got {images.dtype} {images.shape[1:]}")
    rngs = image_rngs(seed, name, range(first_index, first_index + len(images)))
    out = corruption.apply(images.astype(float) / 255, rngs, corruption.value(level))
    return np.rint(np.clip(out, 0, 1) * 255).astype(np.uint8)

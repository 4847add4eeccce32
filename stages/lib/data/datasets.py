"""The study's datasets: one registry of each dataset's four IDX files, their
sizes and checksums, its classes and where its verified copy is shipped, and
how to read the files into arrays. Every stage that needs data loads it
here. Every dataset has MNIST's shapes (28x28 grey images, ten classes), so
the study's networks run on each unchanged."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stages.lib.common import StudyError


@dataclass(frozen=True)
class IdxFile:
    """One dataset file: its name once decompressed, and the SHA-256 and size of
    those decompressed bytes (the same whichever mirror or compression served
    it)."""

    name: str
    sha256: str
    size_bytes: int

    @property
    def archive(self) -> str:
        return f"{self.name}.gz"


MNIST_FILES: tuple[IdxFile, ...] = (
    IdxFile(
        "train-images-idx3-ubyte",
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        47040016,
    ),
    IdxFile(
        "train-labels-idx1-ubyte",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        60008,
    ),
    IdxFile(
        "t10k-images-idx3-ubyte",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        7840016,
    ),
    IdxFile(
        "t10k-labels-idx1-ubyte",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        10008,
    ),
)

FASHION_MNIST_FILES: tuple[IdxFile, ...] = (
    IdxFile(
        "train-images-idx3-ubyte",
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        47040016,
    ),
    IdxFile(
        "train-labels-idx1-ubyte",
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        60008,
    ),
    IdxFile(
        "t10k-images-idx3-ubyte",
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        7840016,
    ),
    IdxFile(
        "t10k-labels-idx1-ubyte",
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        10008,
    ),
)

SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10


@dataclass(frozen=True)
class Dataset:
    """One dataset of the study: its name in params and folder names, its
    name in prose, its files, its classes in label order, and the folder of
    the verified copy shipped in this repository."""

    name: str
    title: str
    files: tuple[IdxFile, ...]
    class_names: tuple[str, ...]
    shipped: str

    @property
    def train_images(self) -> int:
        """The images of its training split: its label file's size less the
        8-byte IDX header."""
        labels = next(file for file in self.files if file.name == SPLIT_FILES["train"][1])
        return labels.size_bytes - 8


DATASETS: dict[str, Dataset] = {
    "mnist": Dataset("mnist", "MNIST", MNIST_FILES, tuple(str(digit) for digit in range(NUM_CLASSES)),
                     "data/mnist-shipped"),
    "fashion_mnist": Dataset(
        "fashion_mnist", "Fashion-MNIST", FASHION_MNIST_FILES,
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        "data/fashion_mnist-shipped",
    ),
}


def dataset(name: str) -> Dataset:
    """The registered dataset called ``name``; any other name is a one-line
    error listing the known ones."""
    try:
        return DATASETS[name]
    except (KeyError, TypeError):
        raise StudyError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}") from None

# IDX type codes (third magic byte) and the big-endian dtypes they stand for.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_CODES = {dtype.newbyteorder("="): code for code, dtype in _IDX_DTYPES.items()}


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def encode_idx(array: np.ndarray) -> bytes:
    """The IDX encoding of ``array``: magic (two zero bytes, type code,
    number of dimensions), big-endian int32 dimensions, big-endian data."""
    dtype = array.dtype.newbyteorder("=")
    if dtype not in _IDX_CODES:
        raise ValueError(f"IDX cannot store dtype {array.dtype}")
    header = bytes([0, 0, _IDX_CODES[dtype], array.ndim])
    header += np.asarray(array.shape, dtype=">i4").tobytes()
    return header + np.ascontiguousarray(array, dtype=_IDX_DTYPES[_IDX_CODES[dtype]]).tobytes()


def read_idx(path: str | Path) -> np.ndarray:
    """Decode an IDX file, checking its magic number and that the data is
    exactly as long as its dimensions say."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise StudyError(f"{path} is missing: run `dvc repro download`") from None
    if len(raw) < 4:
        raise StudyError(f"{path} is truncated: {len(raw)} bytes, shorter than an IDX header")
    zero1, zero2, code, ndim = raw[:4]
    if zero1 or zero2 or code not in _IDX_DTYPES or ndim == 0:
        raise StudyError(f"{path} is not an IDX file: bad magic number 0x{raw[:4].hex()}")
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise StudyError(f"{path} is truncated inside its header")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[code]
    expected = int(np.prod(shape)) * dtype.itemsize
    found = len(raw) - header_len
    if found < expected:
        raise StudyError(f"{path} is truncated: header announces {expected} data bytes, found {found}")
    if found > expected:
        raise StudyError(f"{path} is corrupt: {found - expected} bytes beyond what its header announces")
    data = np.frombuffer(raw, dtype=dtype, offset=header_len).reshape(shape)
    return data.astype(dtype.newbyteorder("="), copy=False)


def load_split(
    data_dir: str | Path, split: str, limit: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Images (uint8, N x 28 x 28) and labels (uint8, N) of the ``train`` or
    ``test`` split, or their first ``limit`` examples."""
    images_name, labels_name = SPLIT_FILES[split]
    images_path = Path(data_dir) / images_name
    labels_path = Path(data_dir) / labels_name
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
        raise StudyError(
            f"{images_path} holds {images.dtype} of shape {images.shape}, "
            f"not uint8 images of {IMAGE_SHAPE[0]}x{IMAGE_SHAPE[1]}"
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise StudyError(f"{labels_path} holds {labels.dtype} of shape {labels.shape}, not uint8 labels")
    if len(images) != len(labels):
        raise StudyError(
            f"{images_path} and {labels_path} disagree: {len(images)} images but {len(labels)} labels"
        )
    if labels.size and labels.max() >= NUM_CLASSES:
        raise StudyError(f"{labels_path} holds label {labels.max()}, outside 0-{NUM_CLASSES - 1}")
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return images, labels


def scale_images(images: np.ndarray, input_range: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """uint8 pixels mapped linearly onto ``input_range``, as float32 with a
    trailing channel axis (N x 28 x 28 x 1)."""
    low, high = input_range
    scaled = images.astype(np.float32) * np.float32((high - low) / 255.0) + np.float32(low)
    return scaled[..., np.newaxis]


def validation_indices(images: int, count: int, seed: int) -> np.ndarray:
    """The ``count`` held-out validation images among ``images`` training
    images: drawn by ``seed`` without replacement, in increasing order. The
    same for every run, variant and seed of a study, so that every network
    is chosen on the same images."""
    if not 0 < count < images:
        raise StudyError(f"data.validation_images is {count}, not fewer than the {images} training images the runs "
                         "use: nothing would be left to train on")
    return np.sort(np.random.default_rng(seed).choice(images, count, replace=False))


def load_training(data_dir: str | Path, limit: int | None, validation_images: int, validation_seed: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The training split (its first ``limit`` images) divided into the
    images a network trains on and the held-out validation images
    (:func:`validation_indices`): ``(x_fit, y_fit, x_validation,
    y_validation)``, each in the split's order."""
    x, y = load_split(data_dir, "train", limit)
    held = np.zeros(len(x), dtype=bool)
    held[validation_indices(len(x), validation_images, validation_seed)] = True
    return x[~held], y[~held], x[held], y[held]

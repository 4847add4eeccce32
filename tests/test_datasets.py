import gzip

import numpy as np
import pytest

from conftest import REPO
from stages.lib.common import StudyError
from stages.lib.data.datasets import DATASETS, MNIST_FILES, dataset, encode_idx, load_split, read_idx, scale_images


@pytest.mark.parametrize(
    "array",
    [
        np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28),
        np.array([5, 0, 4, 1, 9], dtype=np.uint8),
        np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4),
        np.array([[1, -2], [300000, -7]], dtype=np.int32),
    ],
)
def test_idx_round_trip(tmp_path, array):
    path = tmp_path / "a.idx"
    path.write_bytes(encode_idx(array))
    back = read_idx(path)
    assert back.dtype == array.dtype.newbyteorder("=")
    np.testing.assert_array_equal(back, array)


def test_idx_header_is_big_endian(tmp_path):
    raw = encode_idx(np.zeros((3, 28, 28), dtype=np.uint8))
    assert raw[:4] == bytes([0, 0, 0x08, 3])
    assert raw[4:16] == (3).to_bytes(4, "big") + (28).to_bytes(4, "big") + (28).to_bytes(4, "big")
    assert len(raw) == 16 + 3 * 28 * 28


def test_bad_magic_names_the_file(tmp_path):
    path = tmp_path / "images"
    path.write_bytes(b"\x00\x01\x08\x01" + (3).to_bytes(4, "big") + b"abc")
    with pytest.raises(StudyError, match=r"images is not an IDX file: bad magic number 0x00010801"):
        read_idx(path)


def test_truncated_data_names_the_file(tmp_path):
    path = tmp_path / "images"
    path.write_bytes(encode_idx(np.zeros((4, 28, 28), dtype=np.uint8))[:-10])
    with pytest.raises(StudyError, match=r"images is truncated: header announces 3136 data bytes, found 3126"):
        read_idx(path)


def test_truncated_header_names_the_file(tmp_path):
    path = tmp_path / "labels"
    path.write_bytes(bytes([0, 0, 8, 3, 0, 0]))
    with pytest.raises(StudyError, match=r"labels is truncated inside its header"):
        read_idx(path)


def test_trailing_bytes_are_corrupt(tmp_path):
    path = tmp_path / "labels"
    path.write_bytes(encode_idx(np.zeros(4, dtype=np.uint8)) + b"xx")
    with pytest.raises(StudyError, match=r"labels is corrupt: 2 bytes beyond"):
        read_idx(path)


def test_missing_file_says_how_to_fix(tmp_path):
    with pytest.raises(StudyError, match=r"missing: run `dvc repro download`"):
        read_idx(tmp_path / "nothing")


def _write_split(folder, n_images, n_labels, label_value=1):
    (folder / "t10k-images-idx3-ubyte").write_bytes(encode_idx(np.zeros((n_images, 28, 28), np.uint8)))
    (folder / "t10k-labels-idx1-ubyte").write_bytes(encode_idx(np.full(n_labels, label_value, np.uint8)))


def test_count_mismatch_between_images_and_labels(tmp_path):
    _write_split(tmp_path, 5, 4)
    with pytest.raises(StudyError, match=r"disagree: 5 images but 4 labels"):
        load_split(tmp_path, "test")


def test_label_out_of_range(tmp_path):
    _write_split(tmp_path, 3, 3, label_value=10)
    with pytest.raises(StudyError, match=r"label 10, outside 0-9"):
        load_split(tmp_path, "test")


def test_wrong_image_shape(tmp_path):
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(encode_idx(np.zeros((2, 27, 28), np.uint8)))
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(encode_idx(np.zeros(2, np.uint8)))
    with pytest.raises(StudyError, match=r"not uint8 images of 28x28"):
        load_split(tmp_path, "test")


def test_limit_takes_a_prefix(tmp_path):
    images = np.arange(6 * 28 * 28, dtype=np.uint64).reshape(6, 28, 28).astype(np.uint8)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(encode_idx(images))
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(encode_idx(np.arange(6, dtype=np.uint8)))
    x, y = load_split(tmp_path, "test", limit=4)
    np.testing.assert_array_equal(x, images[:4])
    np.testing.assert_array_equal(y, [0, 1, 2, 3])


def test_scale_images_maps_onto_the_range():
    pixels = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)
    unit = scale_images(pixels)
    assert unit.shape == (1, 2, 2, 1) and unit.dtype == np.float32
    np.testing.assert_allclose(unit[0, :, :, 0], [[0.0, 1.0], [0.2, 0.4]], rtol=1e-6)
    signed = scale_images(pixels, (-1.0, 1.0))
    np.testing.assert_allclose(signed[0, :, :, 0], [[-1.0, 1.0], [-0.6, -0.2]], rtol=1e-6)


def test_shipped_copy_verifies_and_decodes(tmp_path):
    from stages.download import download

    served = download(["data/mnist-shipped"], tmp_path / "mnist")
    assert set(served) == {spec.name for spec in MNIST_FILES}
    for spec in MNIST_FILES:
        assert (tmp_path / "mnist" / spec.name).stat().st_size == spec.size_bytes
    x_train, y_train = load_split(tmp_path / "mnist", "train")
    x_test, y_test = load_split(tmp_path / "mnist", "test")
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert np.bincount(y_train).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert round(float(x_train.mean()), 3) == 33.318
    assert round(float(x_train.std()), 3) == 78.567


def test_shipped_archives_are_gzip_of_the_real_files():
    for spec in MNIST_FILES:
        with gzip.open(REPO / "data" / "mnist-shipped" / spec.archive, "rb") as fh:
            assert len(fh.read()) == spec.size_bytes


def test_shipped_fashion_mnist_verifies_and_decodes_to_its_readme_s_figures(tmp_path):
    """The sanity figures of ../shared/data/fashion-mnist/README.md."""
    from stages.download import download

    spec = dataset("fashion_mnist")
    served = download([spec.shipped], tmp_path / "fashion", files=spec.files)
    assert served == {f.name: spec.shipped for f in spec.files}
    x_train, y_train = load_split(tmp_path / "fashion", "train")
    x_test, y_test = load_split(tmp_path / "fashion", "test")
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert np.bincount(y_train).tolist() == [6000] * 10 and np.bincount(y_test).tolist() == [1000] * 10
    assert y_train[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert y_test[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
    assert round(float(x_train.mean()), 3) == 72.940
    assert round(float(x_train.std()), 3) == 90.021


def test_registry_names_each_dataset_s_classes_and_shipped_copy():
    assert list(DATASETS) == ["mnist", "fashion_mnist"]
    assert dataset("mnist").class_names == tuple("0123456789")
    assert dataset("fashion_mnist").class_names[0] == "T-shirt/top"
    assert dataset("fashion_mnist").class_names[9] == "Ankle boot"
    for spec in DATASETS.values():
        assert len(spec.class_names) == 10 and spec.shipped == f"data/{spec.name}-shipped"
        assert (REPO / spec.shipped / "NOTICE").is_file()
    # the two datasets share file names, never contents
    assert not {f.sha256 for f in DATASETS["mnist"].files} & {f.sha256 for f in DATASETS["fashion_mnist"].files}


def test_an_unknown_dataset_is_one_line():
    with pytest.raises(StudyError, match=r"^unknown dataset 'emnist'; known datasets: mnist, fashion_mnist$"):
        dataset("emnist")

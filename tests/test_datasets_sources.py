"""Tests of the data sources of skscale.datasets: the IDX reader under faults,
Fashion-MNIST (Debian's package, data_home, OpenML), the public look-ups, the shrink of
MNIST-Scale's splits and make_dynamic_split."""

import gzip
import os
import warnings

import numpy as np
import pytest

from skscale.datasets import (
    DEBIAN_FASHION_MNIST,
    FASHION_MNIST_CLASSES,
    DatasetSizeWarning,
    DynamicScaleMNIST,
    _idx,
    data_sources,
    find_idx_files,
    get_data_home,
    load_fashion_mnist,
    load_mnist,
    make_dynamic_split,
    make_mnist_scale,
    read_idx,
    scale_grid,
)

from .test_datasets import IMAGES_MAGIC, LABELS_MAGIC, write_idx, write_mnist_idx


@pytest.fixture
def no_debian(monkeypatch, tmp_path):
    """Point the Debian folder at an empty place, whatever this machine has installed."""
    monkeypatch.setattr(_idx, "DEBIAN_FASHION_MNIST", tmp_path / "no-debian-package")


@pytest.fixture(scope="module")
def mnist():
    return load_mnist(source="bundled")


def gzipped_content(path):
    return gzip.compress(path.read_bytes())


# --------------------------------------------------------------------------- IDX faults


def _truncate_gzip(path):
    path.write_bytes(gzipped_content(path)[:-30])


def _corrupt_gzip(path):
    content = bytearray(gzipped_content(path))
    content[20:40] = bytes(255 - byte for byte in content[20:40])
    path.write_bytes(bytes(content))


def _empty_images(path):
    write_idx(path, np.zeros((0, 28, 28), dtype=np.uint8), IMAGES_MAGIC)


def _label_200(path):
    labels = np.arange(12, dtype=np.uint8) % 10
    labels[3] = 200
    write_idx(path, labels, LABELS_MAGIC)


def _wrong_magic(path):
    write_idx(path, np.zeros(12, dtype=np.uint8), 2050)


def _fewer_labels(path):
    write_idx(path, np.zeros(11, dtype=np.uint8), LABELS_MAGIC)


@pytest.mark.parametrize(
    "file, damage, match",
    [
        ("train-images-idx3-ubyte", _truncate_gzip, "not a valid gzip file"),
        ("t10k-labels-idx1-ubyte", _corrupt_gzip, "not a valid gzip file"),
        ("train-images-idx3-ubyte", _empty_images, r"holds no images.*\(0, 28, 28\)"),
        ("train-labels-idx1-ubyte", _label_200, r"labels outside 0\.\.9, e\.g\. \[200\]"),
        ("t10k-labels-idx1-ubyte", _wrong_magic, "magic number is 0x00000802"),
        ("train-labels-idx1-ubyte", _fewer_labels, "holds 12 images but .* holds 11 labels"),
    ],
)
def test_idx_faults_raise_errors_naming_the_file(tmp_path, file, damage, match):
    write_mnist_idx(tmp_path, np.random.default_rng(0))
    path = tmp_path / file
    damage(path)
    with pytest.raises(ValueError, match=match) as error:
        load_mnist(source="idx", data_home=tmp_path)
    assert repr(os.fspath(path)) in str(error.value)


def test_read_idx_reads_both_kinds(tmp_path):
    images = np.random.default_rng(1).integers(0, 256, size=(3, 5, 7), dtype=np.uint8)
    write_idx(tmp_path / "images", images, IMAGES_MAGIC, compress=True)
    np.testing.assert_array_equal(read_idx(tmp_path / "images", "images"), images)
    with pytest.raises(ValueError, match="not an IDX labels file"):
        read_idx(tmp_path / "images", "labels")


# --------------------------------------------------------------------------- look-ups


def test_get_data_home(monkeypatch, tmp_path):
    monkeypatch.setenv("SCIKIT_LEARN_DATA", os.fspath(tmp_path / "env"))
    assert get_data_home() == tmp_path / "env"
    assert get_data_home(tmp_path / "given") == tmp_path / "given"
    monkeypatch.setenv("HOME", os.fspath(tmp_path))
    assert get_data_home("~/data") == tmp_path / "data"
    assert not (tmp_path / "env").exists()  # nothing is created


def test_find_idx_files(tmp_path):
    assert find_idx_files("mnist", tmp_path) is None
    write_mnist_idx(tmp_path / "MNIST" / "raw", np.random.default_rng(2), suffix=".gz")
    paths = find_idx_files("mnist", tmp_path)
    assert paths["test", "labels"] == tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz"
    assert set(paths) == {(split, kind) for split in ("train", "test") for kind in ("images", "labels")}
    assert set(find_idx_files("mnist", tmp_path, subset="train")) == {
        ("train", "images"),
        ("train", "labels"),
    }
    assert find_idx_files("fashion", tmp_path) is None
    with pytest.raises(ValueError, match="dataset must be one of 'mnist', 'fashion', got 'cifar'"):
        find_idx_files("cifar", tmp_path)


def test_data_sources(monkeypatch, tmp_path, no_debian):
    sources = data_sources(tmp_path)
    assert sources.data_home == tmp_path
    assert sources.mnist_idx is None and sources.fashion_idx is None and sources.fashion_debian is None
    assert sources.mnist_auto == "bundled" and sources.fashion_auto == "openml"
    assert sources.bundled.name == "mnist_5k.csv.gz" and sources.bundled_error is None
    write_mnist_idx(tmp_path, np.random.default_rng(3))
    write_mnist_idx(tmp_path / "fashion-mnist", np.random.default_rng(3))
    sources = data_sources(tmp_path)
    assert sources.mnist_auto == "idx" and sources.mnist_idx["train", "images"].parent == tmp_path
    assert sources.fashion_auto == "idx"
    write_mnist_idx(tmp_path / "debian", np.random.default_rng(3))
    monkeypatch.setattr(_idx, "DEBIAN_FASHION_MNIST", tmp_path / "debian")
    assert data_sources(tmp_path).fashion_auto == "debian"


# --------------------------------------------------------------------------- Fashion-MNIST


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("folder", ["fashion-mnist", "FashionMNIST/raw"])
def test_fashion_from_data_home(tmp_path, no_debian, suffix, folder):
    arrays = write_mnist_idx(tmp_path / folder, np.random.default_rng(4), suffix=suffix)
    for source in ("auto", "idx"):
        fashion = load_fashion_mnist(data_home=tmp_path, source=source)
        assert fashion.source == "idx" and fashion.location == os.fspath(tmp_path / folder)
        assert fashion.data.shape == (17, 28, 28) and fashion.data.dtype == np.float32
        np.testing.assert_array_equal(fashion.data[:12], arrays["train"][0] / np.float32(255))
        assert fashion.target.dtype == np.int64
        assert list(fashion.target_names) == list(FASHION_MNIST_CLASSES)
        assert "Fashion-MNIST" in fashion.DESCR and "Trouser: 3" in fashion.DESCR
    _, y = load_fashion_mnist(data_home=tmp_path, subset="test", return_X_y=True)
    np.testing.assert_array_equal(y, arrays["t10k"][1])


def test_fashion_is_not_read_from_mnist_files(tmp_path, no_debian):
    write_mnist_idx(tmp_path, np.random.default_rng(5))  # MNIST's files in data_home itself
    with pytest.raises(FileNotFoundError, match="fashion-mnist.*apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(data_home=tmp_path, source="idx")


def test_fashion_debian_folder_comes_first(monkeypatch, tmp_path):
    debian = write_mnist_idx(tmp_path / "debian", np.random.default_rng(6), n_train=15, suffix=".gz")
    write_mnist_idx(tmp_path / "home" / "fashion-mnist", np.random.default_rng(7))
    monkeypatch.setattr(_idx, "DEBIAN_FASHION_MNIST", tmp_path / "debian")
    fashion = load_fashion_mnist(data_home=tmp_path / "home")
    assert fashion.source == "debian" and len(fashion.target) == 20
    np.testing.assert_array_equal(fashion.data[15:], debian["t10k"][0] / np.float32(255))
    assert load_fashion_mnist(data_home=tmp_path / "home", source="idx").source == "idx"
    monkeypatch.setattr(_idx, "DEBIAN_FASHION_MNIST", tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_fashion_mnist(source="debian")


def test_fashion_openml_fallback(fake_fetch_openml, tmp_path, no_debian):
    data = np.random.default_rng(8).integers(0, 256, size=(70000, 784)).astype(np.float64)
    target = np.array([str(i % 10) for i in range(70000)], dtype=object)
    calls = fake_fetch_openml(data, target)
    fashion = load_fashion_mnist(data_home=tmp_path, subset="test")
    assert calls[0][0] == "Fashion-MNIST" and calls[0][1]["data_home"] == tmp_path
    assert fashion.source == "openml" and fashion.data.shape == (10000, 28, 28)
    np.testing.assert_allclose(fashion.data[0], data[60000].reshape(28, 28) / 255, rtol=1e-6)
    assert load_fashion_mnist(data_home=tmp_path, source="openml", subset="train").data.shape[0] == 60000

    fake_fetch_openml()  # OpenML unreachable from now on
    with pytest.raises(FileNotFoundError, match="could not reach OpenML.*no network.*apt-get install"):
        load_fashion_mnist(data_home=tmp_path)
    with pytest.raises(ConnectionError, match="Fashion-MNIST"):
        load_fashion_mnist(data_home=tmp_path, source="openml")


@pytest.mark.parametrize(
    "kwargs, match",
    [({"source": "bundled"}, "source"), ({"subset": "val"}, "subset"), ({"return_X_y": 1}, "return_X_y")],
)
def test_fashion_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_fashion_mnist(**kwargs)


def test_fashion_faults_name_the_file(monkeypatch, tmp_path):
    write_mnist_idx(tmp_path / "debian", np.random.default_rng(9))
    monkeypatch.setattr(_idx, "DEBIAN_FASHION_MNIST", tmp_path / "debian")
    _truncate_gzip(tmp_path / "debian" / "t10k-images-idx3-ubyte")
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte' is not a valid gzip file"):
        load_fashion_mnist()


def test_make_mnist_scale_with_fashion(tmp_path, no_debian):
    write_mnist_idx(tmp_path / "fashion-mnist", np.random.default_rng(10), n_train=60, n_test=40)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 90 of the 100 images: no shrink, no warning
        data = make_mnist_scale(
            n_train=40, n_val=20, n_test=30, dataset="fashion", data_home=tmp_path, scale_range=(0.5, 0.5)
        )
    assert data.dataset == "fashion" and data.source == "idx" and not data.reduced
    assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (40, 20, 30)
    assert "Images of Fashion-MNIST (source: idx)" in data.DESCR
    assert np.all(data.scales_train == 0.5)
    # Halved about the centre: the outer quarter of every image is empty.
    assert data.X_train[:, :6].max() == 0 and data.X_train[:, 7:21, 7:21].max() > 0
    with pytest.raises(ValueError, match="dataset must be one of 'mnist', 'fashion', got 'kmnist'"):
        make_mnist_scale(dataset="kmnist")


def test_dynamic_scale_mnist_with_fashion_images():
    # Articles fill their 28x28 image: at scale 2 they fill a 56 canvas, beyond it they are cut.
    images = np.ones((4, 28, 28), dtype=np.float32)
    labels = np.arange(4)
    data = DynamicScaleMNIST.at_scales(
        images, labels, [2.0], canvas_size=56, normalize=False, object_fraction=1.0
    )
    X, _, _ = data.to_arrays(add_channel_axis=False)
    assert X[:, 2:-2, 2:-2].min() > 0.99
    with pytest.raises(ValueError, match=r"too large for canvas_size=56.*about 28\*s pixels"):
        DynamicScaleMNIST(images, labels, canvas_size=56, scale_range=(1.0, 2.2), object_fraction=1.0)
    # The MNIST default (digits in a 20x20 box) would let 2.2 through.
    DynamicScaleMNIST(images, labels, canvas_size=56, scale_range=(1.0, 2.2), normalize=False)
    with pytest.raises(ValueError, match="object_fraction"):
        DynamicScaleMNIST(images, labels, canvas_size=56, scale_range=(1.0, 2.0), object_fraction=1.5)


@pytest.mark.skipif(
    not DEBIAN_FASHION_MNIST.is_dir(), reason="Debian's dataset-fashion-mnist is not installed"
)
def test_debian_package_full_protocol():
    fashion = load_fashion_mnist(source="debian")
    assert fashion.data.shape == (70000, 28, 28) and fashion.location == os.fspath(DEBIAN_FASHION_MNIST)
    np.testing.assert_array_equal(np.bincount(fashion.target), np.full(10, 7000))
    assert fashion.data.max() == 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the full 10,000 / 2,000 / 50,000 protocol, no shrink
        data = make_mnist_scale(dataset="fashion", source="debian")
    assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (10000, 2000, 50000)
    np.testing.assert_array_equal(np.bincount(data.y_val), np.full(10, 200))


# --------------------------------------------------------------------------- MNIST-Scale shrink


def test_mnist_scale_shrink_keeps_every_split_stratifiable():
    with pytest.warns(DatasetSizeWarning, match="4965/17/17"):
        data = make_mnist_scale(
            n_train=60000, n_val=100, n_test=100, source="bundled", scale_range=(1.0, 1.0)
        )
    assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (4965, 17, 17)
    # Every class in every split (the bundled pool is balanced).
    for y in (data.y_train, data.y_val, data.y_test):
        counts = np.bincount(y, minlength=10)
        assert counts.min() >= 1 and counts.max() - counts.min() <= 1
    # A split squeezed by a huge neighbour keeps its ten images.
    with pytest.warns(DatasetSizeWarning, match="4979/10/10"):
        data = make_mnist_scale(n_train=10**6, n_val=10, n_test=20, source="bundled", scale_range=(1.0, 1.0))


def test_mnist_scale_refuses_splits_below_the_class_count(tmp_path):
    with pytest.raises(ValueError, match="n_val must be an integer >= 10, got 5"):
        make_mnist_scale(n_val=5, source="bundled")
    write_mnist_idx(tmp_path, np.random.default_rng(11), n_train=15, n_test=10)
    with pytest.raises(ValueError, match="holds 25 images, too few for 3 stratified splits"):
        make_mnist_scale(source="idx", data_home=tmp_path)


# --------------------------------------------------------------------------- make_dynamic_split


def test_make_dynamic_split(mnist):
    grid = scale_grid(0, 1, per_octave=2)
    kwargs = {"n_train": 300, "n_test": 200, "scale_range": (0.5, 2.5), "canvas_size": 56, "random_state": 3}
    split = make_dynamic_split(mnist.data, mnist.target, grid=grid, n_grid=25, **kwargs)
    assert not set(split.train_index) & set(split.test_index)
    assert len(split.train_index) == 300 and len(split.test_index) == 200
    np.testing.assert_array_equal(split.y_train, mnist.target[split.train_index])
    assert split.X_train.shape == (300, 1, 56, 56) and split.X_test.shape == (200, 1, 56, 56)
    assert split.scales_train.min() >= 1.0 and (split.scales_test < 1.0).any()  # min_scale on training only
    # The training statistics normalise all three sets.
    assert abs(split.X_train.mean()) < 0.05 and abs(split.X_train.std() - 1) < 0.05
    assert (split.test.mean, split.test.std) == (split.grid.mean, split.grid.std) == (split.mean, split.std)
    assert (split.train.mean, split.train.std) == (split.mean, split.std)
    np.testing.assert_array_equal(split.scales_grid, np.repeat(grid, 25))
    np.testing.assert_array_equal(split.y_grid, np.tile(mnist.target[split.test_index[:25]], 2))
    again = make_dynamic_split(mnist.data, mnist.target, as_arrays=False, **kwargs)
    np.testing.assert_array_equal(again.test.scales, split.scales_test)
    assert again.grid is None and "X_train" not in again
    other = make_dynamic_split(mnist.data, mnist.target, as_arrays=False, **{**kwargs, "random_state": 4})
    assert not np.array_equal(other.train_index, split.train_index)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_train": 4000, "n_test": 1001}, "n_train \\+ n_test = 4000 \\+ 1001 exceeds the 5000"),
        ({"n_train": 0}, "n_train"),
        ({"grid": [1.0, 2.0], "n_grid": 101}, "n_grid must be an integer in \\[1, 100\\] or None, got 101"),
        ({"as_arrays": "yes"}, "as_arrays"),
        ({"scale_range": (2.0, 1.0)}, "scale_range"),
    ],
)
def test_make_dynamic_split_bad_arguments(mnist, kwargs, match):
    arguments = {"n_train": 100, "n_test": 100, "scale_range": (1.0, 2.0), "canvas_size": 56, **kwargs}
    with pytest.raises(ValueError, match=match):
        make_dynamic_split(mnist.data, mnist.target, **arguments)

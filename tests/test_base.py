"""skscale._base: what every estimator adds to skorch (shown on the classifier)."""

import os
import warnings

import numpy as np
import pytest
import sklearn
import torch

from skscale import ScaleEquivariantClassifier
from skscale.nn.batchnorm import batchnorm_layers, recalibrate_batchnorm
from skscale.nn.memory import LargeKernelWarning

from .conftest import SMALL, Pairs, blobs_images

FAST = {**SMALL, "max_epochs": 2, "batch_size": 16}


def rgb_blobs(n=48, size=16):
    """Channels-last RGB images: the blob of class 1 is red, of class 0 blue."""
    gray, y = blobs_images(n=n, size=size)
    images = np.zeros((n, size, size, 3), dtype=np.float32)
    images[y == 1, :, :, 0] = gray[y == 1]
    images[y == 0, :, :, 2] = gray[y == 0]
    return images, y


def test_channels_last_rgb_images_train_on_their_three_channels():
    X, y = rgb_blobs()
    clf = ScaleEquivariantClassifier(**FAST).fit(X, y)
    assert clf.input_shape_ == (3, 16, 16) and clf.image_layout_ == "channels_last"
    assert clf.score(X, y) > 0.9  # the colour alone separates the classes
    first = np.ascontiguousarray(X.transpose(0, 3, 1, 2))
    stated = ScaleEquivariantClassifier(**FAST, image_layout="channels_first").fit(first, y)
    np.testing.assert_allclose(stated.predict_proba(first), clf.predict_proba(X), rtol=1e-5, atol=1e-6)
    # The training images in the other layout: the error says so, in both directions.
    for fitted, images, given, trained, flip in (
        (clf, first, "first", "last", r"\(0, 2, 3, 1\)"),
        (stated, X, "last", "first", r"\(0, 3, 1, 2\)"),
    ):
        message = f"holds its images channels-{given}, the training images were channels-{trained}"
        with pytest.raises(ValueError, match=rf"{message}.*X.transpose{flip}"):
            fitted.predict(images)
        with pytest.raises(ValueError, match=rf"{message}.*X.transpose{flip}"):
            fitted.partial_fit(images, y)  # more training, read as the first


def test_flattened_rows_without_image_shape():
    X, y = blobs_images(n=32)
    clf = ScaleEquivariantClassifier(**FAST).fit(X.reshape(32, -1), y)
    assert clf.input_shape_ == (1, 12, 12) and clf.image_layout_ == "flattened"
    with pytest.raises(ValueError, match="143 features per row, which is not a square.*image_shape"):
        ScaleEquivariantClassifier(**FAST).fit(X.reshape(32, -1)[:, :143], y)


def batchnorm_statistics(clf):
    return [layer.running_mean.clone() for layer in batchnorm_layers(clf.module_)]


@pytest.mark.parametrize("early_stopping", [False, True])
def test_batchnorm_statistics_match_the_final_weights(early_stopping):
    X, y = blobs_images(n=64)
    arguments = dict(
        architecture="cnn",
        module__widths=(4, 6, 8),
        module__hidden=8,
        max_epochs=3,
        lr=0.05,
        batch_size=16,
        random_state=0,
        early_stopping=early_stopping,
        n_iter_no_change=1,
    )
    clf = ScaleEquivariantClassifier(**arguments).fit(X, y)
    stale = ScaleEquivariantClassifier(**arguments, recalibrate_batchnorm=False).fit(X, y)
    # The same seed trains the same weights: only the recalibration sets the statistics apart
    # (with early stopping too, after the best epoch is restored).
    assert any(
        not torch.allclose(a, b, atol=1e-3)
        for a, b in zip(batchnorm_statistics(clf), batchnorm_statistics(stale))
    )
    assert clf.score(X, y) >= stale.score(X, y)
    # Recomputing on the final weights changes nothing after recalibration, and the exponential
    # averages of training otherwise.
    data = torch.as_tensor(X[:, None])
    train = data if not early_stopping else None
    if train is not None:
        before = batchnorm_statistics(clf)
        recalibrate_batchnorm(clf.module_, train.split(16))
        for old, new in zip(before, batchnorm_statistics(clf)):
            torch.testing.assert_close(old, new, rtol=1e-4, atol=1e-5)
        before = batchnorm_statistics(stale)
        recalibrate_batchnorm(stale.module_, train.split(16))
        assert any(not torch.allclose(a, b, atol=1e-3) for a, b in zip(before, batchnorm_statistics(stale)))


def test_a_last_batch_of_one_image_of_one_pixel():
    X = np.random.RandomState(0).rand(17, 1, 1).astype(np.float32)
    y = np.arange(17) % 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LargeKernelWarning)
        clf = ScaleEquivariantClassifier(**{**FAST, "batch_size": 16}).fit(X, y)
    assert np.isfinite(clf.predict_proba(X)).all()
    cnn = ScaleEquivariantClassifier(architecture="cnn", module__widths=(2,), module__hidden=4, batch_size=8)
    assert np.isfinite(
        cnn.set_params(max_epochs=1)
        .fit(np.random.rand(9, 8, 8), np.arange(9) % 2)
        .predict_proba(np.zeros((2, 8, 8)))
    ).all()


def test_datasets_of_bare_images_or_bad_pixels_are_refused_naming_the_sample():
    X, y = blobs_images(n=16)
    with pytest.raises(ValueError, match="must yield \\(image, label\\) pairs"):
        ScaleEquivariantClassifier(**FAST, classes=[0, 1]).fit(Pairs(torch.as_tensor(X)))
    broken = torch.as_tensor(X).clone()
    broken[5, 2, 2] = float("nan")
    with pytest.raises(ValueError, match="sample 5 of the dataset holds non-finite pixel values"):
        ScaleEquivariantClassifier(**FAST, classes=[0, 1]).fit(Pairs(broken, torch.as_tensor(y)), None)


def test_channels_last_dataset_images():
    X, y = rgb_blobs(n=32)
    clf = ScaleEquivariantClassifier(**FAST, classes=[0, 1]).fit(Pairs(torch.as_tensor(X), y.tolist()))
    assert clf.input_shape_ == (3, 16, 16) and clf.image_layout_ == "channels_last"
    assert clf.predict(X).shape == (32,)


@pytest.mark.parametrize(
    "labels, match",
    [
        (np.tile([0.5, 1.5], 8), "non-integer float labels.*y.astype\\(str\\)"),
        (np.r_[np.nan, np.zeros(7), np.ones(8)], "y holds NaN labels"),
    ],
)
def test_labels_that_are_not_classes(labels, match):
    X, _ = blobs_images(n=16)
    with pytest.raises(ValueError, match=match):
        ScaleEquivariantClassifier(**FAST).fit(X, labels)


def test_repeated_classes_are_refused():
    X, y = blobs_images(n=16)
    with pytest.raises(ValueError, match="classes must list every class label once, got \\[0, 0, 1\\]"):
        ScaleEquivariantClassifier(**FAST, classes=[0, 0, 1]).fit(X, y)


def test_sample_weight_is_refused_at_once_and_by_metadata_routing():
    X, y = blobs_images(n=16)
    with pytest.raises(ValueError, match="does not support sample_weight"):
        ScaleEquivariantClassifier(**FAST).fit(X, y, sample_weight=np.ones(16))
    with sklearn.config_context(enable_metadata_routing=True):
        with pytest.raises(ValueError, match="does not support sample_weight"):
            ScaleEquivariantClassifier(**FAST).set_fit_request(sample_weight=True)


@pytest.mark.parametrize(
    "other, match",
    [
        (dict(n_filters=5), "another n_filters, architecture or module__ arguments"),
        (dict(parameterisation="fixed"), "another parameterisation"),
        (dict(n_scales=3), "another n_scales \\(saved 2, this network 3\\)"),
        (dict(classes=[0, 1, 2]), "another classes \\(saved 2 outputs, this network has 3\\)"),
    ],
)
def test_a_checkpoint_of_another_network_names_what_differs(tmp_path, other, match):
    X, y = blobs_images(n=16)
    saved = ScaleEquivariantClassifier(**FAST).fit(X, y)
    saved.save_params(f_params=tmp_path / "params.pt")
    settings = {**FAST, "image_shape": (12, 12), "classes": [0, 1], **other}
    target = ScaleEquivariantClassifier(**settings).initialize()
    with pytest.raises(ValueError, match=match):
        target.load_params(f_params=tmp_path / "params.pt")


def test_export_into_a_missing_folder_raises_oserror(tmp_path):
    X, y = blobs_images(n=16)
    clf = ScaleEquivariantClassifier(**FAST).fit(X, y)
    missing = tmp_path / "no" / "such" / "net.pt2"
    with pytest.raises(OSError, match="does not exist"):
        clf.export(X[:1], path=missing)
    assert not os.path.exists(missing.parent)


@pytest.mark.parametrize("factors", [(1e6, 1e7), (1e-40, 1e-40), (0.05, 1.0)])
def test_scale_augmentation_keeps_objects_visible(factors):
    X, y = blobs_images(n=16)
    with pytest.raises(ValueError, match="scale_augmentation must be"):
        ScaleEquivariantClassifier(**FAST, scale_augmentation=factors).fit(X, y)


def test_a_batch_size_beyond_the_data_is_not_a_memory_problem():
    X, y = blobs_images(n=40)
    clf = ScaleEquivariantClassifier(**{**FAST, "batch_size": 10**6, "max_epochs": 1}).fit(X, y)
    assert clf.predict(X).shape == (40,)


def test_resource_checks_name_the_parameter_before_allocating():
    X, y = blobs_images(n=8)
    # Ten classes: the parameters alone (1.7e9) cannot be trained, refused before building;
    # with two the network is built and its batch refused, naming the channels it has.
    with pytest.raises(ValueError, match="parameters \\(n_filters=10000000\\).*Choose a smaller n_filters"):
        ScaleEquivariantClassifier(**{**FAST, "n_filters": 10**7}).fit(
            np.concatenate([X, X, X])[:20], np.arange(20) % 10
        )
    with pytest.raises(ValueError, match="n_filters"):
        ScaleEquivariantClassifier(**{**FAST, "n_filters": 10**7}).fit(X, y)
    with pytest.raises(ValueError, match="n_scales=1000000"):
        ScaleEquivariantClassifier(**{**FAST, "n_scales": 10**6}).fit(X, y)


def test_pixels_that_overflow_are_refused():
    X, y = blobs_images(n=16)
    with pytest.raises(ValueError, match="pixel values up to 1.05e\\+30"):
        ScaleEquivariantClassifier(**FAST).fit(X * 1e30, y)

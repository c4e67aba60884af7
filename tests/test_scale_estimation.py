"""Tests of skscale.estimate_scales."""

import warnings

import numpy as np
import pytest
from scipy import stats

from skscale import estimate_scales

SIDE = 32


def blobs(sigma, centres=None, *, offset=0.0, contrast=1.0, noise=0.02, seed=0):
    """Gaussian blobs of the given sigmas on a noisy SIDE x SIDE canvas."""
    rng = np.random.default_rng(seed)
    sigma = np.asarray(sigma, dtype=float)
    if centres is None:
        centres = np.zeros((len(sigma), 2))
    grid = np.arange(SIDE) - (SIDE - 1) / 2
    dy = grid[None, :, None] - centres[:, 0, None, None]
    dx = grid[None, None, :] - centres[:, 1, None, None]
    images = contrast * np.exp(-(dy**2 + dx**2) / (2 * sigma[:, None, None] ** 2))
    return images + offset + noise * rng.standard_normal(images.shape)


@pytest.fixture(scope="module")
def sigmas():
    return 2.0 ** np.random.default_rng(1).uniform(0.5, 2.0, size=24)


def test_rank_correlation_with_the_true_sigmas(sigmas):
    scales = estimate_scales(blobs(sigmas), background_size=1)
    assert scales.shape == sigmas.shape
    assert np.all(scales > 0)
    assert stats.spearmanr(scales, sigmas)[0] > 0.9
    # Only ratios matter, but they must follow the true ratios (not be compressed to 1).
    slope = np.polyfit(np.log2(sigmas), np.log2(scales), 1)[0]
    assert 0.6 < slope < 1.5


def test_invariant_to_contrast_offset_and_position(sigmas):
    reference = estimate_scales(blobs(sigmas), background_size=1)
    centres = np.random.default_rng(2).uniform(-5, 5, size=(len(sigmas), 2))
    changed = estimate_scales(blobs(sigmas, centres, offset=3.0, contrast=0.4, seed=0), background_size=1)
    assert stats.spearmanr(changed, reference)[0] > 0.9
    np.testing.assert_allclose(np.log2(changed), np.log2(reference), atol=0.35)


def test_deterministic_and_layouts_agree(sigmas):
    images = blobs(sigmas)
    first = estimate_scales(images)
    np.testing.assert_array_equal(first, estimate_scales(images))
    np.testing.assert_allclose(estimate_scales(images[:, None]), first)
    flat = images.reshape(len(images), -1)
    np.testing.assert_allclose(estimate_scales(flat, image_shape=(SIDE, SIDE)), first)
    np.testing.assert_allclose(estimate_scales(flat), first)  # square rows, as the classifier reads them
    rgb = np.repeat(images[..., None], 3, axis=3).reshape(len(images), -1)
    np.testing.assert_allclose(estimate_scales(rgb, image_shape=(SIDE, SIDE, 3)), first)


@pytest.mark.parametrize("labels", [np.array(["small", "large"] * 12), np.arange(24) % 2])
def test_labels_of_any_type_normalise_each_class(sigmas, labels):
    # Class "large" is twice as large; per-class normalisation removes that difference.
    boosted = np.where(labels == labels[1], 2 * sigmas, sigmas)
    scales = estimate_scales(blobs(boosted), labels, background_size=1, correct_spread=False)
    medians = [np.median(np.log2(scales[labels == label])) for label in np.unique(labels)]
    assert abs(medians[0] - medians[1]) < 0.15
    for label in np.unique(labels):
        members = labels == label
        assert stats.spearmanr(scales[members], boosted[members])[0] > 0.8
    unlabelled = estimate_scales(blobs(boosted), background_size=1)
    assert np.median(unlabelled[labels == labels[1]]) > 1.5 * np.median(unlabelled[labels == labels[0]])


def test_noisy_class_medians_are_shrunk():
    # Two classes of the same size distribution: their medians differ only by noise,
    # which must not be subtracted from the scales (the labels then change little).
    rng = np.random.default_rng(3)
    sigma = 2.0 ** rng.uniform(0.5, 2.0, size=60)
    labels = np.arange(60) % 20
    images = blobs(sigma, noise=0.05)
    with_labels = estimate_scales(images, labels, background_size=1)
    without = estimate_scales(images, background_size=1)
    assert stats.spearmanr(with_labels, sigma)[0] > stats.spearmanr(without, sigma)[0] - 0.03
    assert np.max(np.abs(np.log2(with_labels) - np.log2(without))) < 0.2


def test_blank_and_constant_images_are_left_out_with_a_warning(sigmas):
    images = np.concatenate([blobs(sigmas[:6]), np.zeros((1, SIDE, SIDE)), np.full((1, SIDE, SIDE), 0.7)])
    with pytest.warns(UserWarning, match=r"2 of 8 images hold no object.*images 6, 7"):
        scales = estimate_scales(images, background_size=1)
    assert np.isnan(scales[6:]).all()
    assert np.isfinite(scales[:6]).all() and np.all(scales[:6] > 0)


def test_one_image():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scales = estimate_scales(blobs([2.0]))
    np.testing.assert_array_equal(scales, [1.0])
    with pytest.warns(UserWarning, match="1 of 1 images"):
        assert np.isnan(estimate_scales(np.zeros((1, 8, 8)))).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"X": np.zeros((0, 8, 8))}, r"0 sample\(s\)"),
        ({"X": np.zeros((2, 63))}, "63 features per row, which is not a square single-channel image"),
        ({"X": np.zeros((2, 64)), "image_shape": "row"}, "image_shape='row' .* no object to measure"),
        ({"X": np.zeros((2, 8, 8)), "image_shape": (10, 10)}, r"image_shape=\(10, 10\) does not match X"),
        ({"X": np.zeros((2, 64)), "image_shape": (8, 9)}, r"image_shape=\(8, 9\) needs 72"),
        ({"X": np.zeros((2, 64)), "image_shape": (8, 8, 1, 1)}, "image_shape must be"),
        ({"X": np.zeros((2, 8, 8)), "y": [0, 1, 2]}, "y must have one label per image"),
        ({"X": np.zeros((2, 8, 8)), "background_size": 0}, "background_size must be an integer >= 1, got 0"),
        ({"X": np.zeros((2, 8, 8)), "correct_spread": "yes"}, "correct_spread must be True or False"),
        ({"X": np.zeros((2, 2, 2, 2, 2))}, "X must be 2-D"),
        ({"X": np.zeros((2, 8, 8)), "polarity": "light"}, "polarity must be one of"),
        ({"X": np.zeros((2, 8, 8, 3)), "image_layout": "nhwc"}, "image_layout must be one of"),
        (
            {"X": np.zeros((2, 8, 8)), "y": [0.0, np.nan]},
            r"y holds 1 missing or non-finite labels .* image 1",
        ),
        ({"X": np.zeros((2, 8, 8)), "y": [0.0, np.inf]}, "y holds 1 missing or non-finite"),
        ({"X": np.zeros((2, 8, 8)), "y": np.array(["a", None], dtype=object)}, "y holds 1 missing"),
        ({"X": np.full((2, 8, 8), np.nan)}, "Input X contains NaN"),
        ({"X": np.full((2, 8, 8), np.inf)}, "Input X contains infinity"),
    ],
)
def test_invalid_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        estimate_scales(**kwargs)


def test_fits_the_tolerance_model(sigmas):
    from skscale import ToleranceModel

    model = ToleranceModel(n_scales=3).fit(estimate_scales(blobs(sigmas), background_size=1))
    assert 1.0 < model.isr_ < 8.0


def test_slope_on_blobs_is_one(sigmas):
    # The radius of gyration is proportional to size: log-estimates follow log-sigmas 1:1.
    raw = estimate_scales(blobs(sigmas), background_size=1, correct_spread=False)
    slope = np.polyfit(np.log2(sigmas), np.log2(raw), 1)[0]
    assert 0.8 < slope < 1.25


def test_clutter_elsewhere_and_a_smooth_background_are_ignored():
    # Rings (thin bright structures) of known radius, a dimmer small spot elsewhere and a
    # smooth slanted background: the default grey opening keeps only the ring.
    rng = np.random.default_rng(4)
    side = 64
    radius = 2.0 ** rng.uniform(2.0, 3.5, size=20)
    grid = np.arange(side) - 20.0
    distance = np.hypot(grid[:, None], grid[None, :])
    rings = np.exp(-((distance[None] - radius[:, None, None]) ** 2) / 2.0)
    spot = 0.5 * np.exp(-((grid[:, None] - 30) ** 2 + (grid[None, :] - 30) ** 2) / 2.0)
    slope = np.linspace(0.0, 2.0, side)[None, :]
    images = rings + spot + slope + 0.05 * rng.standard_normal(rings.shape)
    raw = estimate_scales(images, correct_spread=False)
    assert stats.spearmanr(raw, radius)[0] > 0.95
    np.testing.assert_allclose(np.polyfit(np.log2(radius), np.log2(raw), 1)[0], 1.0, atol=0.15)


def test_spread_correction_keeps_ranks_and_ignores_an_outlier(sigmas):
    images = blobs(sigmas)
    # A huge object (8 times the largest sigma) among the others.
    outlier = blobs([16.0], noise=0.0)
    both = np.concatenate([images, outlier])
    raw = estimate_scales(both, background_size=1, correct_spread=False)
    corrected = estimate_scales(both, background_size=1)
    np.testing.assert_array_equal(stats.rankdata(corrected), stats.rankdata(raw))
    # The range no longer stretches to the outlier: close to the range without it.
    without = np.log2(estimate_scales(images, background_size=1, correct_spread=False))
    corrected_range = np.ptp(np.log2(corrected))
    assert corrected_range < np.ptp(np.log2(raw)) - 0.5
    assert abs(corrected_range - np.ptp(without)) < 0.4


# ------------------------------------------------------------------ issue 28: the inputs users pass
def mnist_digits(n=40):
    from skscale.datasets import load_mnist

    return load_mnist(source="bundled", return_X_y=True)[0][:n].astype(float)


@pytest.mark.parametrize("background_size", [1001, 100_000, 10**12])
def test_a_disk_larger_than_the_image_costs_nothing_and_changes_nothing(background_size):
    import time
    import tracemalloc

    digits = mnist_digits(20)
    # 81 px = 2 * ceil(sqrt(2) * 28) + 1: the smallest disk covering the reflected image.
    reference = estimate_scales(digits, background_size=81)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        scales = estimate_scales(digits, background_size=background_size)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 5.0
    assert peak < 50 * 2**20
    np.testing.assert_array_equal(scales, reference)


def test_labels_that_are_all_different_are_ignored_with_a_warning():
    digits = mnist_digits(20)
    with pytest.warns(UserWarning, match="y gives each of the 20 images a label of its own"):
        scales = estimate_scales(digits, np.arange(20))
    np.testing.assert_array_equal(scales, estimate_scales(digits))
    assert np.unique(scales).size > 10


def test_a_class_of_one_image_borrows_the_spread_of_the_others(sigmas):
    labels = np.r_[np.zeros(len(sigmas) - 1), 1]
    scales = estimate_scales(blobs(sigmas), labels, background_size=1)
    assert np.unique(scales).size == len(sigmas)


def test_pure_noise_holds_no_object_and_most_empty_images_are_reported():
    noise = np.random.default_rng(5).standard_normal((30, 32, 32))
    with pytest.warns(UserWarning, match=r"30 of 30 images hold no object.*most of the images") as record:
        scales = estimate_scales(noise)
    assert np.isnan(scales).all()
    assert not any("darker" in str(w.message) for w in record)  # noise is no polarity


@pytest.mark.parametrize("polarity", ["auto", "dark"])
def test_dark_objects_on_a_bright_background(sigmas, polarity):
    bright = estimate_scales(blobs(sigmas), background_size=1)
    dark = 1.0 - blobs(sigmas)
    if polarity == "auto":
        with pytest.warns(UserWarning, match="look darker than their background in 100% of the images, so"):
            scales = estimate_scales(dark, background_size=1)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            scales = estimate_scales(dark, background_size=1, polarity="dark")
    np.testing.assert_allclose(scales, bright, rtol=1e-6)
    assert stats.spearmanr(scales, sigmas)[0] > 0.9


def test_a_polarity_the_images_contradict_is_kept_with_a_warning(sigmas):
    with pytest.warns(UserWarning, match="polarity='bright' measures bright objects"):
        estimate_scales(1.0 - blobs(sigmas), background_size=1, polarity="bright")
    with pytest.warns(UserWarning, match="polarity='dark' measures dark objects"):
        estimate_scales(blobs(sigmas), background_size=1, polarity="dark")


@pytest.mark.parametrize("factor", [1e30, 1e300, -1e30])
def test_extreme_pixels_are_standardised_with_a_warning(sigmas, factor):
    images = blobs(sigmas)
    reference = estimate_scales(images, background_size=1)
    with pytest.warns(UserWarning, match=r"X holds pixel values up to 1(\.\d+)?e\+(30|300) in magnitude"):
        scales = estimate_scales(
            factor * images, background_size=1, polarity="dark" if factor < 0 else "auto"
        )
    np.testing.assert_allclose(scales, reference, rtol=1e-6)


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_channels_last_images_are_read_as_such(sigmas, channels):
    images = blobs(sigmas)
    reference = estimate_scales(images)
    last = np.repeat(images[..., None], channels, axis=3)
    np.testing.assert_allclose(estimate_scales(last), reference)
    np.testing.assert_allclose(estimate_scales(last, image_layout="channels_last"), reference)
    first = np.repeat(images[:, None], channels, axis=1)
    np.testing.assert_allclose(estimate_scales(first), reference)
    np.testing.assert_allclose(estimate_scales(first, image_layout="channels_first"), reference)


def test_channels_last_images_are_read_by_the_shared_layout_rule():
    # The rule itself is tested in test_images.py; here estimate_scales follows it.
    rng = np.random.RandomState(0)
    gray = np.zeros((6, 28, 28))
    for i, radius in enumerate([2, 3, 4, 5, 6, 7]):
        yy, xx = np.mgrid[:28, :28] - 13.5
        gray[i] = np.exp(-(yy**2 + xx**2) / (2 * radius**2)) + 0.01 * rng.randn(28, 28)
    rgb_last = np.repeat(gray[..., None], 3, axis=3)
    np.testing.assert_allclose(estimate_scales(rgb_last), estimate_scales(gray))
    with pytest.raises(ValueError, match="pass image_layout="):
        estimate_scales(np.zeros((6, 3, 4, 4)) + rng.rand(6, 3, 4, 4))
    assert estimate_scales(rgb_last.transpose(0, 3, 1, 2), image_layout="channels_first").shape == (6,)

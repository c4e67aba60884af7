"""Tests of skscale._init_isr (``init_isr="auto"``), apart from the classifier."""

import math
import warnings

import numpy as np
import pytest

from skscale._init_isr import (
    AUTO_FALLBACK_ISR,
    AUTO_ISR_FLOOR,
    estimate_init_isr,
    largest_fitting_isr,
)

SIDE = 32


def blobs(sigma, *, noise=0.02, seed=0):
    """Gaussian blobs of the given sigmas centred on SIDE x SIDE canvases, (n, 1, H, W)."""
    rng = np.random.default_rng(seed)
    sigma = np.asarray(sigma, dtype=float)
    grid = np.arange(SIDE) - (SIDE - 1) / 2
    images = np.exp(-(grid[None, :, None] ** 2 + grid[None, None, :] ** 2) / (2 * sigma[:, None, None] ** 2))
    return (images + noise * rng.standard_normal(images.shape))[:, None]


@pytest.fixture(scope="module")
def wide_range():
    # Sizes over 2 octaves (filled blobs: the default background disk keeps their edges).
    return blobs(2.0 ** np.random.default_rng(1).uniform(0.0, 2.0, size=60))


@pytest.mark.parametrize(
    ("side", "sigma_basis", "kernel_extent"), [(32, 2.0, 2.0), (28, 1.0, 4.0), (9, 1.5, 1.0)]
)
def test_the_largest_fitting_isr_is_the_largest_whose_kernel_fits(side, sigma_basis, kernel_extent):
    isr = largest_fitting_isr(side, sigma_basis, kernel_extent)
    assert 2 * math.ceil(kernel_extent * sigma_basis * isr) + 1 <= side
    assert 2 * math.ceil(kernel_extent * sigma_basis * isr * 1.001) + 1 > side


def test_without_sigma_basis_nothing_is_capped(wide_range):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        isr, tolerance = estimate_init_isr(wide_range, None, 3)
    assert isr == max(float(tolerance.isr_[0]), AUTO_ISR_FLOOR) > 2.0


def test_the_isr_is_capped_so_that_the_largest_kernel_fits_the_images(wide_range):
    uncapped, _ = estimate_init_isr(wide_range, None, 3)
    largest = largest_fitting_isr(SIDE, 4.0, 2.0)  # 15 / 8 = 1.875
    assert uncapped > largest
    with pytest.warns(
        UserWarning, match=r"would need \d+-pixel kernels .* on 32-pixel images; starting from ISR 1.88"
    ):
        isr, tolerance = estimate_init_isr(wide_range, None, 3, sigma_basis=4.0, kernel_extent=2.0)
    assert isr == largest and tolerance is not None
    assert 2 * math.ceil(2.0 * 4.0 * isr) + 1 <= SIDE


def test_a_floor_that_does_not_fit_says_so(wide_range):
    with pytest.warns(UserWarning, match="lower init_sigma_basis or kernel_extent"):
        isr, _ = estimate_init_isr(wide_range, None, 3, sigma_basis=8.0, kernel_extent=2.0)
    assert isr == AUTO_ISR_FLOOR


def test_mostly_noise_falls_back_to_the_default_with_a_warning():
    rng = np.random.default_rng(2)
    noise = rng.standard_normal((40, 1, SIDE, SIDE))
    images = np.concatenate([noise, blobs([2.0, 3.0, 4.0, 5.0])])
    with pytest.warns(
        UserWarning, match=r"found an object in only \d+ of the 44 training images .* starting from ISR 3"
    ):
        isr, tolerance = estimate_init_isr(images, None, 3)
    assert isr == AUTO_FALLBACK_ISR and tolerance is None


def test_the_fallback_is_capped_too():
    rng = np.random.default_rng(3)
    images = np.concatenate([rng.standard_normal((40, 1, SIDE, SIDE)), blobs([2.0, 3.0, 4.0])])
    with pytest.warns(UserWarning) as record:
        isr, _ = estimate_init_isr(images, None, 3, sigma_basis=4.0, kernel_extent=2.0)
    assert isr == largest_fitting_isr(SIDE, 4.0, 2.0) < AUTO_FALLBACK_ISR
    assert any("kernels" in str(w.message) for w in record)


def test_pure_noise_is_refused_not_given_a_large_isr():
    noise = np.random.default_rng(4).standard_normal((50, 1, SIDE, SIDE))
    with (
        pytest.warns(UserWarning, match="hold no object"),
        pytest.raises(ValueError, match="found no object in the 50 training images .*noise only"),
    ):
        estimate_init_isr(noise, None, 3, sigma_basis=2.0, kernel_extent=2.0)


def test_invalid_sigma_basis_is_named(wide_range):
    with pytest.raises(ValueError, match="sigma_basis must be"):
        estimate_init_isr(wide_range, None, 3, sigma_basis=0.0, kernel_extent=2.0)

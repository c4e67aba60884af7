"""The draws and interpolations of scale augmentation (the SESN authors' '+' transform)."""

import numpy as np
import pytest
import torch

from skscale import ScaleEquivariantClassifier
from skscale.augmentation import (
    FACTOR_DRAWS,
    INTERPOLATIONS,
    augmentation_generator,
    draw_factors,
    rescale_batch,
    uniform_factors,
)

from .test_augmentation import SMALL, data, gaussian_blobs, spread


def test_uniform_factors_cover_the_range_with_two_thirds_magnifying():
    factors = uniform_factors(30_000, 0.5, 2.0, augmentation_generator(0))
    assert 0.5 <= factors.min() < 0.51 and 1.99 < factors.max() <= 2.0
    assert np.mean(factors > 1.0) == pytest.approx(2 / 3, abs=0.01)
    counts, _ = np.histogram(factors, bins=6, range=(0.5, 2.0))
    assert counts.min() > 0.9 * counts.mean()  # flat in the factor itself
    log_uniform = draw_factors(30_000, 0.5, 2.0, augmentation_generator(0), "log-uniform")
    assert np.mean(log_uniform > 1.0) == pytest.approx(0.5, abs=0.01)
    np.testing.assert_array_equal(
        draw_factors(30_000, 0.5, 2.0, augmentation_generator(0), "uniform"), factors
    )
    assert set(FACTOR_DRAWS) == {"log-uniform", "uniform"}
    with pytest.raises(ValueError, match="draw must be one of .*, got 'normal'"):
        draw_factors(3, 0.5, 2.0, augmentation_generator(0), "normal")


def test_bicubic_rescaling_differs_from_bilinear_and_keeps_the_blob_scale():
    blobs = gaussian_blobs(3, size=32)
    factors = [1.0, 1.7, 0.6]
    bicubic = rescale_batch(blobs, factors, mode="bicubic")
    bilinear = rescale_batch(blobs, factors)
    torch.testing.assert_close(bicubic[0], blobs[0], atol=1e-5, rtol=0)  # factor 1: the input
    assert float((bicubic[1:] - bilinear[1:]).abs().max()) > 1e-3
    np.testing.assert_allclose(spread(bicubic) / spread(blobs), factors, rtol=0.05)
    assert INTERPOLATIONS == ("bilinear", "bicubic")
    with pytest.raises(ValueError, match="mode must be one of .*, got 'nearest'"):
        rescale_batch(blobs, factors, mode="nearest")


def test_classifier_trains_on_the_chosen_draw_and_interpolation(monkeypatch):
    from skscale import _base

    calls = []
    original = _base.rescale_batch

    def recording(images, factors, mode="bilinear"):
        calls.append((np.asarray(factors).copy(), mode))
        return original(images, factors, mode=mode)

    monkeypatch.setattr(_base, "rescale_batch", recording)
    X, y = data(n=64)
    options = dict(SMALL, max_epochs=1, batch_size=64, scale_augmentation=(0.5, 2.0))
    ScaleEquivariantClassifier(
        **options, scale_augmentation_draw="uniform", scale_augmentation_interpolation="bicubic"
    ).fit(X, y)
    ScaleEquivariantClassifier(**options).fit(X, y)
    (uniform, uniform_mode), (default, default_mode) = calls
    assert (uniform_mode, default_mode) == ("bicubic", "bilinear")
    # The same generator: the uniform draw is the affine map of the uniform variates that
    # the log-uniform draw exponentiates.
    np.testing.assert_allclose(np.log(default), np.log(0.5) + (uniform - 0.5) / 1.5 * np.log(4.0))


@pytest.mark.parametrize(
    "name, value", [("scale_augmentation_draw", "gaussian"), ("scale_augmentation_interpolation", "nearest")]
)
def test_invalid_draw_or_interpolation_is_named(name, value):
    X, y = data()
    with pytest.raises(ValueError, match=f"{name} must be one of .*, got '{value}'"):
        ScaleEquivariantClassifier(**SMALL, scale_augmentation=(0.5, 2.0), **{name: value}).fit(X, y)

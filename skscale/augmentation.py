"""On-the-fly scale augmentation of image batches (the paper's "+" setting).

Every training batch is rescaled about the image centre, each image by its own factor
drawn log-uniformly from ``[low, high]`` (or uniformly: :data:`FACTOR_DRAWS`); new factors
are drawn for every batch, so every epoch sees the images at new scales.
``ScaleEquivariantClassifier(scale_augmentation=(low, high))`` applies it in its training
step only; ``scale_augmentation_draw`` and ``scale_augmentation_interpolation`` pick the
draw and the resampling (the SESN authors' "+" transform, torchvision's
``RandomAffine(0, scale=(0.5, 2), resample=3)``, is ``"uniform"`` and ``"bicubic"``).
"""

from __future__ import annotations

import numpy as np

from .rescaling import rescale_about_centre

__all__ = [
    "FACTOR_DRAWS",
    "INTERPOLATIONS",
    "augmentation_generator",
    "draw_factors",
    "log_uniform_factors",
    "uniform_factors",
    "rescale_batch",
]


def augmentation_generator(seed, epochs_done=0):
    """A NumPy generator for the factors of one training call.

    Parameters
    ----------
    seed : int or None
        The estimator's seed (None: fresh entropy, not reproducible).
    epochs_done : int, default=0
        Epochs trained before this call, so that ``partial_fit`` continues with new draws.

    Returns
    -------
    numpy.random.Generator
    """
    if seed is None:
        return np.random.default_rng()
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(epochs_done)]))


def log_uniform_factors(n, low, high, rng):
    """``n`` factors with ``log(factor)`` uniform on ``[log(low), log(high)]``.

    Examples
    --------
    >>> factors = log_uniform_factors(1000, 0.5, 2.0, np.random.default_rng(0))
    >>> bool(factors.min() >= 0.5 and factors.max() <= 2.0)
    True
    """
    return np.exp(rng.uniform(np.log(low), np.log(high), size=n))


def uniform_factors(n, low, high, rng):
    """``n`` factors uniform on ``[low, high]``.

    For ``[0.5, 2]`` two thirds of them magnify (``factor > 1``), against half of
    :func:`log_uniform_factors`': torchvision's ``RandomAffine(scale=(low, high))``.

    Examples
    --------
    >>> factors = uniform_factors(1000, 0.5, 2.0, np.random.default_rng(0))
    >>> bool(factors.min() >= 0.5 and factors.max() <= 2.0)
    True
    """
    return rng.uniform(low, high, size=n)


#: How the factors of ``scale_augmentation`` are drawn: name -> ``draw(n, low, high, rng)``.
FACTOR_DRAWS = {"log-uniform": log_uniform_factors, "uniform": uniform_factors}
#: The resampling of :func:`rescale_batch` (interpolations of
#: :func:`~skscale.rescaling.rescale_about_centre`).
INTERPOLATIONS = ("bilinear", "bicubic")


def draw_factors(n, low, high, rng, draw="log-uniform"):
    """``n`` factors in ``[low, high]`` drawn as ``draw`` names (a key of :data:`FACTOR_DRAWS`)."""
    if draw not in FACTOR_DRAWS:
        raise ValueError(f"draw must be one of {sorted(FACTOR_DRAWS)}, got {draw!r}.")
    return FACTOR_DRAWS[draw](n, low, high, rng)


def rescale_batch(images, factors, mode="bilinear"):
    """Rescale every image of a batch about its centre by its own factor, keeping its size.

    A factor ``f > 1`` magnifies (the border is cropped), ``f < 1`` shrinks (the border
    is filled by repeating the edge pixels, which keeps the background of normalised
    images). It is :func:`~skscale.rescaling.rescale_about_centre` with ``mode`` as the
    interpolation and ``padding="border"``; ``f = 1`` returns the input.

    Parameters
    ----------
    images : torch.Tensor of shape (B, C, H, W)
    factors : array-like of shape (B,)
    mode : {"bilinear", "bicubic"}, default="bilinear"
        The interpolation (:data:`INTERPOLATIONS`). Bicubic can overshoot the input's range
        next to sharp edges.

    Returns
    -------
    torch.Tensor of shape (B, C, H, W)

    Examples
    --------
    >>> import torch
    >>> x = torch.rand(2, 1, 8, 8)
    >>> bool(torch.allclose(rescale_batch(x, [1.0, 1.0]), x, atol=1e-6))
    True
    """
    if mode not in INTERPOLATIONS:
        raise ValueError(f"mode must be one of {list(INTERPOLATIONS)}, got {mode!r}.")
    return rescale_about_centre(images, factors, interpolation=mode, padding="border")

"""``init_isr="auto"``: the initial ISR from the training images' estimated object scales."""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from skorch.utils import is_dataset

from .scale_estimation import estimate_scales
from .tolerance import ToleranceModel
from .utils.validation import Real

__all__ = [
    "AUTO_FALLBACK_ISR",
    "AUTO_ISR_FLOOR",
    "AUTO_MAX_IMAGES",
    "estimate_init_isr",
    "largest_fitting_isr",
]

# The scales are estimated on at most this many training images (evenly spaced through
# the training set).
AUTO_MAX_IMAGES = 500
# The recommended ISR is raised to at least this: at ISR = 1 + gamma**2 (Eq. 5) close to 1
# the gradient 2 gamma of the ISR vanishes, and a learned ISR could hardly move away.
AUTO_ISR_FLOOR = 1.25
# The ISR "auto" starts from when the scales cannot be estimated (the classifier's default
# init_isr).
AUTO_FALLBACK_ISR = 3.0
# Fewer images with an object than this share make the estimated scales unreliable.
_MIN_OBJECT_SHARE = 0.5
_POSITIVE = Real(low=0.0, closed="neither")


def largest_fitting_isr(image_size, sigma_basis, kernel_extent):
    """The largest ISR whose largest kernel (Eq. 6) still fits an image side.

    The largest internal scale is ``sigma_basis * isr`` and its kernel
    ``2 * ceil(kernel_extent * sigma_basis * isr) + 1`` pixels wide (Eq. 6); it fits
    ``image_size`` pixels while ``ceil(kernel_extent * sigma_basis * isr) <= (image_size - 1) // 2``.

    Parameters
    ----------
    image_size : int
        The smaller side of the images, in pixels.
    sigma_basis, kernel_extent : float
        The smallest internal scale and ``k`` of Eq. 6.

    Returns
    -------
    isr : float
        The largest such ISR (0 when not even a 1-pixel kernel reach fits).

    Examples
    --------
    >>> largest_fitting_isr(32, sigma_basis=2.0, kernel_extent=2.0)
    3.75
    """
    return ((int(image_size) - 1) // 2) / (kernel_extent * sigma_basis)


def _sampled_images(X, y):
    """At most :data:`AUTO_MAX_IMAGES` images of ``X`` (evenly spaced) and their labels."""
    n_samples = len(X)
    chosen = np.linspace(0, n_samples - 1, min(n_samples, AUTO_MAX_IMAGES)).round().astype(int)
    if is_dataset(X):
        items = [X[int(i)] for i in chosen]
        images = torch.stack([image for image, _ in items]).numpy()
        labels = np.asarray([label for _, label in items])
    else:
        images, labels = X[chosen], (None if y is None else np.asarray(y)[chosen])
    return images, labels


def _capped(isr, images, sigma_basis, kernel_extent):
    """``isr`` lowered, with a warning, so that the largest kernel fits the images."""
    if sigma_basis is None or kernel_extent is None:
        return isr
    sigma_basis = _POSITIVE.check(sigma_basis, "sigma_basis")
    kernel_extent = _POSITIVE.check(kernel_extent, "kernel_extent")
    side = min(images.shape[-2:])
    largest = largest_fitting_isr(side, sigma_basis, kernel_extent)
    if isr <= largest:
        return isr
    size = 2 * math.ceil(kernel_extent * sigma_basis * isr) + 1
    capped = max(largest, AUTO_ISR_FLOOR)
    note = (
        ""
        if largest >= AUTO_ISR_FLOOR
        else f"; even ISR {AUTO_ISR_FLOOR} needs kernels larger than the images: lower init_sigma_basis "
        "or kernel_extent"
    )
    warnings.warn(
        f"init_isr='auto': ISR {isr:.3g} would need {size}-pixel kernels (Eq. 6, sigma_basis "
        f"{sigma_basis:g}, kernel_extent {kernel_extent:g}) on {side}-pixel images; starting from "
        f"ISR {capped:.3g}, the largest whose kernels fit{note}.",
        UserWarning,
        stacklevel=5,
    )
    return capped


def estimate_init_isr(X, y, n_scales, *, sigma_basis=None, kernel_extent=None):
    """Estimate the images' object scales and the ISR the tolerance model recommends.

    Parameters
    ----------
    X : ndarray of shape (n, C, H, W) or Dataset
        Training images, or a Dataset yielding ``(image tensor, label)``.
    y : array-like of shape (n,) or None
        Labels of an array ``X`` (None for a Dataset).
    n_scales : int
        Internal scales of the network (the tolerance model's ``n_scales``).
    sigma_basis : float, optional
        The network's initial σ_basis in pixels. With ``kernel_extent``, the ISR is capped
        so that the largest kernel, ``2 * ceil(kernel_extent * sigma_basis * isr) + 1``
        pixels (Eq. 6), fits the images' smaller side (with a warning); no cap when either
        is None.
    kernel_extent : float, optional
        ``k`` of Eq. 6.

    Returns
    -------
    init_isr : float
        ``tolerance.isr_[0]``, at least :data:`AUTO_ISR_FLOOR` and at most the cap; or
        :data:`AUTO_FALLBACK_ISR` (capped alike) when fewer than half of the images read
        hold an object (a warning says so).
    tolerance : ToleranceModel or None
        The fitted tolerance model; None when the estimated scales do not spread (a
        warning says so, and ``init_isr`` is the floor) or are unreliable.

    Raises
    ------
    ValueError
        When no image read holds an object (all blank, constant or noise only).
    """
    images, labels = _sampled_images(X, y)
    n_read = len(images)
    scales = estimate_scales(images, labels)
    scales = scales[np.isfinite(scales)]
    if not len(scales):
        raise ValueError(
            f"init_isr='auto' found no object in the {n_read} training images it read (all blank, constant "
            "or noise only), so it cannot estimate their scales; pass a number as init_isr."
        )
    if len(scales) < _MIN_OBJECT_SHARE * n_read:
        isr = _capped(AUTO_FALLBACK_ISR, images, sigma_basis, kernel_extent)
        warnings.warn(
            f"init_isr='auto' found an object in only {len(scales)} of the {n_read} training images it read "
            f"(the others look blank, constant or noise only), too few to trust their scales; starting "
            f"from ISR {isr:.3g} (the default init_isr). Pass a number as init_isr to choose.",
            UserWarning,
            stacklevel=4,
        )
        return isr, None
    if np.unique(scales).size < 2:
        warnings.warn(
            f"init_isr='auto': the estimated scales of the {len(scales)} training images do not spread "
            f"(estimation noise explains all of their variance); starting from ISR {AUTO_ISR_FLOOR}.",
            UserWarning,
            stacklevel=4,
        )
        return AUTO_ISR_FLOOR, None
    tolerance = ToleranceModel(n_scales=n_scales).fit(scales)
    isr = max(float(tolerance.isr_[0]), AUTO_ISR_FLOOR)
    return _capped(isr, images, sigma_basis, kernel_extent), tolerance

"""``init_isr="auto"``: the initial ISR from the training images' estimated object scales."""

from __future__ import annotations

import warnings

import numpy as np
import torch
from skorch.utils import is_dataset

from .scale_estimation import estimate_scales
from .tolerance import ToleranceModel

__all__ = ["AUTO_ISR_FLOOR", "AUTO_MAX_IMAGES", "estimate_init_isr"]

# The scales are estimated on at most this many training images (evenly spaced through
# the training set).
AUTO_MAX_IMAGES = 500
# The recommended ISR is raised to at least this: at ISR = 1 + gamma**2 (Eq. 5) close to 1
# the gradient 2 gamma of the ISR vanishes, and a learned ISR could hardly move away.
AUTO_ISR_FLOOR = 1.25


def estimate_init_isr(X, y, n_scales):
    """Estimate the images' object scales and the ISR the tolerance model recommends.

    Parameters
    ----------
    X : ndarray of shape (n, C, H, W) or Dataset
        Training images, or a Dataset yielding ``(image tensor, label)``.
    y : array-like of shape (n,) or None
        Labels of an array ``X`` (None for a Dataset).
    n_scales : int
        Internal scales of the network (the tolerance model's ``n_scales``).

    Returns
    -------
    init_isr : float
        ``tolerance.isr_[0]``, at least :data:`AUTO_ISR_FLOOR`.
    tolerance : ToleranceModel or None
        The fitted tolerance model; None when the estimated scales do not spread (a
        warning says so, and ``init_isr`` is the floor).
    """
    n_samples = len(X)
    chosen = np.linspace(0, n_samples - 1, min(n_samples, AUTO_MAX_IMAGES)).round().astype(int)
    if is_dataset(X):
        items = [X[int(i)] for i in chosen]
        images = torch.stack([image for image, _ in items]).numpy()
        labels = np.asarray([label for _, label in items])
    else:
        images, labels = X[chosen], np.asarray(y)[chosen]
    scales = estimate_scales(images, labels)
    scales = scales[np.isfinite(scales)]
    if not len(scales):
        raise ValueError(
            f"init_isr='auto' found no object in the {len(chosen)} training images it read (all blank "
            "or constant), so it cannot estimate their scales; pass a number as init_isr."
        )
    if np.unique(scales).size < 2:
        warnings.warn(
            f"init_isr='auto': the estimated scales of the {len(scales)} training images do not spread "
            f"(estimation noise explains all of their variance); starting from ISR {AUTO_ISR_FLOOR}.",
            UserWarning,
            stacklevel=4,
        )
        return AUTO_ISR_FLOOR, None
    tolerance = ToleranceModel(n_scales=n_scales).fit(scales)
    return max(float(tolerance.isr_[0]), AUTO_ISR_FLOOR), tolerance

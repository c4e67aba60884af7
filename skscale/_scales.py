"""The scale arithmetic of the paper, shared by the layers, the tolerance model and the baselines.

- Eq. 2: internal scales spaced log-uniformly, ``sigma_basis * ISR ** (i / (N_S - 1))``.
- Eq. 5: ``ISR = 1 + gamma ** 2`` keeps a learned range above 1 without a ReLU.
- The authors' code (learn mode 6) applies Eq. 5 to each step instead of the whole range:
  every neighbouring pair of scales is ``1 + gamma ** 2`` apart, so ``ISR = (1 + gamma ** 2) ** (N_S - 1)``.
- Eq. 6: the kernel that holds a basis at scale ``sigma`` spans ``2 ceil(k sigma) + 1`` pixels.

Every function accepts Python numbers, NumPy arrays or torch tensors where it says so, and
keeps the type it was given, so that torch code stays differentiable.
"""

from __future__ import annotations

import math

import numpy as np

#: The floor of every learned step between neighbouring scales: a ratio of at least
#: ``1 + MIN_SCALE_STEP``, an ISR of at least ``1 + MIN_SCALE_STEP`` or an additive gap of at
#: least ``MIN_SCALE_STEP`` pixels. It keeps learned scales strictly increasing in float32, where
#: ``1 + gamma ** 2`` rounds to 1 for ``|gamma| < 2.4e-4``.
MIN_SCALE_STEP = 1e-4

__all__ = [
    "scale_exponents",
    "log_uniform_scales",
    "isr_from_gamma",
    "gamma_from_isr",
    "authors_isr",
    "authors_gamma",
    "geometric_scales",
    "MIN_SCALE_STEP",
    "kernel_size",
    "support_sizes",
]


def scale_exponents(n_scales):
    """Relative positions ``i / (N_S - 1)`` of the internal scales on the log axis (Eq. 2).

    Parameters
    ----------
    n_scales : int
        Number of internal scales; a single scale sits at 0.

    Returns
    -------
    ndarray of shape (n_scales,)
        Evenly spaced values from 0 to 1.

    Examples
    --------
    >>> scale_exponents(3).tolist()
    [0.0, 0.5, 1.0]
    """
    if n_scales == 1:
        return np.zeros(1)
    return np.arange(n_scales) / (n_scales - 1)


def log_uniform_scales(n_scales, sigma_basis, isr):
    """Internal scales ``sigma_basis * isr ** (i / (n_scales - 1))`` (Eq. 2).

    Parameters
    ----------
    n_scales : int
        Number of scales ``N_S``.
    sigma_basis : float, ndarray or torch.Tensor
        Smallest scale. Arrays broadcast: shape ``(..., 1)`` gives ``(..., n_scales)``.
    isr : float, ndarray or torch.Tensor
        Internal scale range, largest over smallest scale.

    Returns
    -------
    ndarray or torch.Tensor of shape (n_scales,) or broadcast
        A tensor (on the device and dtype of ``isr``, differentiable) when ``sigma_basis``
        or ``isr`` is a tensor, float64 NumPy values otherwise.

    Examples
    --------
    >>> log_uniform_scales(3, 2.0, 4.0).tolist()
    [2.0, 4.0, 8.0]
    """
    exponents = scale_exponents(n_scales)
    for value in (isr, sigma_basis):
        if hasattr(value, "new_tensor"):  # a torch.Tensor: stay differentiable
            exponents = value.new_tensor(exponents)
            return sigma_basis * isr**exponents
    return np.asarray(sigma_basis, dtype=np.float64) * np.asarray(isr, dtype=np.float64) ** exponents


def isr_from_gamma(gamma):
    """The internal scale range ``1 + gamma ** 2`` of Eq. 5 (for numbers, arrays or tensors)."""
    return 1.0 + gamma**2


def gamma_from_isr(isr):
    """The ``gamma >= 0`` for which ``1 + gamma ** 2 == isr`` (the inverse of Eq. 5)."""
    return math.sqrt(float(isr) - 1.0)


def authors_isr(gamma, n_scales):
    """The range ``(1 + gamma ** 2) ** (n_scales - 1)`` of the authors' code (learn mode 6).

    Each of the ``n_scales - 1`` steps multiplies the scale by ``1 + gamma ** 2`` (Eq. 5 per
    step), so at ``ISR = 3`` and three scales ``dISR / dgamma`` is ``sqrt(6 (sqrt(3) - 1))``,
    about 2.1 times that of Eq. 5.

    Examples
    --------
    >>> authors_isr(1.0, 3)
    4.0
    """
    return isr_from_gamma(gamma) ** (n_scales - 1)


def authors_gamma(isr, n_scales):
    """The ``gamma >= 0`` with ``(1 + gamma ** 2) ** (n_scales - 1) == isr`` (inverse of :func:`authors_isr`).

    Examples
    --------
    >>> authors_gamma(4.0, 3)
    1.0
    """
    return gamma_from_isr(float(isr) ** (1.0 / (n_scales - 1)))


def geometric_scales(sigma_basis, ratios):
    """Scales ``sigma_basis * [1, r_1, r_1 r_2, ...]``: each scale the previous one times its ratio.

    Parameters
    ----------
    sigma_basis : float, ndarray or torch.Tensor
        Smallest scale (a tensor of shape ``(1,)`` or a number).
    ratios : sequence of float, ndarray or 1-D torch.Tensor
        The ``N_S - 1`` ratios between neighbouring scales.

    Returns
    -------
    ndarray or torch.Tensor of shape (len(ratios) + 1,)
        Differentiable in both arguments when ``ratios`` is a tensor.

    Examples
    --------
    >>> geometric_scales(2.0, [2.0, 1.5]).tolist()
    [2.0, 4.0, 6.0]
    """
    if hasattr(ratios, "new_ones"):  # a torch.Tensor: stay differentiable
        import torch  # the NumPy path does not need torch

        return sigma_basis * torch.cat([ratios.new_ones(1), torch.cumprod(ratios, dim=0)])
    ratios = np.asarray(ratios, dtype=np.float64).reshape(-1)
    return np.asarray(sigma_basis, dtype=np.float64) * np.concatenate([[1.0], np.cumprod(ratios)])


def kernel_size(max_scale, kernel_extent=2.0):
    """Size of the square kernel that holds a basis up to ``max_scale`` (Eq. 6).

    ``l = 2 * ceil(kernel_extent * max_scale) + 1``.

    Parameters
    ----------
    max_scale : float or 0-d tensor
        The largest internal scale, in pixels. Must be positive and finite.
    kernel_extent : float, default=2.0
        ``k`` in Eq. 6: how many standard deviations of the Gaussian envelope the kernel
        covers on each side of its centre.

    Returns
    -------
    size : int
        An odd kernel size.

    Examples
    --------
    >>> kernel_size(2.0, kernel_extent=2.0)
    9
    >>> kernel_size(6.0, kernel_extent=2.0)
    25
    """
    max_scale = float(max_scale)
    kernel_extent = float(kernel_extent)
    if not (math.isfinite(max_scale) and max_scale > 0):
        raise ValueError(f"max_scale must be a positive finite number, got {max_scale!r}.")
    if not (math.isfinite(kernel_extent) and kernel_extent > 0):
        raise ValueError(f"kernel_extent must be a positive finite number, got {kernel_extent!r}.")
    # Round away float noise first, so that k * sigma = 4.000000001 gives 9, not 11.
    return 2 * math.ceil(round(kernel_extent * max_scale, 9)) + 1


def support_sizes(scales, kernel_extent=2.0):
    """Per-scale kernel sizes ``2 * ceil(kernel_extent * sigma_i) + 1`` (Eq. 6).

    Parameters
    ----------
    scales : sequence of float, ndarray or 1-D tensor
        Internal scales.
    kernel_extent : float, default=2.0
        ``k`` in Eq. 6.

    Returns
    -------
    sizes : list of int
        One odd size per scale. Reading a tensor's values costs one host-device
        synchronisation; this is the only one the layers need per forward pass.
    """
    if hasattr(scales, "detach"):
        scales = scales.detach().cpu().double().reshape(-1).tolist()
    return [kernel_size(scale, kernel_extent) for scale in np.asarray(scales, dtype=np.float64).reshape(-1)]

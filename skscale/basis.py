"""Hermite-Gaussian filter basis and the kernel-size rule.

The basis follows SESN (Sosnovik et al., 2019) as used by Basting et al. (paper §3):
products of probabilists' Hermite polynomials under a Gaussian envelope,

    psi_{n,m,sigma}(x, y) = c_{n,m} / sigma**2 * He_n(y / sigma) He_m(x / sigma)
                            * exp(-(x**2 + y**2) / (2 sigma**2)),

for every order pair with ``n + m <= max_order`` (``index_set="total"``) or
``max(n, m) <= max_order`` (``index_set="tensor"``).

Normalisation.  The factor ``1 / sigma**2`` makes the function at scale ``s * sigma`` the
function at scale ``sigma`` dilated by ``s`` *with its L1 mass kept*:
``psi_{s sigma}(x) = psi_sigma(x / s) / s**2``.  Convolution with the dilated kernel then
commutes with rescaling of the image (Eq. 1 of the paper), so responses at different
internal scales are directly comparable.  The constant ``c_{n,m} = 1 / (2 pi sqrt(n! m!))``
gives the order-0 function unit mass and keeps the higher orders at a similar magnitude;
it does not depend on ``sigma``.

This module holds pure torch functions; it imports nothing else from skscale.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from numpy.polynomial import hermite_e

from ._scales import kernel_size, support_sizes
from .utils.validation import Integer, Options, Real

__all__ = ["hermite_basis", "window_basis", "kernel_size", "support_sizes", "n_basis_functions"]

_INDEX_SETS = ("total", "tensor")
_MAX_ORDER = Integer(low=0)
_INDEX_SET = Options(_INDEX_SETS)
_SIZE = Integer(low=1, odd=True)
_KERNEL_EXTENT = Real(low=0, closed="neither", allow_none=True)


def _order_pairs(max_order, index_set):
    if index_set == "total":
        return [(n, total - n) for total in range(max_order + 1) for n in range(total + 1)]
    return [(n, m) for n in range(max_order + 1) for m in range(max_order + 1)]


def n_basis_functions(max_order=3, index_set="total"):
    """Number of basis functions ``F`` for a given ``max_order`` and ``index_set``.

    Examples
    --------
    >>> n_basis_functions(3, "total")
    10
    >>> n_basis_functions(6, "tensor")
    49
    """
    max_order = _MAX_ORDER.check(max_order, "max_order")
    return len(_order_pairs(max_order, _INDEX_SET.check(index_set, "index_set")))


@lru_cache(maxsize=64)
def _hermite_tables(max_order, index_set):
    """Monomial coefficients of He_0..He_max_order and the order pairs, as numpy arrays."""
    coefficients = np.zeros((max_order + 1, max_order + 1))
    for order in range(max_order + 1):
        unit = np.zeros(order + 1)
        unit[order] = 1.0
        coefficients[order, : order + 1] = hermite_e.herme2poly(unit)
    pairs = np.array(_order_pairs(max_order, index_set), dtype=np.int64)
    factorials = np.array([math.factorial(k) for k in range(max_order + 1)], dtype=np.float64)
    norms = 1.0 / (2.0 * math.pi * np.sqrt(factorials[pairs[:, 0]] * factorials[pairs[:, 1]]))
    return coefficients, pairs, norms


def hermite_basis(scales, size, max_order=3, *, index_set="total", kernel_extent=None):
    """Evaluate the Hermite-Gaussian basis at several scales on a square pixel grid.

    Parameters
    ----------
    scales : 1-D tensor or sequence of float, shape (S,)
        Internal scales (standard deviations of the Gaussian envelope, in pixels). The
        result is differentiable with respect to a tensor that requires grad.
    size : int
        Odd side length of the grid, centred at 0 (pixel centres ``-(size // 2) ..
        size // 2``).
    max_order : int, default=3
        Highest polynomial order.
    index_set : {"total", "tensor"}, default="total"
        ``"total"``: all order pairs with ``n + m <= max_order``
        (``(max_order + 1) (max_order + 2) / 2`` functions); ``"tensor"``: all pairs with
        ``max(n, m) <= max_order`` (``(max_order + 1)**2`` functions, SESN's choice).
    kernel_extent : float, optional
        When given, the function at scale ``sigma_i`` is cut to its own support
        ``2 * ceil(kernel_extent * sigma_i) + 1`` and zero-padded to ``size`` (the
        support of a smaller scale is never evaluated outside its window).

    Returns
    -------
    basis : tensor of shape (F, S, size, size)
        ``basis[f, s]`` is function ``f`` at scale ``scales[s]``; rows are ``y``, columns
        ``x``. The dtype and device are those of ``scales`` when it is a floating tensor,
        else float32 on the CPU.

    Examples
    --------
    >>> import torch
    >>> basis = hermite_basis(torch.tensor([1.0, 2.0]), size=9, max_order=2)
    >>> tuple(basis.shape)
    (6, 2, 9, 9)
    >>> round(float(basis[0, 0].sum()), 3)  # order 0 has unit mass (+-4 sigma window)
    1.0
    """
    scales = _as_scale_tensor(scales)
    max_order = _MAX_ORDER.check(max_order, "max_order")
    index_set = _INDEX_SET.check(index_set, "index_set")
    size = _SIZE.check(size, "size")
    kernel_extent = _KERNEL_EXTENT.check(kernel_extent, "kernel_extent")
    basis = _evaluate(scales, size, max_order, index_set)
    if kernel_extent is None:
        return basis
    sizes = support_sizes(scales, kernel_extent)
    if max(sizes) > size:
        raise ValueError(
            f"size={size} is smaller than the support {max(sizes)} that kernel_extent="
            f"{kernel_extent} needs for the largest scale; use kernel_size()."
        )
    return window_basis(basis, sizes)


def window_basis(basis, sizes):
    """Cut every scale's functions to its own support: zero outside the centred window.

    The one windowing of the basis (Eq. 6 per scale): :func:`hermite_basis` with
    ``kernel_extent`` and the scale convolutions both use it. Inside its window a
    function keeps its values exactly, so cropping the result to a scale's support gives
    the basis evaluated on that support alone.

    Parameters
    ----------
    basis : tensor of shape (F, S, size, size)
        A basis on a centred grid, e.g. from :func:`hermite_basis`.
    sizes : sequence of int
        Odd support of every scale, at most ``size`` (e.g. :func:`support_sizes`).

    Returns
    -------
    windowed : tensor of shape (F, S, size, size)

    Examples
    --------
    >>> basis = hermite_basis([1.0, 2.0], size=9, max_order=1)
    >>> windowed = window_basis(basis, [5, 9])
    >>> bool(windowed[:, 0, 0].abs().sum() == 0), bool((windowed[:, 1] == basis[:, 1]).all())
    (True, True)
    """
    size = int(basis.shape[-1])
    if len(sizes) != basis.shape[1] or any(own > size or own % 2 == 0 for own in sizes):
        raise ValueError(
            f"sizes must hold one odd support of at most {size} per scale ({basis.shape[1]}), got {sizes!r}."
        )
    if all(own == size for own in sizes):
        return basis
    return basis * _window_mask(tuple(int(own) for own in sizes), size, basis.dtype, basis.device)


@lru_cache(maxsize=256)
def _window_mask(sizes, size, dtype, device):
    """(S, size, size) mask, 1 where ``|offset from the centre| <= own // 2`` on both axes.

    Cached per device, so that windowing on a GPU costs no host-to-device copy.
    """
    distance = np.abs(np.arange(size) - size // 2)
    inside = distance[None, :] <= (np.asarray(sizes) // 2)[:, None]
    with torch.inference_mode(False):  # usable in a later backward pass (see _device_tables)
        return torch.as_tensor(inside[:, :, None] & inside[:, None, :], dtype=dtype, device=device)


def _as_scale_tensor(scales):
    if not isinstance(scales, torch.Tensor):
        scales = torch.as_tensor(np.asarray(scales, dtype=np.float64).reshape(-1), dtype=torch.float32)
    elif not scales.is_floating_point():
        scales = scales.to(torch.float32)
    if scales.dim() != 1 or scales.numel() == 0:
        raise ValueError(f"scales must be a non-empty 1-D sequence, got shape {tuple(scales.shape)}.")
    return scales


@lru_cache(maxsize=64)
def _device_tables(max_order, index_set, dtype, device):
    """The tables of :func:`_hermite_tables` as tensors, copied to ``device`` once.

    Cached so that building a basis on a GPU costs no host-to-device copy (each would
    synchronise the device) after the first call.
    """
    coefficients, pairs, norms = _hermite_tables(max_order, index_set)
    # Normal tensors even when first called under torch.inference_mode(): inference
    # tensors could not be saved for a later backward pass.
    with torch.inference_mode(False):
        return (
            torch.as_tensor(coefficients, dtype=dtype, device=device),
            torch.as_tensor(pairs, device=device),
            torch.as_tensor(norms, dtype=dtype, device=device),
        )


def _evaluate(scales, size, max_order, index_set):
    """Vectorised evaluation: no Python loop over functions, orders or grid points."""
    dtype, device = scales.dtype, scales.device
    coefficients, pairs, norms = _device_tables(max_order, index_set, dtype, device)

    half = size // 2
    grid = torch.arange(-half, half + 1, dtype=dtype, device=device)
    # u[s, i] = x_i / sigma_s: the grid in units of the scale.
    u = grid[None, :] / scales[:, None]
    powers = u[..., None] ** torch.arange(max_order + 1, dtype=dtype, device=device)
    # One-dimensional Hermite functions He_n(u) exp(-u^2/2) / sigma: (S, size, orders).
    hermite = powers @ coefficients.T
    one_d = hermite * torch.exp(-0.5 * u * u)[..., None] / scales[:, None, None]
    rows = one_d[..., pairs[:, 0]]  # (S, size, F): order n along y
    cols = one_d[..., pairs[:, 1]]  # (S, size, F): order m along x
    basis = torch.einsum("syf,sxf->fsyx", rows, cols)
    return basis * norms[:, None, None, None]

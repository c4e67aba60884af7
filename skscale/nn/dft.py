"""The Fourier correlation of small feature maps through matrix DFTs.

:func:`~skscale.nn.functional.fft_correlate_same` pays for every 2-D transform a call into
the FFT library and a change of layout between its batch-major spectra and the
frequency-major ones of the spectral product. On the small maps of a deep layer (7 x 7 or
14 x 14 pixels) those dominate. Here the transforms are matrix products instead: the
discrete Fourier transform of an ``H x W`` image on an ``N_H x N_W`` periodic grid, half
spectrum along the columns, is two real matrix products (one per axis), and so is its
inverse restricted to the image's pixels. Real and imaginary parts stay separate real
tensors, laid out frequency-major from the start, so the whole correlation is a chain of
large real matrix products that autograd differentiates as it is.

The grid is the smallest one without wrap-around
(:func:`~skscale.nn.planning.dft_grid_size`); it need not be a fast FFT size. The result
equals ``F.conv2d`` with "same" padding up to floating-point error.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from .planning import dft_grid_size

__all__ = ["dft_kernel_spectrum", "dft_correlate_spectrum", "dft_correlate_same"]


def _angles(n_points, grid, offset):
    """``2 pi (t + offset) k / grid`` for ``t < n_points`` (rows) and ``k < grid`` (columns)."""
    return 2 * np.pi * np.outer(np.arange(n_points) + offset, np.arange(grid)) / grid


# The matrices are numpy arrays, made tensors by _as: constants for torch.jit.trace and
# torch.export.
@lru_cache(maxsize=64)
def _transform_matrices(rows, columns, grid, offset, sign):
    """Matrices of ``sum_t x[t] exp(sign i theta)`` of a ``rows x columns`` array on ``grid`` (float64).

    Pixel ``t`` sits at grid index ``t + offset``. ``along_columns`` (``2 K, columns``) maps
    every row to the real and imaginary parts of its half spectrum (``K = N_W // 2 + 1``);
    ``along_rows`` (``2 N_H, 2 rows``, inputs ordered (row, part)) finishes the complex
    transform along the rows, giving (part, frequency) rows.
    """
    grid_h, grid_w = grid
    half = grid_w // 2 + 1
    columns_angle = _angles(columns, grid_w, offset)[:, :half]
    along_columns = np.concatenate([np.cos(columns_angle).T, sign * np.sin(columns_angle).T])
    rows_angle = _angles(rows, grid_h, offset).T  # (N_H, rows)
    cosine, sine = np.cos(rows_angle), sign * np.sin(rows_angle)
    # (cos + i sin)(a + i b) = (cos a - sin b) + i (sin a + cos b)
    along_rows = np.stack([np.stack([cosine, -sine], -1), np.stack([sine, cosine], -1)])
    return along_columns, along_rows.reshape(2 * grid_h, 2 * rows)


@lru_cache(maxsize=64)
def _inverse_matrices(rows, columns, grid):
    """Matrices of the inverse transform at the image's pixels (float64).

    ``along_rows`` (``2 rows, 2 N_H``): the complex inverse along the rows, from (part,
    frequency) to (row, part); ``along_columns`` (``columns, 2 K``): the real inverse of
    every row's half spectrum, each frequency ``0 < k < N_W / 2`` counted twice (for its
    mirror image), with the ``1 / (N_H N_W)`` of the inverse.
    """
    grid_h, grid_w = grid
    half = grid_w // 2 + 1
    rows_angle = _angles(rows, grid_h, 0)  # (rows, N_H)
    cosine, sine = np.cos(rows_angle), np.sin(rows_angle)
    along_rows = np.stack([np.stack([cosine, -sine], 1), np.stack([sine, cosine], 1)], 1)
    weights = np.full(half, 2.0)
    weights[0] = 1.0
    if grid_w % 2 == 0:
        weights[-1] = 1.0
    columns_angle = _angles(columns, grid_w, 0)[:, :half]
    along_columns = np.concatenate([np.cos(columns_angle) * weights, -np.sin(columns_angle) * weights], 1)
    return along_rows.reshape(2 * rows, 2 * grid_h), along_columns / (grid_h * grid_w)


@lru_cache(maxsize=64)
def _kernel_matrices(size, grid):
    """The transform of a kernel into the blocks of :func:`dft_kernel_spectrum` (float64).

    The conjugate spectrum of the kernel centred at the origin (``exp(+i theta)``), whose
    rows-step gives the blocks ``Re K, -Im K, Im K, Re K`` one after the other.
    """
    along_columns, along_rows = _transform_matrices(size, size, grid, -(size // 2), 1.0)
    real, imaginary = np.split(along_rows, 2)
    return along_columns, np.concatenate([real, -imaginary, imaginary, real])


@lru_cache(maxsize=128)
def _tensors(make, arguments, dtype, device):
    return tuple(torch.tensor(matrix, dtype=dtype, device=device) for matrix in make(*arguments))


def _as(make, arguments, like):
    """``make(*arguments)`` (numpy matrices) as tensors of ``like``'s dtype and device.

    Kept for the next call, so that no host-to-device copy is made; while a graph is
    recorded they are made afresh, so that every recording of it holds the same constants.
    """
    if torch.jit.is_tracing() or torch.compiler.is_compiling():
        return _tensors.__wrapped__(make, arguments, like.dtype, like.device)
    return _tensors(make, arguments, like.dtype, like.device)


def _spectrum(values, make, arguments, grid):
    """``(rows, columns, n)`` real arrays -> ``(parts, N_H (N_W // 2 + 1), n)``, parts, frequencies, arrays.

    The matrices are ``make(*arguments)``; ``parts`` is 2 (real and imaginary) for
    :func:`_transform_matrices`, 4 for the blocks of :func:`_kernel_matrices`.
    """
    rows, _, n = values.shape
    along_columns, along_rows = _as(make, arguments, values)
    half = grid[1] // 2 + 1
    partial = torch.matmul(along_columns, values)  # (rows, 2 K, n): one product per row
    spectrum = torch.matmul(along_rows, partial.reshape(2 * rows, half * n))
    return spectrum.view(along_rows.shape[0] // grid[0], grid[0] * half, n)


def dft_kernel_spectrum(kernel, height, width):
    """The kernel of a "same" correlation as the matrix :func:`dft_correlate_spectrum` multiplies by.

    Parameters
    ----------
    kernel : tensor of shape (C_out, C_in, l, l), ``l`` odd
    height, width : int
        Size of the images it will be correlated with.

    Returns
    -------
    factors : tensor of shape (2, F, 2 C_in, C_out)
        For every frequency ``f`` of the grid (:func:`~skscale.nn.planning.dft_grid_size`), the real and the
        imaginary part of the product with the conjugate kernel spectrum as real matrices
        acting on ``[Re X, Im X]``.
    """
    out_channels, in_channels, size, _ = (int(n) for n in kernel.shape)
    grid = dft_grid_size(int(height), int(width), size)
    n_frequencies = grid[0] * (grid[1] // 2 + 1)
    values = kernel.permute(2, 3, 1, 0).reshape(size, size, in_channels * out_channels)
    # (Re X + i Im X)(Re K + i Im K): real part [Re X, Im X] @ [Re K; -Im K], imaginary
    # [Im K; Re K]; the four blocks come out of one transform (_kernel_matrices).
    blocks = _spectrum(values, _kernel_matrices, (size, grid), grid)
    blocks = blocks.view(2, 2, n_frequencies, in_channels, out_channels).transpose(1, 2)
    return blocks.reshape(2, n_frequencies, 2 * in_channels, out_channels)


def dft_correlate_spectrum(x, factors, grid):
    """ "Same" correlation of ``x`` with a kernel given by :func:`dft_kernel_spectrum`.

    Parameters
    ----------
    x : tensor of shape (B, C_in, H, W)
    factors : tensor of shape (2, F, 2 C_in, C_out)
        From :func:`dft_kernel_spectrum` for images of ``H x W`` pixels.
    grid : tuple of int
        ``(N_H, N_W)``, the kernel's :func:`~skscale.nn.planning.dft_grid_size` on these images.

    Returns
    -------
    out : tensor of shape (B, C_out, H, W)
    """
    batch = x.shape[0]  # symbolic in a graph recorded with a dynamic batch
    in_channels, height, width = (int(n) for n in x.shape[1:])
    out_channels = int(factors.shape[-1])
    spectrum = _spectrum(
        x.permute(2, 3, 0, 1).reshape(height, width, batch * in_channels),
        _transform_matrices,
        (height, width, grid, 0, -1.0),
        grid,
    )
    # (F, B, [Re, Im] x C_in): the rows of the product at every frequency.
    half = grid[1] // 2 + 1
    n_frequencies = grid[0] * half
    rows = spectrum.view(2, n_frequencies, batch, in_channels).permute(1, 2, 0, 3)
    product = torch.matmul(rows.reshape(n_frequencies, batch, 2 * in_channels), factors)  # (2, F, B, C_out)
    along_rows, along_columns = _as(_inverse_matrices, (height, width, grid), x)
    partial = torch.matmul(along_rows, product.view(2 * grid[0], half * batch * out_channels))
    image = torch.matmul(along_columns, partial.view(height, 2 * half, batch * out_channels))
    return image.view(height, width, batch, out_channels).permute(2, 3, 0, 1).contiguous()


def dft_correlate_same(x, kernel):
    """Cross-correlation with zero "same" padding through matrix DFTs (stride 1, no groups).

    Equal to ``F.conv2d(x, kernel, padding=l // 2)`` up to floating-point error and
    differentiable in ``x`` and ``kernel``; faster than the direct path and the FFT path
    for many channels on small images.

    Parameters
    ----------
    x : tensor of shape (B, C_in, H, W)
    kernel : tensor of shape (C_out, C_in, l, l), ``l`` odd

    Returns
    -------
    out : tensor of shape (B, C_out, H, W)

    Examples
    --------
    >>> import torch
    >>> x, k = torch.randn(2, 3, 7, 7, dtype=torch.float64), torch.randn(4, 3, 5, 5, dtype=torch.float64)
    >>> bool(torch.allclose(dft_correlate_same(x, k), torch.nn.functional.conv2d(x, k, padding=2)))
    True
    """
    factors = dft_kernel_spectrum(kernel, x.shape[-2], x.shape[-1])
    return dft_correlate_spectrum(
        x, factors, dft_grid_size(int(x.shape[-2]), int(x.shape[-1]), kernel.shape[-1])
    )

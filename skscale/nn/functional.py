"""Low-level correlation used by the scale convolutions: direct and FFT paths.

Both paths compute the same thing, a cross-correlation (``F.conv2d`` semantics, no kernel
flip) of an image batch with square odd kernels under zero "same" padding
``size // 2``, with optional stride and channel groups:

    out[b, o, i, j] = sum_{c, u, v} x[b, c, s i + u - p, s j + v - p] k[o, c, u, v].

The direct path is ``torch.nn.functional.conv2d``. The FFT path multiplies spectra: its
cost hardly depends on the kernel size, which pays off for the large kernels that large
internal scales need (the kernel support grows with the largest scale, Eq. 6 of the
paper). Which path runs is planned in :mod:`skscale.nn.planning`
(:func:`~skscale.nn.planning.select_conv_impl`, from the shapes and from whether a
backward pass follows); its public names are importable from here as well.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from ..utils.validation import Integer, Options
from .dft import dft_correlate_spectrum, dft_kernel_spectrum
from .planning import (
    CONV_IMPLS,
    conv_cost_estimates,
    dft_grid_size,
    fft_grid_size,
    fft_split,
    next_fast_size,
    select_conv_impl,
    uses_matrix_dft,
)
from .spectra import SpectrumGrid, cropped_image, images_per_call, padded_spectrum, rfft2_in_pieces

__all__ = [
    "correlate_same",
    "cut_to_reach",
    "fft_correlate_same",
    "kernel_spectrum",
    "correlate_spectrum",
    "KernelSpectrum",
    # Planning, re-exported from skscale.nn.planning where it is declared.
    "uses_matrix_dft",
    "CONV_IMPLS",
    "next_fast_size",
    "select_conv_impl",
    "fft_split",
    "conv_cost_estimates",
]

_CONV_IMPL = Options(CONV_IMPLS)
_POSITIVE = Integer(low=1)


def _check_shapes(x, kernel, stride, groups):
    if x.dim() != 4 or kernel.dim() != 4:
        raise ValueError(f"x and kernel must be 4-D, got shapes {tuple(x.shape)} and {tuple(kernel.shape)}.")
    size = kernel.shape[-1]
    if kernel.shape[-2] != size or size % 2 == 0:
        raise ValueError(f"kernel must be square with an odd size, got shape {tuple(kernel.shape)}.")
    _POSITIVE.check(stride, "stride")
    _POSITIVE.check(groups, "groups")
    if x.shape[1] % groups or kernel.shape[0] % groups or kernel.shape[1] * groups != x.shape[1]:
        raise ValueError(
            f"groups={groups} does not fit x with {x.shape[1]} channels and a kernel of shape "
            f"{tuple(kernel.shape)} (expected (C_out, C_in // groups, l, l))."
        )


def fft_correlate_same(x, kernel, stride=1, groups=1):
    """Cross-correlation with zero "same" padding computed with ``torch.fft``.

    Equal to ``F.conv2d(x, kernel, stride=stride, padding=l // 2, groups=groups)`` up to
    floating-point error, and differentiable with respect to ``x`` and ``kernel``. The
    image is zero-padded to ``next_fast_size(H + l // 2)`` (likewise for ``W``), the
    kernel is centred at the origin of that periodic grid, and the correlation is the
    inverse transform of ``X * conj(K)``, summed over input channels per group. Stride
    subsamples the full-resolution result. Half-precision inputs are computed in float32.
    On small maps (:func:`uses_matrix_dft`) the transforms are matrix products on the
    smallest grid without wrap-around (:func:`~skscale.nn.dft.dft_correlate_same`).

    Parameters
    ----------
    x : tensor of shape (B, C_in, H, W)
    kernel : tensor of shape (C_out, C_in // groups, l, l), ``l`` odd
    stride : int, default=1
    groups : int, default=1

    Returns
    -------
    out : tensor of shape (B, C_out, ceil(H / stride), ceil(W / stride))

    Examples
    --------
    >>> import torch
    >>> x, k = torch.randn(2, 3, 20, 20, dtype=torch.float64), torch.randn(4, 3, 7, 7, dtype=torch.float64)
    >>> reference = torch.nn.functional.conv2d(x, k, padding=3)
    >>> bool(torch.allclose(fft_correlate_same(x, k), reference))
    True
    """
    _check_shapes(x, kernel, stride, groups)
    result_dtype = torch.result_type(x, kernel)
    spectrum = kernel_spectrum(
        kernel.to(_compute_dtype(result_dtype)), x.shape[-2], x.shape[-1], groups, stride
    )
    return correlate_spectrum(x, spectrum, stride).to(result_dtype)


def _compute_dtype(dtype):
    return dtype if dtype in (torch.float32, torch.float64) else torch.float32


class KernelSpectrum(NamedTuple):
    """A kernel transformed for :func:`correlate_spectrum` on images of one size.

    Attributes
    ----------
    factors : tensor
        Complex: ``(1, g, C_out/g, F)`` with one input channel per group (a broadcast
        product) and ``(g, F, C_in/g, C_out/g)`` otherwise (a matrix per group and
        frequency); ``F`` counts the frequencies of the ``fft_size`` grid. Real, on small
        maps (:func:`uses_matrix_dft`): the ``(2, F, 2 C_in, C_out)`` matrices of
        :func:`~skscale.nn.dft.dft_kernel_spectrum`.
    fft_size : tuple of int
        ``(N_H, N_W)``, the periodic grid (:func:`~skscale.nn.planning.fft_grid_size`).
    out_channels : int
    groups : int
    """

    factors: torch.Tensor
    fft_size: tuple
    out_channels: int
    groups: int


def kernel_spectrum(kernel, height, width, groups=1, stride=1):
    """The spectrum of ``kernel`` for :func:`correlate_spectrum` on ``height x width`` images.

    What :func:`fft_correlate_same` computes from the kernel on every call; a caller that
    correlates many batches with one kernel (a network in inference) can compute it once.

    Parameters
    ----------
    kernel : tensor of shape (C_out, C_in // groups, l, l), ``l`` odd, float32 or float64
    height, width : int
        Size of the images it will be correlated with.
    groups : int, default=1
    stride : int, default=1
        The stride of the correlation (the matrix-DFT spectrum of small maps,
        :func:`uses_matrix_dft`, serves stride 1 only).

    Returns
    -------
    spectrum : KernelSpectrum
    """
    # Python ints (a recorded graph, torch.jit.trace, sees sizes as tensors): the FFT grid is static.
    out_channels, group_in, size, _ = (int(n) for n in kernel.shape)
    if uses_matrix_dft(height, width, size, groups, stride):
        factors = dft_kernel_spectrum(kernel, height, width)
        return KernelSpectrum(factors, dft_grid_size(int(height), int(width), size), out_channels, groups)
    half = size // 2
    fft_h, fft_w = fft_grid_size(int(height), int(width), size)
    # Correlation with k is convolution with the flipped kernel, whose spectrum is
    # conj(K): flip, then put tap (u, v) at ((u - p) mod N_H, (v - p) mod N_W), i.e.
    # centre the kernel at the origin of the periodic grid.
    padded = F.pad(kernel.flip(-2, -1), (0, fft_w - size, 0, fft_h - size))
    spectrum_k = rfft2_in_pieces(torch.roll(padded, shifts=(-half, -half), dims=(-2, -1)), (fft_h, fft_w))
    n_freq = fft_h * (fft_w // 2 + 1)
    group_out = out_channels // groups
    if group_in == 1:
        factors = spectrum_k.reshape(1, groups, group_out, n_freq)
    else:
        # Laid out (g, F, C_out/g, C_in/g) by one 2-D transpose and used transposed:
        # cheaper than a 4-D permutation.
        factors = spectrum_k.reshape(groups, group_out * group_in, n_freq).transpose(1, 2).contiguous()
        factors = factors.view(groups, n_freq, group_out, group_in).transpose(-1, -2)
    return KernelSpectrum(factors, (fft_h, fft_w), out_channels, groups)


def correlate_spectrum(x, spectrum, stride=1):
    """:func:`fft_correlate_same` of ``x`` with a kernel given by :func:`kernel_spectrum`.

    Parameters
    ----------
    x : tensor of shape (B, C_in, H, W)
        ``H x W`` must be the size the spectrum was computed for.
    spectrum : KernelSpectrum
    stride : int, default=1

    Returns
    -------
    out : tensor of shape (B, C_out, ceil(H / stride), ceil(W / stride)), in the
        spectrum's real dtype.
    """
    if not spectrum.factors.is_complex():
        if stride != 1:
            raise ValueError(f"a matrix-DFT spectrum correlates with stride 1, got stride={stride}.")
        return dft_correlate_spectrum(x.to(spectrum.factors.dtype), spectrum.factors, spectrum.fft_size)
    x = x.to(spectrum.factors.real.dtype)
    in_channels, height, width = (int(n) for n in x.shape[1:])
    size = spectrum.fft_size
    per_call = images_per_call(size, x.device)
    if per_call is None:
        return _correlate_whole_batch(x, spectrum, stride)
    groups, out_channels = spectrum.groups, spectrum.out_channels
    image = (-(-height // stride), -(-width // stride))
    if in_channels == groups:
        # One input channel per group: a broadcast product, no sum; the spectra stay batch-major.
        spectrum_x = padded_spectrum(x, SpectrumGrid(size, None, 1, (height, width), per_call))
        product = spectrum_x.reshape(x.shape[0], groups, 1, size[0] * (size[1] // 2 + 1)) * spectrum.factors
        product = product.reshape(x.shape[0], out_channels, size[0], size[1] // 2 + 1)
        return cropped_image(product, SpectrumGrid(size, None, stride, image, per_call))
    # Per group and frequency, a (B, C_in/g) @ (C_in/g, C_out/g) complex matrix product on
    # frequency-major spectra (g, F, B, C/g): the transforms write and read that layout piece
    # by piece, so no whole spectrum, and no gradient of one, is ever permuted.
    spectrum_x = padded_spectrum(x, SpectrumGrid(size, groups, 1, (height, width), per_call))
    product = torch.matmul(spectrum_x, spectrum.factors)
    return cropped_image(product, SpectrumGrid(size, groups, stride, image, per_call))


def _correlate_whole_batch(x, spectrum, stride):
    """:func:`correlate_spectrum` with whole-batch transforms: off the CPU and in recorded graphs."""
    in_channels, height, width = (int(n) for n in x.shape[1:])
    batch = x.shape[0]  # symbolic in a graph recorded with a dynamic batch
    fft_h, fft_w = spectrum.fft_size
    groups, out_channels = spectrum.groups, spectrum.out_channels
    n_freq = fft_h * (fft_w // 2 + 1)
    spectrum_x = torch.fft.rfft2(x, s=(fft_h, fft_w)).reshape(batch, groups, in_channels // groups, n_freq)
    if in_channels == groups:  # a broadcast product
        product = spectrum_x * spectrum.factors
    else:  # a matrix product per group and frequency
        product = torch.matmul(spectrum_x.permute(1, 3, 0, 2).contiguous(), spectrum.factors)
        product = product.permute(2, 0, 3, 1)
    product = product.reshape(batch, out_channels, fft_h, fft_w // 2 + 1)
    return torch.fft.irfft2(product, s=(fft_h, fft_w))[..., :height:stride, :width:stride].contiguous()


def cut_to_reach(kernel, height, width):
    """``kernel`` (square, odd, in its last two axes) cut to the taps that can reach an image.

    In a "same" correlation of an ``H x W`` image the output at a pixel reads the input at
    offsets up to ``max(H, W) - 1`` from it: the taps farther out meet only the zero
    padding. A kernel wider than ``2 max(H, W) - 1`` is cut to its centre of that size,
    which leaves every output and gradient as it was and spares the computation the
    padding taps (a large kernel on the small maps of a deep layer).

    Examples
    --------
    >>> import torch
    >>> tuple(cut_to_reach(torch.ones(4, 2, 23, 23), 7, 7).shape)
    (4, 2, 13, 13)
    >>> tuple(cut_to_reach(torch.ones(4, 2, 5, 5), 7, 7).shape)
    (4, 2, 5, 5)
    """
    size, limit = kernel.shape[-1], 2 * max(int(height), int(width)) - 1
    if size <= limit:
        return kernel
    start = (size - limit) // 2
    return kernel[..., start : start + limit, start : start + limit]


def correlate_same(x, kernel, stride=1, groups=1, impl="direct", bias=None):
    """Cross-correlate with zero "same" padding (``padding = size // 2``, odd kernels).

    Taps that cannot reach the image are dropped first (:func:`cut_to_reach`).

    Parameters
    ----------
    x, kernel, stride, groups
        As for :func:`fft_correlate_same`.
    impl : {"direct", "fft", "auto"}, default="direct"
        ``"direct"``: ``F.conv2d``; ``"fft"``: :func:`fft_correlate_same`; ``"auto"``:
        whichever :func:`select_conv_impl` picks for these shapes (with
        ``backward=True`` when gradients are enabled and ``x`` or ``kernel`` requires
        them).
    bias : tensor of shape (C_out,), optional
        Added to every output channel (inside ``F.conv2d`` on the direct path).

    Returns
    -------
    out : tensor
        As for :func:`fft_correlate_same`: ``(B, C_out, ceil(H / stride), ceil(W / stride))``.

    Examples
    --------
    >>> import torch
    >>> out = correlate_same(torch.randn(1, 2, 16, 16), torch.randn(3, 2, 5, 5), stride=2)
    >>> tuple(out.shape)
    (1, 3, 8, 8)
    """
    kernel = cut_to_reach(kernel, x.shape[-2], x.shape[-1])
    if _CONV_IMPL.check(impl, "impl") == "auto":
        backward = torch.is_grad_enabled() and (x.requires_grad or kernel.requires_grad)
        impl = select_conv_impl(
            kernel.shape[-1],
            x.shape[-2],
            x.shape[-1],
            x.shape[1],
            kernel.shape[0],
            groups=groups,
            stride=stride,
            batch_size=x.shape[0],
            backward=backward,
        )
    if impl == "fft":
        out = fft_correlate_same(x, kernel, stride=stride, groups=groups)
        return out if bias is None else out + bias.view(1, -1, 1, 1)
    return F.conv2d(x, kernel, bias=bias, stride=stride, padding=kernel.shape[-1] // 2, groups=groups)

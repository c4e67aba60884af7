"""Low-level correlation used by the scale convolutions: direct and FFT paths.

Both paths compute the same thing, a cross-correlation (``F.conv2d`` semantics, no kernel
flip) of an image batch with square odd kernels under zero "same" padding
``size // 2``, with optional stride and channel groups:

    out[b, o, i, j] = sum_{c, u, v} x[b, c, s i + u - p, s j + v - p] k[o, c, u, v].

The direct path is ``torch.nn.functional.conv2d``. The FFT path multiplies spectra: its
cost hardly depends on the kernel size, which pays off for the large kernels that large
internal scales need (the kernel support grows with the largest scale, Eq. 6 of the
paper). :func:`select_conv_impl` chooses between them from the shapes and from whether a
backward pass follows.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

import torch
import torch.nn.functional as F

from ..utils.validation import Integer, Options

__all__ = [
    "CONV_IMPLS",
    "correlate_same",
    "fft_correlate_same",
    "next_fast_size",
    "select_conv_impl",
    "fft_split",
    "conv_cost_estimates",
]

CONV_IMPLS = ("auto", "direct", "fft")
_CONV_IMPL = Options(CONV_IMPLS)
_POSITIVE = Integer(low=1)

# Cost model of select_conv_impl (see conv_cost_estimates), in units of one multiply-add
# of the direct convolution, for training (forward + backward) and for inference.
# Fitted to timings of both paths over the 125 shapes of `python -m benchmarks.speed --calibrate`
# on one core of an Intel Xeon (AVX-512, AMX), torch 2.13 CPU (oneDNN direct convolution, MKL
# FFT), float32; see benchmarks/results/speed.md. The earlier fit on an AMD EPYC, (25, 10, 3.5)
# and (25, 12, 1), chose paths 1.055 and 1.064 times slower than the faster one on that grid here
# (these constants: 1.031 and 1.017).
# Keys: backward pass or not. Values: (cost per transform point and log2 of the size,
# cost per complex multiply-add of the spectral product, direct slowdown for l >= 15).
_COST_MODEL = {
    True: (35.0, 6.0, 3.5),
    False: (25.0, 40.0, 1.0),
}
# oneDNN switches to a slower algorithm for kernels of this size and more.
_DIRECT_LARGE_KERNEL = 15
# Largest number of points (images x N_H x N_W) that one CPU FFT call transforms.
_CPU_POINTS_PER_CALL = 2**19


def next_fast_size(n):
    """Smallest ``m >= n`` whose only prime factors are 2, 3 and 5.

    FFT libraries (pocketfft, MKL, cuFFT) are fastest on such sizes; the FFT path pads
    every image to them.

    Parameters
    ----------
    n : int
        A positive integer.

    Returns
    -------
    m : int

    Examples
    --------
    >>> next_fast_size(181), next_fast_size(192), next_fast_size(7)
    (192, 192, 8)
    """
    n = _POSITIVE.check(n, "n")
    best = 1 << max(n - 1, 0).bit_length()  # the next power of two is always a candidate
    power5 = 1
    while power5 < best:
        power35 = power5
        while power35 < best:
            # Smallest power of two that lifts power35 to at least n.
            quotient = -(-n // power35)
            candidate = power35 << max(quotient - 1, 0).bit_length()
            best = min(best, candidate)
            power35 *= 3
        power5 *= 5
    return best


def _fft_sizes(height, width, size):
    """FFT grid for "same" correlation: no wrap-around reaches an output pixel.

    With the kernel centred at index 0 of a periodic grid of side ``n``, the output at
    ``i`` reads input indices ``i - p .. i + p`` modulo ``n``; they all fall on the image
    or on zero padding when ``n >= H + p``. ``n >= size`` keeps the kernel unfolded.
    """
    half = size // 2
    return next_fast_size(max(height + half, size)), next_fast_size(max(width + half, size))


@lru_cache(maxsize=1024)
def _image_taps(length, size, stride):
    """Kernel taps that fall on the image, summed over the output positions of one axis.

    ``H_out * l`` for kernels much smaller than the image; less when the kernel reaches
    past the image border (the direct path skips the zero padding).
    """
    half = size // 2
    return sum(min(i + half, length - 1) - max(i - half, 0) + 1 for i in range(0, length, stride))


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


def conv_cost_estimates(
    kernel_size, height, width, in_channels, out_channels, *, groups=1, stride=1, batch_size=1, backward=True
):
    """Modelled cost of the direct and of the FFT correlation, in direct multiply-adds.

    The model behind :func:`select_conv_impl`:

    - direct: ``B * C_out * (C_in / groups) * T_H * T_W`` multiply-adds, where ``T_H`` is
      the number of kernel taps that fall on the image summed over the output rows
      (``H_out * l`` when the kernel is much smaller than the image), times ``d`` for
      ``l >= 15`` (oneDNN's slower algorithm for large kernels on the CPU). oneDNN's
      forward skips the taps in the zero padding, its two backward convolutions do not:
      in training a kernel wider than the image (``l > min(H, W)``, mostly padding)
      counts ``(T_H * T_W + 2 * H_out * l * W_out * l) / 3`` (on 7-pixel maps a 13-pixel
      kernel's forward took 1.9 times a 7-pixel one's, forward + backward 3.4 times);
    - FFT: ``a * N_H * N_W * log2(N_H * N_W)`` for each of the ``B * C_in`` input,
      ``B * C_out`` output and ``C_out * C_in / groups`` kernel transforms, plus
      ``b * B * C_out * (C_in / groups) * N_H * (N_W // 2 + 1)`` for the spectral
      products; ``N_H = next_fast_size(H + l // 2)``, likewise ``N_W``.

    ``a``, ``b`` and ``d`` were fitted to forward + backward timings (``backward=True``)
    and to forward timings (``backward=False``) of both paths over 125 shapes (1 to 63
    input channels, 7 to 168 pixels, kernels 3 to 41) on one core of an Intel Xeon with
    torch 2.13: ``a, b, d = 35, 6, 3.5`` for training and ``25, 40, 1`` for inference,
    values on a grid that minimise the mean slowdown of the chosen path against the faster
    one (1.03 for training, 1.02 for inference; see ``benchmarks/results/speed.md``). The
    backward's padding taps for kernels wider than the image, added after the fit, lower
    the training mean on that grid from 1.030 to 1.028 (on the 7- and 14-pixel maps with
    kernels of 9 and more from 1.049 to 1.038) and change no choice on larger maps.

    Parameters
    ----------
    kernel_size : int
        Odd kernel size ``l``.
    height, width : int
        Input image size.
    in_channels, out_channels : int
        Channels of the input and of the output.
    groups : int, default=1
        Channel groups, as in ``F.conv2d``.
    stride : int, default=1
    batch_size : int, default=1
    backward : bool, default=True
        Whether a backward pass follows (training) or not (inference).

    Returns
    -------
    direct, fft : float
        Modelled costs of the two paths.

    Examples
    --------
    >>> direct, fft = conv_cost_estimates(25, 168, 168, 1, 16, batch_size=8)
    >>> bool(fft < direct)
    True
    """
    transform_cost, product_cost, large_kernel_factor = _COST_MODEL[bool(backward)]
    fft_h, fft_w = _fft_sizes(height, width, kernel_size)
    pairs = out_channels * (in_channels // groups)
    taps = _image_taps(height, kernel_size, stride) * _image_taps(width, kernel_size, stride)
    if backward and kernel_size > min(height, width):
        rows, columns = -(-height // stride), -(-width // stride)
        taps = (taps + 2 * rows * columns * kernel_size**2) / 3
    direct = batch_size * pairs * taps
    if kernel_size >= _DIRECT_LARGE_KERNEL:
        direct *= large_kernel_factor
    transforms = batch_size * (in_channels + out_channels) + pairs
    points = fft_h * fft_w * math.log2(fft_h * fft_w)
    products = batch_size * pairs * fft_h * (fft_w // 2 + 1)
    fft = transform_cost * points * transforms + product_cost * products
    return float(direct), float(fft)


def select_conv_impl(
    kernel_size, height, width, in_channels, out_channels, *, groups=1, stride=1, batch_size=1, backward=True
):
    """Choose ``"direct"`` or ``"fft"`` for a "same" correlation of the given shape.

    The ``conv_impl="auto"`` rule (:func:`fft_split`) for a single correlation: the FFT
    path is chosen exactly when its modelled cost (:func:`conv_cost_estimates`) is below
    that of the direct path; kernels of size 1 and 3 always go direct. With the constants
    fitted on a CPU, training (``backward=True``) takes the FFT from kernel 15 with one
    input channel on 56 to 168 pixels (17 on 28; oneDNN's direct weight gradient slows down
    2 to 3.5 times from kernel 15 on) and from kernel 7 to 9 with tens of channels on 14 to
    56 pixels; inference keeps one-channel kernels direct up to 23 pixels on 168-pixel
    images and always on 28-pixel ones, and takes the FFT from kernel 9 to 13 with tens of
    channels on 14 to 56 pixels.

    Parameters
    ----------
    kernel_size, height, width, in_channels, out_channels, groups, stride, batch_size, backward
        As for :func:`conv_cost_estimates`.

    Returns
    -------
    impl : {"direct", "fft"}

    Examples
    --------
    >>> select_conv_impl(9, 168, 168, 1, 16, batch_size=8)
    'direct'
    >>> select_conv_impl(25, 168, 168, 1, 16, batch_size=8)
    'fft'
    """
    # One call of `groups` "scales", each with its own slice of the channels.
    n_direct = fft_split(
        [kernel_size],
        [groups],
        height,
        width,
        in_channels // groups,
        out_channels // groups,
        grouped=True,
        stride=stride,
        batch_size=batch_size,
        backward=backward,
    )
    return "direct" if n_direct else "fft"


def fft_split(
    kernel_sizes,
    n_scales,
    height,
    width,
    in_channels,
    out_channels,
    *,
    grouped=False,
    stride=1,
    batch_size=1,
    backward=True,
):
    """The ``conv_impl="auto"`` rule: how many correlation calls go direct, the rest through one FFT.

    A scale convolution runs one correlation call per group of scales with equal kernel
    support. Ordered by kernel size, the plans "the first ``j`` calls direct, the others
    merged into one FFT call at the largest of their kernel sizes" (``j = 0 .. n_calls``)
    are compared under the cost model of :func:`conv_cost_estimates`; the cheapest wins,
    ties go to the plan with more direct calls, and a plan whose FFT call holds a kernel
    of size 1 or 3 is never chosen. Deterministic for given shapes. A single call
    (:func:`select_conv_impl`) is the case ``n_calls = 1``.

    Parameters
    ----------
    kernel_sizes : sequence of int
        Odd kernel size of every call, in increasing order.
    n_scales : sequence of int
        Number of scales every call correlates at once.
    height, width : int
        Input image size.
    in_channels, out_channels : int
        Input channels each scale reads and output channels each scale writes.
    grouped : bool, default=False
        ``True``: every scale reads its own ``in_channels`` (one channel group per scale,
        as :class:`~skscale.nn.ScaleConvH2H`); ``False``: all scales read the same input
        (:class:`~skscale.nn.ScaleConvT2H`).
    stride, batch_size, backward
        As for :func:`conv_cost_estimates`.

    Returns
    -------
    n_direct : int
        The first ``n_direct`` calls go direct, the others through the FFT.

    Examples
    --------
    >>> fft_split([9, 25], [1, 1], 168, 168, 1, 16, batch_size=8)
    1
    """

    def estimates(size, n):
        return conv_cost_estimates(
            size,
            height,
            width,
            in_channels=in_channels * (n if grouped else 1),
            out_channels=out_channels * n,
            groups=n if grouped else 1,
            stride=stride,
            batch_size=batch_size,
            backward=backward,
        )

    direct = [estimates(size, n)[0] for size, n in zip(kernel_sizes, n_scales)]
    costs = []
    for cut in range(len(direct) + 1):
        cost = sum(direct[:cut])
        if cut < len(direct):
            # The FFT call: every remaining scale at once, on the largest kernel.
            fft = estimates(kernel_sizes[-1], sum(n_scales[cut:]))[1]
            cost = math.inf if kernel_sizes[cut] <= 3 else cost + fft
        costs.append(cost)
    return min(range(len(costs)), key=lambda cut: (costs[cut], -cut))


def fft_correlate_same(x, kernel, stride=1, groups=1):
    """Cross-correlation with zero "same" padding computed with ``torch.fft``.

    Equal to ``F.conv2d(x, kernel, stride=stride, padding=l // 2, groups=groups)`` up to
    floating-point error, and differentiable with respect to ``x`` and ``kernel``. The
    image is zero-padded to ``next_fast_size(H + l // 2)`` (likewise for ``W``), the
    kernel is centred at the origin of that periodic grid, and the correlation is the
    inverse transform of ``X * conj(K)``, summed over input channels per group. Stride
    subsamples the full-resolution result. Half-precision inputs are computed in float32.

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
    spectrum = _kernel_spectrum(kernel.to(_compute_dtype(result_dtype)), x.shape[-2], x.shape[-1], groups)
    return _correlate_spectrum(x, spectrum, stride).to(result_dtype)


def _compute_dtype(dtype):
    return dtype if dtype in (torch.float32, torch.float64) else torch.float32


class _KernelSpectrum(NamedTuple):
    """A kernel transformed for :func:`_correlate_spectrum` on images of one size.

    ``factors`` is ``(1, g, C_out/g, F)`` with one input channel per group (a broadcast
    product) and ``(g, F, C_in/g, C_out/g)`` otherwise (a matrix per group and frequency);
    ``F`` counts the frequencies of the ``fft_size`` grid.
    """

    factors: torch.Tensor
    fft_size: tuple
    out_channels: int
    groups: int


def _kernel_spectrum(kernel, height, width, groups=1):
    """The spectrum of ``kernel`` for :func:`_correlate_spectrum` on ``height x width`` images.

    What :func:`fft_correlate_same` computes from the kernel on every call; a caller that
    correlates many batches with one kernel (a network in inference) can compute it once.

    Parameters
    ----------
    kernel : tensor of shape (C_out, C_in // groups, l, l), ``l`` odd, float32 or float64
    height, width : int
        Size of the images it will be correlated with.
    groups : int, default=1

    Returns
    -------
    spectrum : _KernelSpectrum
    """
    # Python ints (a recorded graph, torch.jit.trace, sees sizes as tensors): the FFT grid is static.
    out_channels, group_in, size, _ = (int(n) for n in kernel.shape)
    half = size // 2
    fft_h, fft_w = _fft_sizes(int(height), int(width), size)
    # Correlation with k is convolution with the flipped kernel, whose spectrum is
    # conj(K): flip, then put tap (u, v) at ((u - p) mod N_H, (v - p) mod N_W), i.e.
    # centre the kernel at the origin of the periodic grid.
    padded = F.pad(kernel.flip(-2, -1), (0, fft_w - size, 0, fft_h - size))
    spectrum_k = _rfft2(torch.roll(padded, shifts=(-half, -half), dims=(-2, -1)), (fft_h, fft_w))
    n_freq = fft_h * (fft_w // 2 + 1)
    group_out = out_channels // groups
    if group_in == 1:
        factors = spectrum_k.reshape(1, groups, group_out, n_freq)
    else:
        # Laid out (g, F, C_out/g, C_in/g) by one 2-D transpose and used transposed:
        # cheaper than a 4-D permutation.
        factors = spectrum_k.reshape(groups, group_out * group_in, n_freq).transpose(1, 2).contiguous()
        factors = factors.view(groups, n_freq, group_out, group_in).transpose(-1, -2)
    return _KernelSpectrum(factors, (fft_h, fft_w), out_channels, groups)


def _correlate_spectrum(x, spectrum, stride=1):
    """:func:`fft_correlate_same` of ``x`` with a kernel given by :func:`_kernel_spectrum`.

    Parameters
    ----------
    x : tensor of shape (B, C_in, H, W)
        ``H x W`` must be the size the spectrum was computed for.
    spectrum : _KernelSpectrum
    stride : int, default=1

    Returns
    -------
    out : tensor of shape (B, C_out, ceil(H / stride), ceil(W / stride)), in the
        spectrum's real dtype.
    """
    x = x.to(spectrum.factors.real.dtype)
    in_channels, height, width = (int(n) for n in x.shape[1:])
    size = spectrum.fft_size
    per_call = _images_per_call(size, x.device)
    if per_call is None:
        return _correlate_spectrum_whole(x, spectrum, stride)
    groups, out_channels = spectrum.groups, spectrum.out_channels
    image = (-(-height // stride), -(-width // stride))
    if in_channels == groups:
        # One input channel per group: a broadcast product, no sum; the spectra stay batch-major.
        spectrum_x = _padded_spectrum(x, _Grid(size, None, 1, (height, width), per_call))
        product = spectrum_x.reshape(x.shape[0], groups, 1, size[0] * (size[1] // 2 + 1)) * spectrum.factors
        product = product.reshape(x.shape[0], out_channels, size[0], size[1] // 2 + 1)
        return _cropped_image(product, _Grid(size, None, stride, image, per_call))
    # Per group and frequency, a (B, C_in/g) @ (C_in/g, C_out/g) complex matrix product on
    # frequency-major spectra (g, F, B, C/g): the transforms write and read that layout piece
    # by piece, so no whole spectrum, and no gradient of one, is ever permuted.
    spectrum_x = _padded_spectrum(x, _Grid(size, groups, 1, (height, width), per_call))
    product = torch.matmul(spectrum_x, spectrum.factors)
    return _cropped_image(product, _Grid(size, groups, stride, image, per_call))


def _correlate_spectrum_whole(x, spectrum, stride):
    """:func:`_correlate_spectrum` with whole-batch transforms: off the CPU and in recorded graphs."""
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


_COMPLEX = {torch.float32: torch.complex64, torch.float64: torch.complex128}


def _column_weights(fft_w, dtype, device):
    """Weights of the half-spectrum columns in ``irfft2``'s adjoint.

    ``irfft2`` counts every column ``0 < k < N_W / 2`` twice (with its mirror image) and
    the columns ``0`` and ``N_W / 2`` (even ``N_W``) once, so the adjoint of
    ``rfft2`` is ``N_H N_W irfft2(G w)`` with ``w = 1/2`` on the paired columns and ``1``
    on the others, and the adjoint of ``irfft2`` is ``rfft2(g) / (N_H N_W w)``.
    """
    weights = torch.full((fft_w // 2 + 1,), 0.5, dtype=dtype, device=device)
    weights[0] = 1.0
    if fft_w % 2 == 0:
        weights[-1] = 1.0
    return weights


def _pieces(batch, per_image, per_call):
    """Batch slices of at most ``per_call`` 2-D transforms (at least one image each)."""
    step = max(1, per_call // per_image)
    return [slice(start, min(start + step, batch)) for start in range(0, batch, step)]


def _spectrum_layout(piece, groups):
    """A ``(b, C, N_H, N_W')`` spectrum piece seen in the layout of the whole result."""
    if groups is None:
        return piece
    b, channels = piece.shape[:2]
    return piece.reshape(b, groups, channels // groups, -1).permute(1, 3, 0, 2)


class _Grid(NamedTuple):
    """Where the images of the FFT path lie on its periodic grid, and how spectra are laid out.

    ``image`` pixel ``(i, j)`` sits at grid point ``(stride i, stride j)`` of the zero
    ``size`` grid; spectra are ``(B, C, N_H, N_W // 2 + 1)`` (``groups=None``) or
    frequency-major ``(g, N_H (N_W // 2 + 1), B, C / g)``; at most ``per_call`` 2-D
    transforms go into one call.
    """

    size: tuple
    groups: int | None
    stride: int
    image: tuple
    per_call: int


def _padded_spectrum(x, grid, weights=None, scale=1.0):
    """``scale * weights * rfft2`` of ``x`` ``(B, C, *grid.image)`` placed on the grid."""
    return _PaddedSpectrum.apply(x, grid, weights, scale)


def _cropped_image(spectrum, grid, weights=None, scale=1.0):
    """``scale * irfft2(weights * spectrum)`` at the grid points of the image: ``(B, C, *grid.image)``."""
    return _CroppedImage.apply(spectrum, grid, weights, scale)


def _grid_points(tensor, grid):
    """The grid points ``(stride i, stride j)`` of the image's pixels: a strided view of ``tensor``."""
    rows, columns = grid.image
    return tensor[
        ..., : (rows - 1) * grid.stride + 1 : grid.stride, : (columns - 1) * grid.stride + 1 : grid.stride
    ]


class _GridTransform(torch.autograd.Function):
    """Shared by the two linear transforms: what the backward and tangent passes need."""

    @staticmethod
    def setup_context(ctx, inputs, output):
        _, ctx.grid, ctx.weights, ctx.scale = inputs


class _PaddedSpectrum(_GridTransform):
    """:func:`_padded_spectrum`, written piece by piece into one result.

    A few images at a time are placed in a reused zero buffer that the caches hold and
    transformed (a 2-D transform of many images at once is several times slower per point
    on a CPU), then copied into the result's layout. ``weights`` (per column) and
    ``scale`` serve the adjoint of :class:`_CroppedImage`: each function's backward pass is
    the other one. Both are linear, so a tangent goes through the function itself.
    """

    @staticmethod
    def forward(x, grid, weights, scale):
        batch, channels = x.shape[:2]
        fft_h, fft_w = grid.size
        dtype = _COMPLEX[x.dtype]  # float32 or float64: the callers cast to these
        if grid.groups is None:
            out = x.new_empty((batch, channels, fft_h, fft_w // 2 + 1), dtype=dtype)
        else:
            out = x.new_empty(
                (grid.groups, fft_h * (fft_w // 2 + 1), batch, channels // grid.groups), dtype=dtype
            )
        pieces = _pieces(batch, channels, grid.per_call)
        if not pieces:  # an empty batch (MKL refuses to transform no image)
            return out
        padded = x.new_zeros((pieces[0].stop, channels, fft_h, fft_w))
        window = _grid_points(padded, grid)
        factor = None if weights is None and scale == 1 else (1 if weights is None else weights) * scale
        for piece in pieces:
            n = piece.stop - piece.start
            window[:n].copy_(x[piece])
            transformed = torch.fft.rfft2(padded[:n])
            if factor is not None:
                transformed.mul_(factor)
            target = out[piece] if grid.groups is None else out[:, :, piece]
            target.copy_(_spectrum_layout(transformed, grid.groups))
        return out

    @staticmethod
    def backward(ctx, grad):
        grid = ctx.grid
        half = _column_weights(grid.size[1], grad.real.dtype, grad.device)
        weights = half if ctx.weights is None else half * ctx.weights
        scale = ctx.scale * grid.size[0] * grid.size[1]
        return _cropped_image(grad, grid, weights, scale), None, None, None

    @staticmethod
    def jvp(ctx, tangent, *_):
        return _padded_spectrum(tangent, ctx.grid, ctx.weights, ctx.scale)

    @staticmethod
    def vmap(info, in_dims, x, grid, weights, scale):
        # The mapped axis joins the batch.
        x = x.movedim(in_dims[0], 0)
        spectrum = _padded_spectrum(x.reshape(-1, *x.shape[2:]), grid, weights, scale)
        if grid.groups is None:
            return spectrum.view(x.shape[0], x.shape[1], *spectrum.shape[1:]), 0
        return spectrum.view(*spectrum.shape[:2], x.shape[0], x.shape[1], spectrum.shape[3]), 2


class _CroppedImage(_GridTransform):
    """:func:`_cropped_image`, piece by piece; the inverse of :class:`_PaddedSpectrum`.

    The inverse for ``weights=None`` and ``scale=1`` (and the adjoint with the weights
    and scale of :meth:`_PaddedSpectrum.backward`): it reads that function's layout.
    """

    @staticmethod
    def forward(spectrum, grid, weights, scale):
        fft_h, fft_w = grid.size
        rows, columns = grid.image
        if grid.groups is None:
            batch, channels = spectrum.shape[:2]
        else:
            batch, channels = spectrum.shape[2], spectrum.shape[0] * spectrum.shape[3]
        out = spectrum.new_empty((batch, channels, rows, columns), dtype=spectrum.real.dtype)
        pieces = _pieces(batch, channels, grid.per_call)
        if not pieces:
            return out
        buffer = None
        if grid.groups is not None or weights is not None:
            buffer = spectrum.new_empty((pieces[0].stop, channels, fft_h, fft_w // 2 + 1))
        for piece in pieces:
            n = piece.stop - piece.start
            source = spectrum[piece] if grid.groups is None else spectrum[:, :, piece]
            if buffer is not None:
                _spectrum_layout(buffer[:n], grid.groups).copy_(source)
                source = buffer[:n]
                if weights is not None:
                    source.mul_(weights)
            image = torch.fft.irfft2(source, s=grid.size)
            window = _grid_points(image, grid)
            if scale == 1:
                out[piece].copy_(window)
            else:
                torch.mul(window, scale, out=out[piece])
        return out

    @staticmethod
    def backward(ctx, grad):
        grid = ctx.grid
        half = _column_weights(grid.size[1], grad.dtype, grad.device)
        weights = 1 / half if ctx.weights is None else ctx.weights / half
        scale = ctx.scale / (grid.size[0] * grid.size[1])
        return _padded_spectrum(grad, grid, weights, scale), None, None, None

    @staticmethod
    def jvp(ctx, tangent, *_):
        return _cropped_image(tangent, ctx.grid, ctx.weights, ctx.scale)

    @staticmethod
    def vmap(info, in_dims, spectrum, grid, weights, scale):
        # The mapped axis joins the batch axis (0 batch-major, 2 frequency-major).
        batch_axis = 0 if grid.groups is None else 2
        spectrum = spectrum.movedim(in_dims[0], batch_axis)
        mapped, batch = spectrum.shape[batch_axis : batch_axis + 2]
        image = _cropped_image(spectrum.flatten(batch_axis, batch_axis + 1), grid, weights, scale)
        return image.view(mapped, batch, *image.shape[1:]), 0


def _images_per_call(shape, device):
    """How many 2-D transforms of ``shape`` one FFT call takes (all of them off the CPU).

    On the CPU a batched 2-D transform slows down three- to ten-fold per point once the
    batch outgrows the caches (measured with MKL, 2-core EPYC: about 2 ns per point up to
    half a million points per call, 6 to 28 ns beyond), so the batch is cut into calls
    of at most ``_CPU_POINTS_PER_CALL`` points.
    """
    # A recorded graph transforms in one call (its batch may be symbolic).
    if device.type != "cpu" or torch.jit.is_tracing() or torch.compiler.is_compiling():
        return None
    return max(1, _CPU_POINTS_PER_CALL // (shape[0] * shape[1]))


def _rfft2(tensor, size):
    """``torch.fft.rfft2(tensor, s=size)`` over the last two axes, in cache-sized calls."""
    per_call = _images_per_call(size, tensor.device)
    leading = tensor.shape[:-2]
    flat = tensor.reshape(-1, *tensor.shape[-2:])
    if per_call is None or flat.shape[0] <= per_call:
        return torch.fft.rfft2(tensor, s=size)
    pieces = [torch.fft.rfft2(piece, s=size) for piece in flat.split(per_call)]
    return torch.cat(pieces).reshape(*leading, *pieces[0].shape[-2:])


def correlate_same(x, kernel, stride=1, groups=1, impl="direct", bias=None):
    """Cross-correlate with zero "same" padding (``padding = size // 2``, odd kernels).

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

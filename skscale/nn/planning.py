"""Planning of the correlation path: the direct-vs-FFT cost model and the one "auto" rule.

A "same" correlation (:func:`skscale.nn.functional.correlate_same`) runs either directly
(``F.conv2d``, whose cost grows with the kernel area) or through the FFT
(:func:`skscale.nn.functional.fft_correlate_same`, whose cost hardly depends on the kernel
size). :func:`conv_cost_estimates` models the cost of both from the shapes,
:func:`select_conv_impl` picks the cheaper path of one correlation and :func:`fft_split`,
the ``conv_impl="auto"`` rule of the scale convolutions, decides which of a layer's
correlation calls go through one shared FFT call. Everything here is arithmetic on
shapes: no tensor is touched.
"""

from __future__ import annotations

import math
from functools import lru_cache

from ..utils.validation import Integer

__all__ = [
    "CONV_IMPLS",
    "next_fast_size",
    "fft_grid_size",
    "dft_grid_size",
    "uses_matrix_dft",
    "conv_cost_estimates",
    "select_conv_impl",
    "fft_split",
]

#: The correlation paths a caller can ask for: ``"auto"`` lets :func:`fft_split` choose.
CONV_IMPLS = ("auto", "direct", "fft")
_POSITIVE = Integer(low=1)

# Constants of the cost model (see conv_cost_estimates), in units of one multiply-add of
# the direct convolution. Keys: whether a backward pass follows. Values: (cost per
# transform point and log2 of the transform size, cost per complex multiply-add of the
# spectral product, slowdown of the direct path for kernels of _DIRECT_LARGE_KERNEL and more).
_COST_MODEL = {
    True: (35.0, 6.0, 3.5),
    False: (25.0, 40.0, 1.0),
}
# oneDNN switches to a slower algorithm for kernels of this size and more.
_DIRECT_LARGE_KERNEL = 15
# The FFT path on small maps (uses_matrix_dft): transforms by matrix products on grids up to
# this side, and its cost constants (per real multiply-add of the spectral product, per
# multiply-add of the transforms), keyed by whether a backward pass follows.
_MATRIX_DFT_GRID = 24
_MATRIX_DFT_COST = {True: (5.0, 5.0), False: (3.5, 1.0)}


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


def dft_grid_size(height, width, kernel_size):
    """The smallest periodic grid ``(N_H, N_W)`` on which a "same" correlation does not wrap around.

    With the kernel centred at index 0 of a periodic grid of side ``n``, the output at
    ``i`` reads the input indices ``i - p .. i + p`` modulo ``n`` (``p = l // 2``); they
    all fall on the image or on zero padding when ``n >= H + p``, so no wrap-around
    reaches an output pixel; ``n >= l`` keeps the kernel unfolded. The grid of the
    matrix-DFT correlation (:mod:`skscale.nn.dft`).

    Parameters
    ----------
    height, width : int
        Image size.
    kernel_size : int
        Odd kernel size ``l``.

    Returns
    -------
    grid_height, grid_width : int

    Examples
    --------
    >>> dft_grid_size(7, 7, 13)
    (13, 13)
    """
    half = kernel_size // 2
    return max(height + half, kernel_size), max(width + half, kernel_size)


def fft_grid_size(height, width, kernel_size):
    """Side lengths ``(N_H, N_W)`` of the periodic grid of the FFT correlation.

    Those of :func:`dft_grid_size` (no wrap-around), each rounded up to a
    :func:`next_fast_size`; arguments as there.

    Examples
    --------
    >>> fft_grid_size(168, 168, 25)
    (180, 180)
    """
    grid_h, grid_w = dft_grid_size(height, width, kernel_size)
    return next_fast_size(grid_h), next_fast_size(grid_w)


def uses_matrix_dft(height, width, kernel_size, groups=1, stride=1):
    """Whether the FFT path transforms by matrix products (:mod:`skscale.nn.dft`) for this shape.

    On maps small enough that :func:`dft_grid_size` has sides of at most 24 (14 x 14 maps
    with kernels up to 21, 7 x 7 maps with any kernel), without channel groups or stride:
    there a call into the FFT library per transform and the change of spectrum layout
    dominate, and the matrix DFT takes a fraction of their time.

    Parameters
    ----------
    height, width, kernel_size : int
        Image size and odd kernel size ``l``.
    groups, stride : int, default=1
        Channel groups and stride of the correlation.

    Returns
    -------
    bool

    Examples
    --------
    >>> uses_matrix_dft(14, 14, 15), uses_matrix_dft(28, 28, 15), uses_matrix_dft(14, 14, 15, groups=2)
    (True, False, False)
    """
    if groups != 1 or stride != 1:
        return False
    return max(dft_grid_size(int(height), int(width), int(kernel_size))) <= _MATRIX_DFT_GRID


def _matrix_dft_cost(kernel_size, height, width, in_channels, out_channels, batch_size, backward):
    """Modelled cost of the matrix-DFT correlation (see :func:`conv_cost_estimates`)."""
    product_cost, transform_cost = _MATRIX_DFT_COST[bool(backward)]
    grid_h, grid_w = dft_grid_size(height, width, kernel_size)
    half = grid_w // 2 + 1
    pairs = in_channels * out_channels
    # Two real matrix products per transform: along the columns, then along the rows.
    per_image = 2 * height * half * (width + 2 * grid_h)
    per_kernel = 2 * kernel_size * half * (kernel_size + 2 * grid_h)
    transforms = batch_size * (in_channels + out_channels) * per_image + pairs * per_kernel
    products = 4 * batch_size * pairs * grid_h * half
    return product_cost * products + transform_cost * transforms


@lru_cache(maxsize=1024)
def _image_taps(length, size, stride):
    """Kernel taps that fall on the image, summed over the output positions of one axis.

    ``H_out * l`` for kernels much smaller than the image; less when the kernel reaches
    past the image border (the direct path skips the zero padding).
    """
    half = size // 2
    return sum(min(i + half, length - 1) - max(i - half, 0) + 1 for i in range(0, length, stride))


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
      in training a kernel as wide as the image or wider (``l >= min(H, W)``; at
      ``l = H = W = 7``, 43 % of the backward's taps are padding) counts
      ``(T_H * T_W + 2 * H_out * l * W_out * l) / 3``;
    - FFT: ``a * N_H * N_W * log2(N_H * N_W)`` for each of the ``B * C_in`` input,
      ``B * C_out`` output and ``C_out * C_in / groups`` kernel transforms, plus
      ``b * B * C_out * (C_in / groups) * N_H * (N_W // 2 + 1)`` for the spectral
      products; ``N_H = next_fast_size(H + l // 2)``, likewise ``N_W``.

    ``a``, ``b`` and ``d`` are ``35, 6, 3.5`` for training (``backward=True``, forward +
    backward) and ``25, 40, 1`` for inference (``backward=False``): the values on a grid
    that minimise the mean slowdown of the chosen path against the faster one over the
    shapes of ``python -m benchmarks.speed --calibrate`` (1 to 63 input channels, 7 to 168
    pixels, kernels 3 to 41; see ``benchmarks/results/speed.md``).

    On small maps, where the FFT path transforms by matrix products
    (:func:`uses_matrix_dft`), its cost is instead ``p * 4 B C_out (C_in / groups) F`` for
    the real products (``F = N_H (N_W // 2 + 1)`` frequencies of :func:`dft_grid_size`) plus
    ``t`` times the multiply-adds of the transforms, ``2 H K (W + 2 N_H)`` for each of the
    ``B (C_in + C_out)`` images and ``2 l K (l + 2 N_H)`` for each of the
    ``C_out C_in`` kernels (``K = N_W // 2 + 1``), with ``p, t`` = ``5, 5`` for training and
    ``3.5, 1`` for inference: fitted to the ``sesn`` network's layers on 14 and 7 pixels
    (32 and 63 input channels, kernels 7 to 15, batches of 64 and 128) on one CPU thread.

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
    fft_h, fft_w = fft_grid_size(height, width, kernel_size)
    pairs = out_channels * (in_channels // groups)
    taps = _image_taps(height, kernel_size, stride) * _image_taps(width, kernel_size, stride)
    if backward and kernel_size >= min(height, width):
        rows, columns = -(-height // stride), -(-width // stride)
        taps = (taps + 2 * rows * columns * kernel_size**2) / 3
    direct = batch_size * pairs * taps
    if kernel_size >= _DIRECT_LARGE_KERNEL:
        direct *= large_kernel_factor
    if uses_matrix_dft(height, width, kernel_size, groups, stride):
        fft = _matrix_dft_cost(kernel_size, height, width, in_channels, out_channels, batch_size, backward)
        return float(direct), float(fft)
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
    input channel on 56 to 168 pixels (17 on 28; oneDNN's direct weight gradient slows
    down from kernel 15 on, the factor ``d`` of :func:`conv_cost_estimates`) and, with
    tens of channels, from kernel 7 on 7 to 28 pixels and from 11 to 15 on 56 to 168;
    inference keeps one-channel kernels direct up to 23 pixels on 168-pixel images, 27 on
    56-pixel ones and always on 28-pixel ones, and with tens of channels takes the FFT
    from kernel 5 on 7 and 14 pixels (on 7-pixel maps up to kernel 15 or 17 only), 9 on
    28 and 11 on 56.

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

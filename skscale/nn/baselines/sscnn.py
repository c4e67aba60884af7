"""SS-CNN: locally scale-invariant convolutions with scale-steerable log-radial filters.

Ghosh, R. and Gupta, A. K. (2019). Scale Steerable Filters for Locally Scale-Invariant
Convolutional Neural Networks. ICML 2019 Workshop on Theoretical Physics for Deep
Learning (arXiv:1906.03861).

The kernels are combinations of complex log-radial harmonics

    psi_{k, phi0}(r, phi) = A_{phi0}(phi) / r * exp(i (k' log r + phase)),  k' = 2 pi k / log_period,

with ``A`` a Gaussian window around the orientation ``phi0`` (and ``phi0 + pi``). They
are *steerable under rescaling*: ``psi(x / s) = s exp(-i k' log s) psi(x)``, so the kernel
``Re sum_f c_f psi_f`` stretched by ``s`` (and divided by ``s``) is the same combination
with every coefficient turned by ``exp(-i k' log s)``: a shift in log-radius is a phase.
A layer correlates its input with the kernel at several scales, each from the same
coefficients (:func:`steer_log_radial`), and keeps the maximum over the scales.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ...utils.validation import Integer, Real, Sequence
from ..blocks import SESN_LAYOUT, check_input_shape, mnist_blocks
from ..functional import correlate_same
from ..heads import mnist_head
from ..registry import register_architecture

__all__ = ["LOG_PERIOD", "log_radial_basis", "steer_log_radial", "SteerableScaleConv2d", "SSCNN"]

_POSITIVE_INT = Integer(low=1)
_ODD_SIZE = Integer(low=1, odd=True)
_POSITIVE = Real(low=0, closed="neither")
_POSITIVE_REALS = Sequence(_POSITIVE)

#: ``log`` of the corner radius of a 13-pixel grid (``6 sqrt(2)``): one period of the
#: ``k = 1`` harmonic in log-radius, as in the SESN code's 28-pixel SS-CNN.
LOG_PERIOD = math.log(6 * math.sqrt(2))


def _effective_frequencies(frequencies, log_period):
    return [2 * math.pi * k / log_period for k in frequencies]


def log_radial_basis(
    size,
    frequencies=(0.5, 1.0, 2.0),
    n_orientations=9,
    *,
    sigma_phi=math.pi / 16,
    phase=-math.pi / 4,
    log_period=LOG_PERIOD,
    scale=1.0,
    dtype=torch.float64,
):
    """The log-radial harmonics on a ``size x size`` grid, stretched by ``scale``.

    ``psi_{k, phi0}(x / scale)`` for every frequency ``k`` and orientation
    ``phi0 = pi j / n_orientations``, on the pixels of the disc ``|x| <= size // 2``
    about the centre pixel; zero outside it and at the centre (where ``1 / r`` and the
    angle are undefined).

    Parameters
    ----------
    size : int
        Odd side of the grid.
    frequencies : sequence of float, default=(0.5, 1.0, 2.0)
        Cycles per ``log_period`` of log-radius.
    n_orientations : int, default=9
    sigma_phi : float, default=pi/16
        Width of the angular window.
    phase : float, default=-pi/4
    log_period : float, default=LOG_PERIOD
    scale : float, default=1.0
        Stretch of the functions (the grid and its disc are not stretched).
    dtype : torch.dtype, default=torch.float64
        Real dtype; the result has the matching complex dtype.

    Returns
    -------
    basis : complex tensor of shape (len(frequencies), n_orientations, size, size)

    Examples
    --------
    >>> basis = log_radial_basis(7)
    >>> tuple(basis.shape), basis.dtype
    ((3, 9, 7, 7), torch.complex128)
    """
    size = _ODD_SIZE.check(size, "size")
    frequencies = _POSITIVE_REALS.check(frequencies, "frequencies")
    n_orientations = _POSITIVE_INT.check(n_orientations, "n_orientations")
    sigma_phi = _POSITIVE.check(sigma_phi, "sigma_phi")
    log_period = _POSITIVE.check(log_period, "log_period")
    scale = _POSITIVE.check(scale, "scale")
    half = size // 2
    offsets = torch.arange(-half, half + 1, dtype=dtype)
    rows, cols = torch.meshgrid(-offsets, offsets, indexing="ij")  # y up, x right
    radius = torch.hypot(rows, cols)
    inside = (radius <= half) & (radius > 0)
    angle = torch.atan2(rows, cols)
    orientations = torch.arange(n_orientations, dtype=dtype) * (math.pi / n_orientations)
    # Distance between orientations (angles modulo pi), in [0, pi / 2].
    difference = (
        torch.remainder(angle[None] - orientations[:, None, None] + math.pi / 2, math.pi) - math.pi / 2
    )
    window = torch.exp(-(difference**2) / (2 * sigma_phi**2))  # (P, size, size)
    stretched = torch.where(inside, radius / scale, torch.ones_like(radius))
    wavenumbers = torch.tensor(_effective_frequencies(frequencies, log_period), dtype=dtype)
    argument = wavenumbers[:, None, None] * torch.log(stretched) + phase  # (K, size, size)
    radial = torch.polar(torch.where(inside, 1.0 / stretched, torch.zeros_like(radius)), argument)
    return radial[:, None] * window[None].to(radial.dtype)


def steer_log_radial(coefficients, frequencies=(0.5, 1.0, 2.0), scale=1.0, *, log_period=LOG_PERIOD):
    """Coefficients of the kernel stretched by ``scale``: ``c exp(-i k' log scale)``.

    ``Re sum c' psi(x)`` with the returned ``c'`` equals ``Re sum c psi(x / scale) / scale``
    wherever both are defined (see :func:`log_radial_basis`).

    Parameters
    ----------
    coefficients : complex tensor of shape (..., K, P)
        One per frequency (axis -2) and orientation.
    frequencies : sequence of float
    scale : float
    log_period : float, default=LOG_PERIOD

    Returns
    -------
    complex tensor, the shape of ``coefficients``
    """
    wavenumbers = torch.tensor(
        _effective_frequencies(frequencies, log_period),
        dtype=coefficients.real.dtype,
        device=coefficients.device,
    )
    turn = torch.polar(torch.ones_like(wavenumbers), -wavenumbers * math.log(scale))
    return coefficients * turn[:, None]


class SteerableScaleConv2d(nn.Module):
    """Scale-steered correlation, max over scales (Ghosh and Gupta, 2019): -> (B, O, H, W).

    The kernel at scale ``s_j = kernel_sizes[j] / base_size`` is ``Re sum_f c'_f
    psi_f`` on a ``kernel_sizes[j]`` grid, with ``c' = steer_log_radial(c, s_j)``: the one
    set of learned complex coefficients ``c`` (``weight_real + i weight_imag``, per
    output channel, input channel, frequency and orientation) stretched to every scale.
    The layer correlates the input with every scale's kernel ("same" zero padding) and
    keeps the maximum over the scales, plus the bias.

    Differences from the SESN benchmark code: the orientations are ``pi j / 9`` for
    ``j < 9`` (theirs repeat 0 as pi); there is no unused ``const_real`` parameter; the
    coefficients are initialised so that the base-scale kernel has the variance of a
    Kaiming-initialised one; each scale's functions live on the disc of its own grid
    (theirs on the square cut from the 13-pixel grid's disc, so a 5 x 5 kernel has 12
    pixels here against their 24); the functions are not normalised one by one (theirs:
    the real and imaginary parts of each to unit norm on the 13-pixel grid); and the layer
    has a bias (``bias=True``, 180 parameters in :class:`SSCNN`), which theirs has not.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_sizes : sequence of odd int, default=(5, 7, 9, 11, 13)
        The kernel's support at every scale.
    base_size : int, default=11
        The support of scale 1.
    frequencies : sequence of float, default=(0.5, 1.0, 2.0)
    n_orientations : int, default=9
    sigma_phi, phase, log_period : float
        As for :func:`log_radial_basis`.
    bias : bool, default=True

    Attributes
    ----------
    weight_real, weight_imag : Parameter of shape (O, C, K, P)
    bias : Parameter of shape (O,) or None
    scales : list of float

    Examples
    --------
    >>> layer = SteerableScaleConv2d(1, 4)
    >>> x = torch.randn(2, 1, 28, 28)
    >>> tuple(layer(x).shape), tuple(layer.scale_responses(x).shape)
    ((2, 4, 28, 28), (2, 4, 5, 28, 28))
    """

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_sizes=(5, 7, 9, 11, 13),
        base_size=11,
        frequencies=(0.5, 1.0, 2.0),
        n_orientations=9,
        *,
        sigma_phi=math.pi / 16,
        phase=-math.pi / 4,
        log_period=LOG_PERIOD,
        bias=True,
    ):
        super().__init__()
        self.in_channels = _POSITIVE_INT.check(in_channels, "in_channels")
        self.out_channels = _POSITIVE_INT.check(out_channels, "out_channels")
        self.kernel_sizes = Sequence(_ODD_SIZE).check(kernel_sizes, "kernel_sizes")
        self.base_size = _ODD_SIZE.check(base_size, "base_size")
        self.frequencies = _POSITIVE_REALS.check(frequencies, "frequencies")
        self.n_orientations = _POSITIVE_INT.check(n_orientations, "n_orientations")
        self.log_period = _POSITIVE.check(log_period, "log_period")
        self.scales = [size / self.base_size for size in self.kernel_sizes]
        options = dict(sigma_phi=sigma_phi, phase=phase, log_period=self.log_period)
        # The scale-1 functions on each scale's grid: the stretch is in the coefficients.
        for index, size in enumerate(self.kernel_sizes):
            basis = log_radial_basis(size, self.frequencies, self.n_orientations, **options)
            self.register_buffer(f"basis_{index}", torch.view_as_real(basis).to(torch.get_default_dtype()))
        base = log_radial_basis(self.base_size, self.frequencies, self.n_orientations, **options)
        self.register_buffer("base_norms", base.abs().pow(2).sum(dim=(-2, -1)).to(torch.get_default_dtype()))
        shape = (out_channels, in_channels, len(self.frequencies), self.n_orientations)
        self.weight_real = nn.Parameter(torch.empty(shape))
        self.weight_imag = nn.Parameter(torch.empty(shape))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        """Coefficients uniform with ``Var(c_f) |psi_f|^2`` summing to ``2 / fan_in``
        (Kaiming's variance for a ReLU network) over the functions; zero bias."""
        n_functions = 2 * self.base_norms.numel()  # real and imaginary parts
        bound = torch.sqrt(3 * 2 / (self.in_channels * n_functions * self.base_norms.clamp_min(1e-12)))
        with torch.no_grad():
            for weight in (self.weight_real, self.weight_imag):
                weight.uniform_(-1.0, 1.0).mul_(bound)
            if self.bias is not None:
                self.bias.zero_()

    def kernels(self):
        """The kernel at every scale: a list of (O, C, n_j, n_j) tensors."""
        coefficients = torch.complex(self.weight_real, self.weight_imag)
        kernels = []
        for index, scale in enumerate(self.scales):
            basis = torch.view_as_complex(getattr(self, f"basis_{index}").contiguous()).to(coefficients.dtype)
            steered = steer_log_radial(coefficients, self.frequencies, scale, log_period=self.log_period)
            kernels.append(torch.einsum("ockp,kpyx->ocyx", steered, basis).real)
        return kernels

    def scale_responses(self, x):
        """The correlation with every scale's kernel: (B, O, S, H, W), without the bias."""
        check_input_shape(self, x, self.in_channels)
        return torch.stack([correlate_same(x, kernel, impl="auto") for kernel in self.kernels()], dim=2)

    def forward(self, x):
        response = self.scale_responses(x).amax(dim=2)
        return response if self.bias is None else response + self.bias.view(1, -1, 1, 1)

    def extra_repr(self):
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_sizes={self.kernel_sizes}, "
            f"base_size={self.base_size}, frequencies={self.frequencies}, "
            f"n_orientations={self.n_orientations}, bias={self.bias is not None}"
        )


@register_architecture("sscnn")
class SSCNN(nn.Module):
    """SS-CNN for MNIST-sized images (Ghosh and Gupta, 2019), as benchmarked by SESN.

    Three blocks of :class:`SteerableScaleConv2d` (30, 60 and 90 filters; kernels of 5
    to 13 pixels about a base of 11; 3 frequencies x 9 orientations) -> 2 x 2 max pooling
    -> ReLU -> batch norm, and the SESN head (2 x 2 max pooling, 256 units without bias,
    batch norm, ReLU, dropout, logits): **486,202** trainable parameters for 10 classes
    on one channel, 1.6 % below the paper's Table 5 (494k), which counts the SESN code's
    unused ``const_real`` (7,230) and batch norm (180) parameters.

    Parameters
    ----------
    n_classes : int
    in_channels : int, default=1
    kernel_sizes : sequence of odd int, default=(5, 7, 9, 11, 13)
    base_size : int, default=11
    frequencies : sequence of float, default=(0.5, 1.0, 2.0)
    n_orientations : int, default=9
    widths : tuple of int, default=(30, 60, 90)
    hidden, dropout
        As for :class:`~skscale.nn.models.PlainCNN`.
    """

    def __init__(
        self,
        n_classes,
        in_channels=1,
        kernel_sizes=(5, 7, 9, 11, 13),
        base_size=11,
        frequencies=(0.5, 1.0, 2.0),
        n_orientations=9,
        widths=(30, 60, 90),
        hidden=SESN_LAYOUT.hidden,
        dropout=SESN_LAYOUT.dropout,
    ):
        super().__init__()

        def make_conv(channels, width):
            return SteerableScaleConv2d(channels, width, kernel_sizes, base_size, frequencies, n_orientations)

        self.features = mnist_blocks(in_channels, widths, make_conv)
        self.head = mnist_head(self.features[-1].num_features, n_classes, hidden, dropout)

    def forward(self, x):
        return self.head(self.features(x))

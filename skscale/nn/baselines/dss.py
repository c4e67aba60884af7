"""Deep Scale-spaces (DSS): Gaussian scale-space lifting and scale-space correlation.

Worrall, D. and Welling, M. (2019). Deep Scale-spaces: Equivariance Over Scale.
Advances in Neural Information Processing Systems 32 (NeurIPS 2019).

An image ``f_0`` is lifted to a discrete scale-space ``f(x, t_k) = [T(., t_k) * f_0](x)``
by blurring it with Lindeberg's discrete Gaussian ``T(n; t) = exp(-t) I_n(t)`` (the
modified Bessel function of integer order, ``scipy.special.ive``) at
``t_k = t_0 (base**(2 k) - 1)``, ``t_0 = zero_scale**2``: level ``k`` is the input seen
at the total scale ``zero_scale * base**k`` when the input itself is at ``zero_scale``.
A scale-space correlation then reads, for output level ``s``, the input levels
``s .. s + scale_size - 1`` with a kernel dilated by the integer ``base**s``.

Both steps commute with rescaling by ``base`` (2 below): the lifted image rescaled by 2
is, up to the sampling, the scale-space one level up (``zero_scale * 2**(k + 1)``
against ``2 * zero_scale * 2**k``), and a kernel dilated by ``2**(s + 1)`` on the
rescaled levels is the kernel dilated by ``2**s`` on the original ones. The layers are
therefore equivariant to dyadic rescaling: a factor 2 (1/2) shifts the responses one
level up (down) the scale axis, which :func:`skscale.metrics.scale_equivariance_error`
measures with ``scale_shift=1`` (``-1``). What remains is interpolation, the discrete
grid, the truncation of the scale axis (:class:`ScaleSpaceConv`) and the inherent scale
of the rescaled input itself, which the lifting takes to be ``zero_scale`` in every case
(a variance mismatch of ``3 zero_scale**2 / 4``, in pixels of the smaller image); for
band-limited noise the normalised error of two layers is about 0.05 at
``zero_scale=0.5`` (0.02 at 0.25) for a factor 2, against 0.35-0.5 for plain
convolutions.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import ive
from torch import nn

from ...utils.validation import Integer, Options, Real
from ..blocks import SESN_LAYOUT, OddKernelConv, check_input_shape, mnist_blocks, reset_conv_parameters
from ..heads import mnist_head
from ..pooling import ScaleProjection
from ..registry import register_architecture

__all__ = [
    "ScaleSpaceSettings",
    "DSS_SCALE_SPACE",
    "GaussianScaleSpace",
    "ScaleSpaceConv",
    "DSSNet",
    "discrete_gaussian",
]

_POSITIVE_INT = Integer(low=1)
_POSITIVE = Real(low=0, closed="neither")
_BASE = Integer(low=2)  # dilations base**s must be integers
_TOLERANCE = Real(0, 1, closed="neither")


class ScaleSpaceSettings(NamedTuple):
    """The settings of a Gaussian scale-space, shared by the lifting, the correlations and
    the networks built on them (the defaults of every DSS layer and network).

    Attributes
    ----------
    n_scales : int
        Levels of the scale-space.
    base : int
        Ratio of the total scales of neighbouring levels: level ``s`` correlates with
        kernels dilated by ``base**s``.
    zero_scale : float
        Inherent scale of the input, in pixels.
    """

    n_scales: int
    base: int
    zero_scale: float


#: Worrall and Welling's scale-space: 3 levels, base 2 (dilations 1, 2, 4), input at scale 0.5.
DSS_SCALE_SPACE = ScaleSpaceSettings(n_scales=3, base=2, zero_scale=0.5)


def discrete_gaussian(t, tolerance=1e-6):
    """Lindeberg's discrete Gaussian ``T(n; t) = exp(-t) I_n(t)`` on ``n = -w .. w``.

    The discrete analogue of the Gaussian: it has variance exactly ``t`` and the
    semigroup property ``T(., s) * T(., t) = T(., s + t)`` on the integer grid, which a
    sampled continuous Gaussian lacks at small scales.

    Parameters
    ----------
    t : float
        Scale parameter (the variance, in squared pixels), positive.
    tolerance : float, default=1e-6
        The half-width ``w >= 1`` is the smallest that leaves less than this mass in the
        cut tails (the full kernel sums to 1); the kept taps are renormalised to unit sum.

    Returns
    -------
    kernel : ndarray of shape (2 w + 1,)

    Examples
    --------
    >>> kernel = discrete_gaussian(1.0)
    >>> kernel.shape, round(float(kernel.sum()), 6)
    ((15,), 1.0)
    >>> half = len(kernel) // 2
    >>> round(float((np.arange(-half, half + 1) ** 2 * kernel).sum()), 4)  # variance t
    1.0
    """
    t = _POSITIVE.check(t, "t")
    tolerance = _TOLERANCE.check(tolerance, "tolerance")
    half = max(1, math.ceil(3 * math.sqrt(t)))
    while 1.0 - (ive(0, t) + 2 * ive(np.arange(1, half + 1), t).sum()) > tolerance:
        half += max(1, half // 4)
    kernel = ive(np.abs(np.arange(-half, half + 1)), t)  # exp(-t) I_|n|(t)
    return kernel / kernel.sum()


class GaussianScaleSpace(nn.Module):
    """Lift images to a discrete Gaussian scale-space: (B, C, H, W) -> (B, C, S, H, W).

    Level 0 is the input itself; level ``k >= 1`` is the input blurred with the
    separable discrete Gaussian :func:`discrete_gaussian` of scale
    ``t_k = zero_scale**2 * (base**(2 k) - 1)``, so that it represents the image at the
    total scale ``zero_scale * base**k`` (Worrall and Welling, 2019, "scale-spaces").
    Image borders are zero-padded.

    Parameters
    ----------
    n_scales : int, default=3
        Number of levels ``S``.
    base : int, default=2
        Ratio of the total scales of neighbouring levels.
    zero_scale : float, default=0.5
        Inherent scale of the input, in pixels (the standard deviation of the blur the
        image already carries). The SESN benchmark code uses 0.25 on MNIST.
    tolerance : float, default=1e-6
        Mass cut from the tails of each kernel (see :func:`discrete_gaussian`).

    Attributes
    ----------
    t : list of float
        ``t_1 .. t_{S-1}``, the blur added at each level.

    Examples
    --------
    >>> import torch
    >>> lifting = GaussianScaleSpace(n_scales=3)
    >>> tuple(lifting(torch.randn(2, 1, 28, 28)).shape)
    (2, 1, 3, 28, 28)
    """

    def __init__(
        self,
        n_scales=DSS_SCALE_SPACE.n_scales,
        base=DSS_SCALE_SPACE.base,
        zero_scale=DSS_SCALE_SPACE.zero_scale,
        tolerance=1e-6,
    ):
        super().__init__()
        self.n_scales = _POSITIVE_INT.check(n_scales, "n_scales")
        self.base = _BASE.check(base, "base")
        self.zero_scale = _POSITIVE.check(zero_scale, "zero_scale")
        self.tolerance = _TOLERANCE.check(tolerance, "tolerance")
        self.t = [self.zero_scale**2 * (self.base ** (2 * k) - 1) for k in range(1, self.n_scales)]
        kernels = [discrete_gaussian(t, self.tolerance) for t in self.t]
        half = max((len(k) // 2 for k in kernels), default=0)
        # One (S - 1, 2 half + 1) table, each level's kernel centred and zero-padded.
        table = np.zeros((len(kernels), 2 * half + 1))
        for index, kernel in enumerate(kernels):
            offset = half - len(kernel) // 2
            table[index, offset : offset + len(kernel)] = kernel
        self.register_buffer("kernels", torch.as_tensor(table, dtype=torch.get_default_dtype()))

    def forward(self, x):
        check_input_shape(self, x)
        if self.n_scales == 1:
            return x.unsqueeze(2)
        batch, channels, height, width = x.shape
        n_blurred, length = self.kernels.shape
        half = length // 2
        kernels = self.kernels.to(x.dtype)
        flat = x.reshape(batch * channels, 1, height, width)
        # Separable blur, every level at once: along x, then along y per level.
        rows = F.conv2d(flat, kernels.view(n_blurred, 1, 1, length), padding=(0, half))
        blurred = F.conv2d(rows, kernels.view(n_blurred, 1, length, 1), padding=(half, 0), groups=n_blurred)
        blurred = blurred.view(batch, channels, n_blurred, height, width)
        return torch.cat([x.unsqueeze(2), blurred], dim=2)

    def extra_repr(self):
        return (
            f"n_scales={self.n_scales}, base={self.base}, zero_scale={self.zero_scale}, "
            f"tolerance={self.tolerance}"
        )


class ScaleSpaceConv(OddKernelConv):
    """Scale-space (semigroup) correlation: (B, C, S, H, W) -> (B, O, S', H', W').

    Output level ``s`` correlates the input levels ``s .. s + scale_size - 1`` with one
    learned ``kernel_size x kernel_size`` kernel per level offset, dilated by the
    integer ``base**s`` (Worrall and Welling, 2019, "scale-space correlations"). The
    input's scale axis must start at level 0 of a :class:`GaussianScaleSpace` with the
    same ``base``.

    Truncation of the scale axis. The scale-space is cut after ``S`` levels, so the top
    ``scale_size - 1`` output levels would read levels that do not exist (the poster
    lists these boundary effects as a limitation). ``scale_boundary="zeros"`` (the DSS
    reference code) keeps ``S' = S`` levels and reads missing levels as zeros, which
    breaks equivariance at those top levels only; ``"valid"`` returns only the
    ``S' = S - scale_size + 1`` levels whose inputs all exist. With ``scale_size=1`` both
    are the same.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int, default=7
        Odd spatial size of the (undilated) kernel.
    scale_size : int, default=1
        Number of input levels each output level reads.
    base : int, default=2
        Must equal the lifting's ``base``; level ``s`` uses dilation ``base**s``.
    scale_boundary : {"zeros", "valid"}, default="zeros"
    stride : int, default=1
        Spatial stride; padding is "same" (``base**s * (kernel_size // 2)``).
    bias : bool, default=True
        One bias per output channel, shared by all levels.

    Attributes
    ----------
    weight : Parameter of shape (O, C, scale_size, kernel_size, kernel_size)
    bias : Parameter of shape (O,) or None

    Examples
    --------
    >>> import torch
    >>> layer = ScaleSpaceConv(1, 4, kernel_size=5, scale_size=2, scale_boundary="valid")
    >>> tuple(layer(torch.randn(2, 1, 3, 20, 20)).shape)
    (2, 4, 2, 20, 20)
    >>> layer.n_output_scales(5)  # "valid": scale_size - 1 levels fewer
    4
    """

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size=7,
        scale_size=1,
        base=DSS_SCALE_SPACE.base,
        *,
        scale_boundary="zeros",
        stride=1,
        bias=True,
    ):
        super().__init__(in_channels, out_channels, kernel_size)
        self.scale_size = _POSITIVE_INT.check(scale_size, "scale_size")
        self.base = _BASE.check(base, "base")
        self.scale_boundary = Options(("zeros", "valid")).check(scale_boundary, "scale_boundary")
        self.stride = _POSITIVE_INT.check(stride, "stride")
        self.weight = nn.Parameter(
            torch.empty(out_channels, in_channels, scale_size, kernel_size, kernel_size)
        )
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        """Kaiming-uniform weights, as ``nn.Conv2d`` with fan-in ``C * scale_size * k * k``."""
        reset_conv_parameters(self.weight, self.bias)

    def n_output_scales(self, n_scales):
        """Number of output levels for ``n_scales`` input levels."""
        return n_scales if self.scale_boundary == "zeros" else n_scales - self.scale_size + 1

    def forward(self, x):
        check_input_shape(self, x, self.in_channels, scale_axis=True)
        batch, channels, n_scales, height, width = x.shape
        n_out = self.n_output_scales(n_scales)
        if n_out < 1:
            raise ValueError(
                f"scale_boundary='valid' with scale_size={self.scale_size} needs at least "
                f"{self.scale_size} input scales, got {n_scales}."
            )
        half = self.kernel_size // 2
        outputs = []
        for level in range(n_out):
            n_read = min(self.scale_size, n_scales - level)  # < scale_size: truncated scale axis
            levels = x[:, :, level : level + n_read].reshape(batch, channels * n_read, height, width)
            kernel = self.weight[:, :, :n_read].reshape(
                self.out_channels, channels * n_read, self.kernel_size, self.kernel_size
            )
            dilation = self.base**level
            outputs.append(
                F.conv2d(
                    levels, kernel, self.bias, stride=self.stride, padding=dilation * half, dilation=dilation
                )
            )
        return torch.stack(outputs, dim=2)

    def extra_repr(self):
        return super().extra_repr() + (
            f", scale_size={self.scale_size}, base={self.base}, scale_boundary={self.scale_boundary!r}, "
            f"stride={self.stride}, bias={self.bias is not None}"
        )


@register_architecture("dss")
class DSSNet(nn.Module):
    """Deep Scale-spaces network for MNIST-sized images (Worrall and Welling, 2019).

    :class:`GaussianScaleSpace` lifting, then three blocks of :class:`ScaleSpaceConv`
    (7 x 7 kernels, 32, 63 and 95 filters) -> 2 x 2 spatial max pooling -> ReLU -> 3-D
    batch norm, all carrying the scale axis; a max projection over the scales; and the
    SESN head (2 x 2 max pooling, 256 units without bias, batch norm, ReLU, dropout,
    logits). **494,549** trainable parameters for 10 classes on one channel with
    ``scale_size=1`` (the layout of :class:`~skscale.nn.models.PlainCNN`), whatever
    ``n_scales`` and the image size. (The paper's Table 5 lists 475k for DSS; the SESN
    benchmark's DSS models, which it ran, have 494,359: no convolution bias.)

    Simplifications with respect to the paper and to the SESN benchmark code (the
    ``"vector"`` DSS model of Table 5): the scale axis is truncated at ``n_scales``
    levels (see :class:`ScaleSpaceConv`); the spatial pooling and the head are not
    equivariant to rescaling, so the network as a whole is only approximately
    invariant; the convolutions have a bias shared over the levels; the last pooling
    is adaptive (2 x 2 output for any image size).

    Parameters
    ----------
    n_classes : int
    in_channels : int, default=1
    n_scales : int, default=3
        Levels of the scale-space (dilations ``1, 2, 4`` for 3 levels with base 2). The
        SESN benchmark uses 2 on 28 x 28 digits.
    zero_scale : float, default=0.5
        Inherent scale of the input (see :class:`GaussianScaleSpace`).
    base : int, default=2
    kernel_size : int, default=7
    scale_size : int, default=1
        Levels each correlation reads (``> 1`` multiplies the convolution weights).
    scale_boundary : {"zeros", "valid"}, default="zeros"
        With ``"valid"`` every block drops ``scale_size - 1`` levels.
    widths, hidden, dropout
        As for :class:`~skscale.nn.models.PlainCNN` (``widths`` filters at every level).
    """

    def __init__(
        self,
        n_classes,
        in_channels=1,
        n_scales=DSS_SCALE_SPACE.n_scales,
        zero_scale=DSS_SCALE_SPACE.zero_scale,
        base=DSS_SCALE_SPACE.base,
        kernel_size=7,
        scale_size=1,
        scale_boundary="zeros",
        widths=SESN_LAYOUT.widths,
        hidden=SESN_LAYOUT.hidden,
        dropout=SESN_LAYOUT.dropout,
    ):
        super().__init__()
        self.lifting = GaussianScaleSpace(n_scales, base, zero_scale)

        def make_conv(channels, width):
            return ScaleSpaceConv(
                channels, width, kernel_size, scale_size, base, scale_boundary=scale_boundary
            )

        self.features = mnist_blocks(in_channels, widths, make_conv, scale_axis=True)
        n_blocks = sum(isinstance(module, ScaleSpaceConv) for module in self.features)
        if scale_boundary == "valid" and n_scales - n_blocks * (scale_size - 1) < 1:
            raise ValueError(
                f"n_scales={n_scales} is too small for {n_blocks} blocks with scale_size={scale_size} "
                "and scale_boundary='valid'."
            )
        self.projection = ScaleProjection("max")
        self.head = mnist_head(self.features[-1].num_features, n_classes, hidden, dropout)

    def forward(self, x):
        return self.head(self.projection(self.features(self.lifting(x))))

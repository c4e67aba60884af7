"""SI-ConvNet: locally scale-invariant convolutions over an image pyramid.

Kanazawa, A., Sharma, A. and Jacobs, D. W. (2014). Locally Scale-Invariant
Convolutional Neural Networks. NeurIPS 2014 Workshop on Deep Learning
(arXiv:1412.5104).

Each layer rescales its input by every factor of a fixed set (an image pyramid),
convolves every copy with the *same* kernel, rescales the responses back to the input
grid and keeps, at every pixel and channel, the maximum over the factors. The maximum
makes the response locally invariant to the scale at which a pattern appears, within
the range the factors cover.
"""

from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import register_architecture
from ._common import check_odd_size, check_positive_int, check_widths, mnist_head

__all__ = ["SIConv2d", "SIConvNet", "SESN_FACTORS"]

#: The rescaling factors of the SESN benchmark code for SI-ConvNet on MNIST-Scale
#: (about ``1.5 ** k`` for ``k = -3 .. 3``).
SESN_FACTORS = (0.3, 0.45, 0.67, 1.0, 1.49, 2.23, 3.33)

_MODES = ("bilinear", "bicubic", "nearest")


def _check_factors(factors):
    try:
        factors = tuple(factors)
    except TypeError:
        factors = None
    if not factors or not all(
        isinstance(f, numbers.Real) and not isinstance(f, bool) and math.isfinite(f) and f > 0 for f in factors
    ):
        raise ValueError(f"factors must be a non-empty sequence of positive finite numbers, got {factors!r}.")
    return tuple(float(f) for f in factors)


class SIConv2d(nn.Module):
    """Locally scale-invariant convolution (Kanazawa et al., 2014): (B, C, H, W) -> (B, O, H, W).

    ``y = max_s R_{1/s}[ w * R_s[x] ]``: the input is rescaled by each factor ``s``
    (``R_s`` resizes to ``round(s H) x round(s W)`` about the image centre), convolved
    with one shared ``kernel_size x kernel_size`` kernel ("same" zero padding), resized
    back to ``H x W``, and max-pooled over the factors. With factors that form a
    geometric sequence, rescaling the input by one of their ratios rescales the output
    and moves each response to a neighbouring factor, so the layer commutes with that
    rescaling up to the ends of the factor range and interpolation.

    Simplifications: no stride (the layer keeps the spatial size; pool afterwards);
    every copy is convolved at its full rescaled size (no cropping of upscaled copies,
    unlike the SESN benchmark code, so the cost grows with the sum of squared factors);
    downscaling is antialiased by default, which the original bilinear warps were not.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int, default=7
        Odd kernel size.
    factors : sequence of float, default=SESN_FACTORS
        Rescaling factors of the pyramid (``1.0`` is the input itself).
    mode : {"bilinear", "bicubic", "nearest"}, default="bilinear"
        Interpolation of the rescaling (Kanazawa et al. use bilinear warps).
    antialias : bool, default=True
        Low-pass filter when shrinking (bilinear and bicubic only).
    bias : bool, default=True

    Attributes
    ----------
    weight : Parameter of shape (O, C, kernel_size, kernel_size)
    bias : Parameter of shape (O,) or None

    Examples
    --------
    >>> import torch
    >>> layer = SIConv2d(1, 4, kernel_size=5, factors=(0.5, 1.0, 2.0))
    >>> tuple(layer(torch.randn(2, 1, 28, 28)).shape)
    (2, 4, 28, 28)
    """

    def __init__(self, in_channels, out_channels, kernel_size=7, factors=SESN_FACTORS, *, mode="bilinear",
                 antialias=True, bias=True):
        super().__init__()
        self.in_channels = check_positive_int("in_channels", in_channels)
        self.out_channels = check_positive_int("out_channels", out_channels)
        self.kernel_size = check_odd_size("kernel_size", kernel_size)
        self.factors = _check_factors(factors)
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}.")
        self.mode = mode
        self.antialias = bool(antialias)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        """The initialisation of ``nn.Conv2d`` (Kaiming-uniform)."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1.0 / math.sqrt(self.weight[0].numel())
            nn.init.uniform_(self.bias, -bound, bound)

    def _resize(self, x, size):
        if tuple(x.shape[-2:]) == size:
            return x
        shrinking = size[0] < x.shape[-2] or size[1] < x.shape[-1]
        if self.mode == "nearest":
            return F.interpolate(x, size=size, mode="nearest")
        return F.interpolate(x, size=size, mode=self.mode, align_corners=False,
                             antialias=self.antialias and shrinking)

    def forward(self, x):
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"SIConv2d expects input of shape (B, {self.in_channels}, H, W), got {tuple(x.shape)}."
            )
        height, width = x.shape[-2:]
        padding = self.kernel_size // 2
        response = None
        for factor in self.factors:
            size = (max(1, round(height * factor)), max(1, round(width * factor)))
            out = F.conv2d(self._resize(x, size), self.weight, self.bias, padding=padding)
            out = self._resize(out, (height, width))
            response = out if response is None else torch.maximum(response, out)
        return response

    def extra_repr(self):
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, factors={self.factors}, "
            f"mode={self.mode!r}, antialias={self.antialias}, bias={self.bias is not None}"
        )


@register_architecture("siconvnet")
class SIConvNet(nn.Module):
    """SI-ConvNet for MNIST-sized images (Kanazawa et al., 2014), as benchmarked by SESN.

    Three blocks of :class:`SIConv2d` (7 x 7 kernels, 32, 63 and 95 filters) -> ReLU ->
    2 x 2 max pooling -> batch norm, and the SESN head (2 x 2 max pooling, 256 units
    without bias, batch norm, ReLU, dropout, logits): the layout of
    :class:`~skscale.nn.models.PlainCNN` and **494,549** trainable parameters for 10
    classes on one channel, whatever the factors and the image size.

    Simplifications: Kanazawa et al. evaluate a smaller network on their own MNIST-Scale;
    this is the parameter-matched network of the SESN benchmark (Sosnovik et al., 2020),
    with the layer simplifications listed in :class:`SIConv2d` and an adaptive last
    pooling (2 x 2 output for any image size).

    Parameters
    ----------
    n_classes : int
    in_channels : int, default=1
    factors : sequence of float, default=SESN_FACTORS
        Rescaling factors of every layer's pyramid.
    kernel_size : int, default=7
    mode : {"bilinear", "bicubic", "nearest"}, default="bilinear"
    antialias : bool, default=True
    widths : tuple of int, default=(32, 63, 95)
    hidden : int, default=256
    dropout : float, default=0.7
    """

    def __init__(self, n_classes, in_channels=1, factors=SESN_FACTORS, kernel_size=7, mode="bilinear",
                 antialias=True, widths=(32, 63, 95), hidden=256, dropout=0.7):
        super().__init__()
        widths = check_widths(widths)
        blocks = []
        channels = in_channels
        for width in widths:
            blocks += [
                SIConv2d(channels, width, kernel_size, factors, mode=mode, antialias=antialias),
                nn.ReLU(),
                nn.MaxPool2d(2, ceil_mode=True),
                nn.BatchNorm2d(width),
            ]
            channels = width
        self.features = nn.Sequential(*blocks)
        self.head = mnist_head(channels, n_classes, hidden, dropout)

    def forward(self, x):
        return self.head(self.features(x))

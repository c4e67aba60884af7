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

import torch
import torch.nn.functional as F
from torch import nn

from ...utils.validation import Options, Real, Sequence
from ..blocks import SESN_LAYOUT, OddKernelConv, check_input_shape, mnist_blocks, reset_conv_parameters
from ..heads import mnist_head
from ..registry import register_architecture

__all__ = ["SIConv2d", "SIConvNet", "SESN_FACTORS"]

#: The rescaling factors of the SESN benchmark code for SI-ConvNet on MNIST-Scale
#: (about ``1.5 ** k`` for ``k = -3 .. 3``).
SESN_FACTORS = (0.3, 0.45, 0.67, 1.0, 1.49, 2.23, 3.33)


class SIConv2d(OddKernelConv):
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

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size=7,
        factors=SESN_FACTORS,
        *,
        mode="bilinear",
        antialias=True,
        bias=True,
    ):
        super().__init__(in_channels, out_channels, kernel_size)
        self.factors = Sequence(Real(low=0, closed="neither")).check(factors, "factors")
        self.mode = Options(("bilinear", "bicubic", "nearest")).check(mode, "mode")
        self.antialias = bool(antialias)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        """The initialisation of ``nn.Conv2d`` (Kaiming-uniform)."""
        reset_conv_parameters(self.weight, self.bias)

    def _resize(self, x, size):
        if tuple(x.shape[-2:]) == size:
            return x
        shrinking = size[0] < x.shape[-2] or size[1] < x.shape[-1]
        if self.mode == "nearest":
            return F.interpolate(x, size=size, mode="nearest")
        return F.interpolate(
            x, size=size, mode=self.mode, align_corners=False, antialias=self.antialias and shrinking
        )

    def forward(self, x):
        check_input_shape(self, x, self.in_channels)
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
        return super().extra_repr() + (
            f", factors={self.factors}, mode={self.mode!r}, antialias={self.antialias}, "
            f"bias={self.bias is not None}"
        )


@register_architecture("siconvnet")
class SIConvNet(nn.Module):
    """SI-ConvNet for MNIST-sized images (Kanazawa et al., 2014), as benchmarked by SESN.

    Three blocks of :class:`SIConv2d` (7 x 7 kernels, 32, 63 and 95 filters) -> 2 x 2
    max pooling -> ReLU -> batch norm, and the SESN head (2 x 2 max pooling, 256 units
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
    widths, hidden, dropout
        As for :class:`~skscale.nn.models.PlainCNN`, whose layout this is.
    """

    def __init__(
        self,
        n_classes,
        in_channels=1,
        factors=SESN_FACTORS,
        kernel_size=7,
        mode="bilinear",
        antialias=True,
        widths=SESN_LAYOUT.widths,
        hidden=SESN_LAYOUT.hidden,
        dropout=SESN_LAYOUT.dropout,
    ):
        super().__init__()

        def make_conv(channels, width):
            return SIConv2d(channels, width, kernel_size, factors, mode=mode, antialias=antialias)

        self.features = mnist_blocks(in_channels, widths, make_conv)
        self.head = mnist_head(self.features[-1].num_features, n_classes, hidden, dropout)

    def forward(self, x):
        return self.head(self.features(x))

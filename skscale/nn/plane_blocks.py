"""Blocks that treat 4-D ``(B, C, H, W)`` and 5-D ``(B, C, S, H, W)`` features alike.

The residual and dense networks of :mod:`skscale.nn.segmentation` and
:mod:`skscale.nn.baselines.densenet` come in two kinds: on the plane (``nn.Conv2d``) and
on a scale axis (:class:`~skscale.nn.ScaleSpaceConv`, :class:`~skscale.nn.ScaleConvH2H`).
The blocks here take a convolution factory and act on the spatial axes only, so that
one layout serves both kinds and the scale-equivariant and plain networks of a
comparison differ only in their convolutions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..utils.validation import Integer, Options

__all__ = ["ResidualBlock", "DenseBlock", "PlanePool", "resize_planes", "feature_norm"]

_POSITIVE = Integer(low=1)


def feature_norm(channels, scale_axis):
    """Batch norm of ``channels`` features: ``BatchNorm3d`` with a scale axis (statistics
    shared by all scales, which keeps a scale shift a shift), else ``BatchNorm2d``."""
    return nn.BatchNorm3d(channels) if scale_axis else nn.BatchNorm2d(channels)


def _as_planes(x):
    """``(B, C, S, H, W)`` as ``(B, C * S, H, W)`` (a view); 4-D input is returned as is."""
    return x.flatten(1, 2) if x.dim() == 5 else x


def resize_planes(x, size):
    """Bilinear resize of the spatial axes of 4-D or 5-D features to ``size`` (height, width)."""
    planes = F.interpolate(_as_planes(x), size=tuple(size), mode="bilinear", align_corners=False)
    return planes.view(*x.shape[:-2], *planes.shape[-2:])


class PlanePool(nn.Module):
    """2-D pooling over the spatial axes of 4-D or 5-D features (the scale axis untouched).

    Parameters
    ----------
    mode : {"max", "avg"}, default="max"
    kernel_size : int, default=2
        Window and stride; ``ceil_mode`` keeps every pixel of an odd-sized map.

    Examples
    --------
    >>> tuple(PlanePool("avg")(torch.randn(2, 3, 4, 9, 9)).shape)
    (2, 3, 4, 5, 5)
    """

    def __init__(self, mode="max", kernel_size=2):
        super().__init__()
        self.mode = Options(("max", "avg")).check(mode, "mode")
        self.kernel_size = _POSITIVE.check(kernel_size, "kernel_size")

    def forward(self, x):
        pool = F.max_pool2d if self.mode == "max" else F.avg_pool2d
        planes = pool(_as_planes(x), self.kernel_size, ceil_mode=True)
        return planes.view(*x.shape[:-2], *planes.shape[-2:])

    def extra_repr(self):
        return f"mode={self.mode!r}, kernel_size={self.kernel_size}"


class ResidualBlock(nn.Module):
    """The basic ResNet block: conv -> norm -> ReLU -> conv -> norm, plus the input, ReLU.

    Parameters
    ----------
    width : int
        Channels in and out (the identity shortcut needs them equal).
    make_conv : callable
        ``make_conv(in_channels, out_channels)`` returns a "same"-size convolution without
        bias (the norm that follows has one).
    scale_axis : bool, default=False
        The features carry a scale axis (``BatchNorm3d``).

    Examples
    --------
    >>> block = ResidualBlock(4, lambda c, o: nn.Conv2d(c, o, 3, padding=1, bias=False))
    >>> tuple(block(torch.randn(2, 4, 8, 8)).shape)
    (2, 4, 8, 8)
    """

    def __init__(self, width, make_conv, scale_axis=False):
        super().__init__()
        width = _POSITIVE.check(width, "width")
        self.conv1 = make_conv(width, width)
        self.norm1 = feature_norm(width, scale_axis)
        self.conv2 = make_conv(width, width)
        self.norm2 = feature_norm(width, scale_axis)

    def forward(self, x):
        residual = self.norm2(self.conv2(torch.relu(self.norm1(self.conv1(x)))))
        return torch.relu(x + residual)


class DenseBlock(nn.Module):
    """A DenseNet block: every layer (norm -> ReLU -> conv) adds ``growth_rate`` channels.

    Parameters
    ----------
    in_channels : int
    n_layers : int
    growth_rate : int
    make_conv : callable
        ``make_conv(in_channels, out_channels)`` returns a "same"-size convolution.
    scale_axis : bool, default=False

    Attributes
    ----------
    out_channels : int
        ``in_channels + n_layers * growth_rate``.

    Examples
    --------
    >>> block = DenseBlock(4, 2, 3, lambda c, o: nn.Conv2d(c, o, 3, padding=1, bias=False))
    >>> block.out_channels, tuple(block(torch.randn(1, 4, 6, 6)).shape)
    (10, (1, 10, 6, 6))
    """

    def __init__(self, in_channels, n_layers, growth_rate, make_conv, scale_axis=False):
        super().__init__()
        in_channels = _POSITIVE.check(in_channels, "in_channels")
        growth_rate = _POSITIVE.check(growth_rate, "growth_rate")
        self.layers = nn.ModuleList()
        channels = in_channels
        for _ in range(_POSITIVE.check(n_layers, "n_layers")):
            self.layers.append(
                nn.Sequential(feature_norm(channels, scale_axis), nn.ReLU(), make_conv(channels, growth_rate))
            )
            channels += growth_rate
        self.out_channels = channels

    def forward(self, x):
        for layer in self.layers:
            x = torch.cat([x, layer(x)], dim=1)
        return x

"""S-DenseNet (Deep Scale-spaces) and its DenseNet baseline, for 96 x 96 RGB patches (PCam).

Worrall and Welling (2019) compare an S-DenseNet, a DenseNet whose convolutions are
scale-space correlations on a :class:`GaussianScaleSpace` lifting, with a plain DenseNet
on Patch Camelyon (88.1 against 87.0 % accuracy). Both networks here share one layout, a
stem convolution, dense blocks separated by transitions (norm -> ReLU -> 1 x 1
convolution that halves the channels -> 2 x 2 average pooling), then norm -> ReLU ->
global average pooling -> linear logits; the S-DenseNet carries a scale axis through it
and takes the maximum over the levels before the pooling. With ``scale_size=1`` the two
have exactly the same parameters:

>>> from skscale.nn import build_module, count_parameters
>>> dense = build_module("densenet", n_classes=2, in_channels=3)
>>> scale_dense = build_module("s_densenet", n_classes=2, in_channels=3)
>>> count_parameters(dense) == count_parameters(scale_dense)
True
"""

from __future__ import annotations

from torch import nn

from ...utils.validation import Integer, Real, Sequence
from ..plane_blocks import DenseBlock, PlanePool, feature_norm
from ..pooling import ScaleProjection
from ..registry import register_architecture
from .dss import DSS_SCALE_SPACE, GaussianScaleSpace, ScaleSpaceConv

__all__ = ["DenseNet", "SDenseNet"]

_POSITIVE = Integer(low=1)
_LAYERS = Sequence(Integer(low=1))
_COMPRESSION = Real(0, 1, closed="right")


def _dense_body(in_channels, stem_width, block_layers, growth_rate, compression, make_conv, scale_axis):
    """Stem, dense blocks and transitions; returns ``(modules, out_channels)``."""
    modules = [make_conv(in_channels, _POSITIVE.check(stem_width, "stem_width"), 3)]
    channels = stem_width
    block_layers = _LAYERS.check(block_layers, "block_layers")
    compression = _COMPRESSION.check(compression, "compression")
    for position, n_layers in enumerate(block_layers):
        block = DenseBlock(channels, n_layers, growth_rate, lambda c, o: make_conv(c, o, 3), scale_axis)
        modules.append(block)
        channels = block.out_channels
        if position < len(block_layers) - 1:
            reduced = max(1, int(channels * compression))
            modules += [
                feature_norm(channels, scale_axis),
                nn.ReLU(),
                make_conv(channels, reduced, 1),
                PlanePool("avg"),
            ]
            channels = reduced
    modules += [feature_norm(channels, scale_axis), nn.ReLU()]
    return modules, channels


@register_architecture("densenet")
class DenseNet(nn.Module):
    """Plain DenseNet baseline of the S-DenseNet (see the module docstring).

    Parameters
    ----------
    n_classes : int
    in_channels : int, default=3
    growth_rate : int, default=12
    block_layers : tuple of int, default=(4, 4, 4)
        Layers of each dense block.
    stem_width : int, default=24
    compression : float in (0, 1], default=0.5
        Channel factor of every transition.
    """

    def __init__(
        self, n_classes, in_channels=3, growth_rate=12, block_layers=(4, 4, 4), stem_width=24, compression=0.5
    ):
        super().__init__()

        def make_conv(channels, out_channels, kernel_size):
            return nn.Conv2d(channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)

        modules, channels = _dense_body(
            in_channels, stem_width, block_layers, growth_rate, compression, make_conv, False
        )
        self.features = nn.Sequential(*modules)
        self.classifier = nn.Linear(channels, n_classes)

    def forward(self, x):
        return self.classifier(self.features(x).mean(dim=(-2, -1)))


@register_architecture("s_densenet")
class SDenseNet(nn.Module):
    """Deep Scale-spaces S-DenseNet (Worrall and Welling, 2019; see the module docstring).

    Parameters
    ----------
    n_classes : int
    in_channels : int, default=3
    n_scales : int, default=3
        Levels of the :class:`GaussianScaleSpace`; level ``s`` correlates with kernels
        dilated by ``2**s``.
    scale_size : int, default=1
        Levels each correlation reads (2: multiscale interaction, more parameters).
    growth_rate, block_layers, stem_width, compression
        As for :class:`DenseNet`.
    zero_scale : float, default=0.5
        Inherent scale of the input.
    """

    def __init__(
        self,
        n_classes,
        in_channels=3,
        n_scales=DSS_SCALE_SPACE.n_scales,
        scale_size=1,
        growth_rate=12,
        block_layers=(4, 4, 4),
        stem_width=24,
        compression=0.5,
        zero_scale=DSS_SCALE_SPACE.zero_scale,
    ):
        super().__init__()
        self.lifting = GaussianScaleSpace(n_scales, zero_scale=zero_scale)

        def make_conv(channels, out_channels, kernel_size):
            # A 1 x 1 correlation reads one level: interaction only where kernels have extent.
            size = scale_size if kernel_size > 1 else 1
            return ScaleSpaceConv(channels, out_channels, kernel_size, size, bias=False)

        modules, channels = _dense_body(
            in_channels, stem_width, block_layers, growth_rate, compression, make_conv, True
        )
        self.features = nn.Sequential(*modules)
        self.projection = ScaleProjection("max")
        self.classifier = nn.Linear(channels, n_classes)

    def forward(self, x):
        features = self.projection(self.features(self.lifting(x)))
        return self.classifier(features.mean(dim=(-2, -1)))

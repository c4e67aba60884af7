"""Fully convolutional segmentation networks, registered for ``ScaleEquivariantSegmenter``.

A segmentation network maps images ``(B, in_channels, H, W)`` to per-pixel logits
``(B, n_classes, H, W)`` of the same size, for any ``H`` and ``W``. The builders follow
the contract of :mod:`skscale.nn.registry` (``builder(n_classes, in_channels,
**arguments)``, arguments routed by :func:`~skscale.nn.build_module`), but live in a
registry of their own, :data:`SEGMENTATION_ARCHITECTURES`, because some names (``"dss"``,
``"sesn"``) are taken by classification networks.

- ``"dss"``: Deep Scale-spaces S-ResNet (Worrall and Welling, 2019) with multiscale
  interaction: every scale-space correlation reads two neighbouring levels
  (``scale_size=2``). ``"dss_independent"``: the same with ``scale_size=1`` (the levels
  interact only through the final projection).
- ``"sesn"``: an encoder-decoder of :class:`~skscale.nn.ScaleConvT2H` /
  :class:`~skscale.nn.ScaleConvH2H` layers sharing one learnable
  :class:`~skscale.nn.InternalScales` (takes ``scale_spec``).
- ``"resnet"``: a plain ResNet with the S-ResNet's layout and widths, hence the
  parameters of ``"dss_independent"`` (matched parameters). ``"resnet_wide"``: its widths
  times ``n_scales``, as many feature maps as the S-ResNet has channels times levels
  (matched channels).

>>> from skscale.nn import build_module, count_parameters
>>> from skscale.nn.segmentation import get_segmentation_builder
>>> net = build_module(get_segmentation_builder("dss"), n_classes=4, in_channels=1)
>>> import torch
>>> tuple(net(torch.randn(2, 1, 30, 26)).shape)
(2, 4, 30, 26)
"""

from __future__ import annotations

import torch
from torch import nn

from ..utils.validation import Integer
from .baselines.dss import DSS_SCALE_SPACE, GaussianScaleSpace, ScaleSpaceConv
from .conv import ScaleConvH2H, ScaleConvT2H
from .plane_blocks import PlanePool, ResidualBlock, feature_norm, resize_planes
from .pooling import ScaleProjection
from .registry import look_up_builder, registering
from .scales import InternalScales
from .spec import ScaleSpec, resolve_scale_spec

__all__ = [
    "SEGMENTATION_ARCHITECTURES",
    "register_segmentation_architecture",
    "get_segmentation_builder",
    "SResNetSegmenter",
    "ResNetSegmenter",
    "ScaleEncoderDecoder",
    "independent_sresnet_segmenter",
    "wide_resnet_segmenter",
]

SEGMENTATION_ARCHITECTURES = {}

_POSITIVE = Integer(low=1)


def register_segmentation_architecture(name):
    """Register a segmentation network builder under ``name`` (a decorator).

    Parameters
    ----------
    name : str
        The value users pass as ``ScaleEquivariantSegmenter(architecture=...)``.
    """
    return registering(SEGMENTATION_ARCHITECTURES, name, "a segmentation architecture")


def get_segmentation_builder(architecture):
    """The builder of ``architecture``: a registered segmentation network's, or the callable itself."""
    return look_up_builder(SEGMENTATION_ARCHITECTURES, architecture, "a registered segmentation network")


def _plain_conv(kernel_size):
    def make_conv(in_channels, out_channels):
        return nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)

    return make_conv


@register_segmentation_architecture("dss")
class SResNetSegmenter(nn.Module):
    """Deep Scale-spaces S-ResNet for segmentation (Worrall and Welling, 2019).

    :class:`~skscale.nn.GaussianScaleSpace` lifting to ``n_scales`` levels, a stem
    :class:`~skscale.nn.ScaleSpaceConv` -> batch norm -> ReLU, ``n_blocks`` residual
    blocks of two scale-space correlations, a max projection over the levels and a
    1 x 1 convolution to the class logits. There is no spatial downsampling: level ``s``
    correlates with kernels dilated by ``2**s``, which gives the receptive field (45
    pixels at the top level for 3 levels, 3 x 3 kernels and 2 blocks) and keeps every
    layer equivariant to dyadic rescaling up to the projection, after which the logits
    are invariant per pixel. Convolutions have no bias (the norms have one).

    Parameters
    ----------
    n_classes : int
    in_channels : int, default=1
    n_filters : int, default=16
        Channels of every layer (per level).
    n_scales : int, default=3
        Levels of the scale-space.
    scale_size : int, default=2
        Levels each correlation reads: 2 is the multiscale interaction of ``"dss"``, 1
        that of ``"dss_independent"``.
    n_blocks : int, default=2
    kernel_size : int, default=3
    zero_scale : float, default=0.5
        Inherent scale of the input (:class:`~skscale.nn.GaussianScaleSpace`).
    base : int, default=2
    """

    def __init__(
        self,
        n_classes,
        in_channels=1,
        n_filters=16,
        n_scales=DSS_SCALE_SPACE.n_scales,
        scale_size=2,
        n_blocks=2,
        kernel_size=3,
        zero_scale=DSS_SCALE_SPACE.zero_scale,
        base=DSS_SCALE_SPACE.base,
    ):
        super().__init__()
        width = _POSITIVE.check(n_filters, "n_filters")
        self.lifting = GaussianScaleSpace(n_scales, base, zero_scale)

        def make_conv(channels, out_channels):
            return ScaleSpaceConv(channels, out_channels, kernel_size, scale_size, base, bias=False)

        self.stem = nn.Sequential(make_conv(in_channels, width), feature_norm(width, True), nn.ReLU())
        self.blocks = nn.Sequential(
            *(
                ResidualBlock(width, make_conv, scale_axis=True)
                for _ in range(_POSITIVE.check(n_blocks, "n_blocks"))
            )
        )
        self.projection = ScaleProjection("max")
        self.classifier = nn.Conv2d(width, n_classes, 1)

    def scale_features(self, x):
        """The features before the projection, ``(B, n_filters, n_scales, H, W)``."""
        return self.blocks(self.stem(self.lifting(x)))

    def forward(self, x):
        return self.classifier(self.projection(self.scale_features(x)))


@register_segmentation_architecture("dss_independent")
def independent_sresnet_segmenter(
    n_classes, in_channels=1, n_filters=16, n_scales=3, n_blocks=2, kernel_size=3, zero_scale=0.5, base=2
):
    """The S-ResNet of ``"dss"`` without multiscale interaction (``scale_size=1``)."""
    return SResNetSegmenter(
        n_classes, in_channels, n_filters, n_scales, 1, n_blocks, kernel_size, zero_scale, base
    )


@register_segmentation_architecture("resnet")
class ResNetSegmenter(nn.Module):
    """Plain fully convolutional ResNet with the layout of :class:`SResNetSegmenter`.

    Stem ``nn.Conv2d`` -> batch norm -> ReLU, ``n_blocks`` residual blocks, a 1 x 1
    convolution to the logits; no dilation and no downsampling. With the same
    ``n_filters`` it has exactly the parameters of ``"dss_independent"`` (matched
    parameters); its receptive field is 11 pixels for 3 x 3 kernels and 2 blocks.

    Parameters
    ----------
    n_classes : int
    in_channels : int, default=1
    n_filters : int, default=16
    n_blocks : int, default=2
    kernel_size : int, default=3
    """

    def __init__(self, n_classes, in_channels=1, n_filters=16, n_blocks=2, kernel_size=3):
        super().__init__()
        width = _POSITIVE.check(n_filters, "n_filters")
        make_conv = _plain_conv(Integer(low=1, odd=True).check(kernel_size, "kernel_size"))
        self.stem = nn.Sequential(make_conv(in_channels, width), feature_norm(width, False), nn.ReLU())
        self.blocks = nn.Sequential(
            *(ResidualBlock(width, make_conv) for _ in range(_POSITIVE.check(n_blocks, "n_blocks")))
        )
        self.classifier = nn.Conv2d(width, n_classes, 1)

    def forward(self, x):
        return self.classifier(self.blocks(self.stem(x)))


@register_segmentation_architecture("resnet_wide")
def wide_resnet_segmenter(n_classes, in_channels=1, n_filters=16, n_scales=3, n_blocks=2, kernel_size=3):
    """:class:`ResNetSegmenter` with ``n_filters * n_scales`` channels: as many feature maps
    as the S-ResNet's channels times levels (matched channels)."""
    return ResNetSegmenter(
        n_classes, in_channels, _POSITIVE.check(n_filters, "n_filters") * n_scales, n_blocks, kernel_size
    )


@register_segmentation_architecture("sesn")
class ScaleEncoderDecoder(nn.Module):
    """Encoder-decoder on scale convolutions with learnable internal scales.

    Encoder: :class:`~skscale.nn.ScaleConvT2H` (lifting) and
    :class:`~skscale.nn.ScaleConvH2H` at full resolution (``n_filters``), 2 x 2 max
    pooling, two ``ScaleConvH2H`` at half resolution (``2 n_filters``). Decoder: bilinear
    upsampling back to the input size, concatenation with the full-resolution features
    (a skip connection), one ``ScaleConvH2H``, a max projection over the scales and a
    1 x 1 convolution to the logits. Every scale convolution is followed by a batch norm
    (shared over the scales) and a ReLU, and all share one
    :class:`~skscale.nn.InternalScales`, learned as ``scale_spec.parameterisation`` says.

    Parameters
    ----------
    n_classes : int
    in_channels : int, default=1
    scale_spec : ScaleSpec, mapping or None, optional
        The internal scales (:class:`~skscale.nn.ScaleSpec`); a mapping overrides some of
        :attr:`scale_defaults`: 3 scales from ``init_sigma_basis=1.0`` with
        ``init_isr=2.0``, learned as ``"isr"``, ``kernel_extent=2.0``.
    n_filters : int, default=16
    scale_size : int, default=1
        Scale interaction of the ``ScaleConvH2H`` layers.
    max_order : int, default=3
        Highest Hermite order of the basis.
    """

    scale_defaults = ScaleSpec(n_scales=3, init_sigma_basis=1.0, init_isr=2.0)

    def __init__(self, n_classes, in_channels=1, scale_spec=None, n_filters=16, scale_size=1, max_order=3):
        super().__init__()
        self.scale_spec = spec = resolve_scale_spec(scale_spec, self.scale_defaults)
        self.scales = InternalScales.from_spec(spec)
        width = _POSITIVE.check(n_filters, "n_filters")

        def scale_block(channels, out_channels, lifting=False):
            if lifting:
                conv = ScaleConvT2H(
                    channels, out_channels, self.scales, spec.kernel_extent, max_order, bias=False
                )
            else:
                conv = ScaleConvH2H(
                    channels, out_channels, self.scales, scale_size, spec.kernel_extent, max_order, bias=False
                )
            return nn.Sequential(conv, feature_norm(out_channels, True), nn.ReLU())

        self.encoder = nn.Sequential(scale_block(in_channels, width, lifting=True), scale_block(width, width))
        self.bottleneck = nn.Sequential(
            PlanePool("max"), scale_block(width, 2 * width), scale_block(2 * width, 2 * width)
        )
        self.decoder = scale_block(3 * width, width)
        self.projection = ScaleProjection("max")
        self.classifier = nn.Conv2d(width, n_classes, 1)

    def forward(self, x):
        skip = self.encoder(x)
        coarse = resize_planes(self.bottleneck(skip), skip.shape[-2:])
        features = self.decoder(torch.cat((skip, coarse), dim=1))
        return self.classifier(self.projection(features))

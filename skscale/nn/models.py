"""The paper's networks, registered as ``"table1"``, ``"sesn"`` and ``"cnn"``.

Each class is its own builder (see :mod:`skscale.nn.registry`): the classifier's shared
hyper-parameters reach a network only where its ``__init__`` names them.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import SESN_LAYOUT, mnist_blocks
from .conv import ScaleConvT2H
from .heads import sesn_head
from .pooling import ScaleProjection
from .registry import register_architecture
from .scales import InternalScales
from .spec import ScaleSpec, resolve_scale_spec

__all__ = ["Table1Net", "SESNNet", "PlainCNN"]


@register_architecture("table1")
class Table1Net(nn.Module):
    """The network of the paper's Table 1.

    Lifting scale convolution (Hermite basis, ``n_scales`` scales, ``n_filters`` filters)
    -> max scale projection -> batch norm -> ReLU -> max pooling to a 4 x 4 map (the
    paper's 42 x 42 pool on 168-pixel images, adapted to any input size) -> fully
    connected -> class logits (the softmax lives in the loss).

    About ``n_filters * (in_channels * 10 + 1 + 2 + 16 * n_classes) + n_classes + 2``
    parameters with the default ``max_order=3``: 2,780 for 16 filters, 10 classes, one
    channel (the scale parameters included).

    Parameters
    ----------
    n_classes : int
    in_channels : int, default=1
    scale_spec : ScaleSpec, mapping or None, optional
        The internal scales' hyper-parameters (:class:`~skscale.nn.ScaleSpec`); a mapping
        overrides some of this network's defaults :attr:`scale_defaults` (3 scales from
        ``init_sigma_basis=1.0``, ``init_isr=3.0``, ``"isr"``, ``kernel_extent=4.0``: the
        classifier's defaults, chosen on validation data by ``benchmarks/defaults.py``).
    n_filters : int, default=16
    max_order : int, default=3
    pooled_size : int, default=4
    conv_kwargs : dict, optional
        Extra keyword arguments of :class:`~skscale.nn.ScaleConvT2H`.
    """

    # Measured: benchmarks/results/defaults-cpu.md (issue 29); a test ties it to that result.
    scale_defaults = ScaleSpec(init_sigma_basis=1.0, kernel_extent=4.0)

    def __init__(
        self,
        n_classes,
        in_channels=1,
        scale_spec=None,
        n_filters=16,
        max_order=3,
        pooled_size=4,
        conv_kwargs=None,
    ):
        super().__init__()
        self.scale_spec = spec = resolve_scale_spec(scale_spec, self.scale_defaults)
        self.scales = InternalScales.from_spec(spec)
        self.conv = ScaleConvT2H(
            in_channels, n_filters, self.scales, spec.kernel_extent, max_order, **(conv_kwargs or {})
        )
        self.projection = ScaleProjection("max")
        self.norm = nn.BatchNorm2d(n_filters)
        self.pool = nn.AdaptiveMaxPool2d(pooled_size)
        self.classifier = nn.Linear(n_filters * pooled_size * pooled_size, n_classes)

    def forward(self, x):
        x = torch.relu(self.norm(self.projection(self.conv(x))))
        return self.classifier(torch.flatten(self.pool(x), 1))


@register_architecture("sesn")
class SESNNet(nn.Module):
    """The SESN MNIST network ("scalar" variant) used for the paper's Table 5.

    Three blocks of lifting scale convolution -> max scale projection -> 2 x 2 max pooling
    -> ReLU -> batch norm, with 32, 63 and 95 filters (Sosnovik et al., 2019), then a
    head: flatten a 2 x 2 map -> 256 units (no bias) -> batch norm -> ReLU -> dropout ->
    logits. The basis is SESN's: Hermite orders up to 6 per axis (``index_set="tensor"``,
    49 functions), so the parameter count matches a plain CNN with 7 x 7 kernels:
    **494,549** trainable weights for 10 classes on one channel, plus the scale
    parameters (2 for ``"isr"``), whatever the image size.

    All three convolutions share one :class:`InternalScales`. SESN itself uses four fixed
    scales ``1.5 * 2 ** (i / 3)`` (``n_scales=4, init_sigma_basis=1.5, init_isr=2.0``).

    Parameters
    ----------
    n_classes : int
    in_channels : int, default=1
    scale_spec : ScaleSpec, mapping or None, optional
        As for :class:`Table1Net`, with SESN's own :attr:`scale_defaults`: four scales
        ``1.5 * 2 ** (i / 3)``, learned as ``"isr"``, ``kernel_extent=2.0``.
    widths, hidden, dropout
        As for :class:`PlainCNN`.
    max_order : int, default=6
    index_set : {"total", "tensor"}, default="tensor"
    conv_kwargs : dict, optional
        Extra keyword arguments of every :class:`~skscale.nn.ScaleConvT2H`.
    """

    scale_defaults = ScaleSpec(n_scales=4, init_sigma_basis=1.5, init_isr=2.0)

    def __init__(
        self,
        n_classes,
        in_channels=1,
        scale_spec=None,
        widths=SESN_LAYOUT.widths,
        hidden=SESN_LAYOUT.hidden,
        dropout=SESN_LAYOUT.dropout,
        max_order=6,
        index_set="tensor",
        conv_kwargs=None,
    ):
        super().__init__()
        self.scale_spec = spec = resolve_scale_spec(scale_spec, self.scale_defaults)
        self.scales = InternalScales.from_spec(spec)

        def make_conv(channels, width):
            return ScaleConvT2H(
                channels,
                width,
                self.scales,
                spec.kernel_extent,
                max_order,
                index_set=index_set,
                **(conv_kwargs or {}),
            )

        self.features = mnist_blocks(in_channels, widths, make_conv, project=True)
        self.pool = nn.AdaptiveMaxPool2d(2)
        self.head = sesn_head(self.features[-1].num_features, n_classes, hidden, dropout)

    def forward(self, x):
        return self.head(self.pool(self.features(x)))


@register_architecture("cnn")
class PlainCNN(nn.Module):
    """A plain CNN baseline with the layout and parameter count of :class:`SESNNet`.

    Three blocks of 7 x 7 convolution -> 2 x 2 max pooling -> ReLU -> batch norm (32, 63,
    95 filters), the same head: **494,549** parameters for 10 classes on one channel,
    exactly those of ``SESNNet`` without its scale parameters (a 7 x 7 kernel has as many
    weights as SESN's 49 basis functions).

    Parameters
    ----------
    n_classes : int
    in_channels : int, default=1
    widths : tuple of int, default=SESN_LAYOUT.widths
        Filters of the three blocks, ``(32, 63, 95)`` (:data:`~skscale.nn.blocks.SESN_LAYOUT`).
    kernel_size : int, default=7
    hidden, dropout : int, float, default=SESN_LAYOUT.hidden, SESN_LAYOUT.dropout
        Units and dropout rate of the head, 256 and 0.7 (:func:`~skscale.nn.heads.sesn_head`).
    """

    def __init__(
        self,
        n_classes,
        in_channels=1,
        widths=SESN_LAYOUT.widths,
        kernel_size=7,
        hidden=SESN_LAYOUT.hidden,
        dropout=SESN_LAYOUT.dropout,
    ):
        super().__init__()
        self.features = mnist_blocks(
            in_channels,
            widths,
            lambda channels, width: nn.Conv2d(channels, width, kernel_size, padding=kernel_size // 2),
        )
        self.pool = nn.AdaptiveMaxPool2d(2)
        self.head = sesn_head(self.features[-1].num_features, n_classes, hidden, dropout)

    def forward(self, x):
        return self.head(self.pool(self.features(x)))

"""Whole networks, registered by name for ``ScaleEquivariantClassifier(architecture=...)``.

Every architecture is a function ``builder(*, n_classes, in_channels, image_size,
**hyper_parameters) -> nn.Module`` in :data:`ARCHITECTURES`; add your own with
:func:`register_architecture`. Builders receive every hyper-parameter of the classifier
(``n_scales``, ``parameterisation``, ``init_sigma_basis``, ``init_isr``, ``kernel_extent``,
``n_filters``) and may ignore those that do not apply to them.
"""

from __future__ import annotations

import torch
from torch import nn

from .conv import ScaleConvT2H
from .pooling import ScaleProjection
from .scales import InternalScales

__all__ = [
    "ARCHITECTURES",
    "register_architecture",
    "build_module",
    "count_parameters",
    "Table1Net",
    "SESNNet",
    "PlainCNN",
]

ARCHITECTURES = {}


def register_architecture(name):
    """Register a network builder under ``name`` (a decorator).

    Parameters
    ----------
    name : str
        The value users pass as ``architecture=``.

    Examples
    --------
    >>> from torch import nn
    >>> @register_architecture("tiny-linear")
    ... def tiny(*, n_classes, in_channels, image_size, **ignored):
    ...     return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * image_size[0] * image_size[1], n_classes))
    >>> "tiny-linear" in ARCHITECTURES
    True
    >>> _ = ARCHITECTURES.pop("tiny-linear")
    """

    def decorator(builder):
        ARCHITECTURES[name] = builder
        return builder

    return decorator


def build_module(architecture, *, n_classes, in_channels, image_size, **hyper_parameters):
    """Build the network registered as ``architecture``.

    Parameters
    ----------
    architecture : str
        A key of :data:`ARCHITECTURES`.
    n_classes : int
        Number of output logits.
    in_channels : int
        Image channels.
    image_size : tuple of int
        ``(height, width)`` of the input images.
    **hyper_parameters
        Passed to the builder.

    Returns
    -------
    module : torch.nn.Module
        Maps (B, in_channels, height, width) to (B, n_classes) logits.
    """
    if architecture not in ARCHITECTURES:
        raise ValueError(
            f"architecture must be one of {sorted(ARCHITECTURES)}, got {architecture!r}."
        )
    return ARCHITECTURES[architecture](
        n_classes=n_classes, in_channels=in_channels, image_size=tuple(image_size), **hyper_parameters
    )


def count_parameters(module, trainable_only=True):
    """Number of (trainable) parameters of a module, shared parameters counted once.

    Examples
    --------
    >>> count_parameters(nn.Linear(3, 2))
    8
    """
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def sesn_head(channels, n_classes, hidden, dropout):
    """SESN's classification head for a 2 x 2 feature map.

    Flatten, ``hidden`` units (no bias), batch norm, ReLU, dropout, logits.

    Parameters
    ----------
    channels : int
        Channels of the ``(batch, channels, 2, 2)`` input.
    n_classes : int
        Number of logits.
    hidden : int
        Width of the hidden layer.
    dropout : float
        Dropout probability before the logits.

    Returns
    -------
    torch.nn.Sequential
        ``4 * channels * hidden + 2 * hidden + hidden * n_classes + n_classes`` parameters.
    """
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(4 * channels, hidden, bias=False),
        nn.BatchNorm1d(hidden),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(hidden, n_classes),
    )


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
    n_scales : int, default=3
    parameterisation : {"fixed", "isr", "spacing", "direct"}, default="isr"
    init_sigma_basis : float, default=2.0
    init_isr : float, default=3.0
    kernel_extent : float, default=2.0
    n_filters : int, default=16
    max_order : int, default=3
    pooled_size : int, default=4
    conv_kwargs : dict, optional
        Extra keyword arguments of :class:`~skscale.nn.ScaleConvT2H`.
    """

    def __init__(self, n_classes, in_channels=1, n_scales=3, parameterisation="isr", init_sigma_basis=2.0,
                 init_isr=3.0, kernel_extent=2.0, n_filters=16, max_order=3, pooled_size=4, conv_kwargs=None):
        super().__init__()
        self.scales = InternalScales(n_scales, parameterisation, init_sigma_basis, init_isr)
        self.conv = ScaleConvT2H(in_channels, n_filters, self.scales, kernel_extent, max_order,
                                 **(conv_kwargs or {}))
        self.projection = ScaleProjection("max")
        self.norm = nn.BatchNorm2d(n_filters)
        self.pool = nn.AdaptiveMaxPool2d(pooled_size)
        self.classifier = nn.Linear(n_filters * pooled_size * pooled_size, n_classes)

    def forward(self, x):
        x = torch.relu(self.norm(self.projection(self.conv(x))))
        return self.classifier(torch.flatten(self.pool(x), 1))


class SESNNet(nn.Module):
    """The SESN MNIST network ("scalar" variant) used for the paper's Table 5.

    Three blocks of lifting scale convolution -> max scale projection -> ReLU -> 2 x 2 max
    pooling -> batch norm, with 32, 63 and 95 filters (Sosnovik et al., 2019), then a
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
    n_scales, parameterisation, init_sigma_basis, init_isr, kernel_extent
        As for :class:`InternalScales` and :class:`ScaleConvT2H`.
    widths : tuple of int, default=(32, 63, 95)
    hidden : int, default=256
    dropout : float, default=0.7
    max_order : int, default=6
    index_set : {"total", "tensor"}, default="tensor"
    conv_kwargs : dict, optional
        Extra keyword arguments of every :class:`~skscale.nn.ScaleConvT2H`.
    """

    def __init__(self, n_classes, in_channels=1, n_scales=4, parameterisation="isr", init_sigma_basis=1.5,
                 init_isr=2.0, kernel_extent=2.0, widths=(32, 63, 95), hidden=256, dropout=0.7,
                 max_order=6, index_set="tensor", conv_kwargs=None):
        super().__init__()
        self.scales = InternalScales(n_scales, parameterisation, init_sigma_basis, init_isr)
        blocks = []
        channels = in_channels
        for width in widths:
            blocks += [
                ScaleConvT2H(channels, width, self.scales, kernel_extent, max_order, index_set=index_set,
                             **(conv_kwargs or {})),
                ScaleProjection("max"),
                nn.ReLU(),
                nn.MaxPool2d(2, ceil_mode=True),
                nn.BatchNorm2d(width),
            ]
            channels = width
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveMaxPool2d(2)
        self.head = sesn_head(channels, n_classes, hidden, dropout)

    def forward(self, x):
        return self.head(self.pool(self.features(x)))


class PlainCNN(nn.Module):
    """A plain CNN baseline with the layout and parameter count of :class:`SESNNet`.

    Three blocks of 7 x 7 convolution -> ReLU -> 2 x 2 max pooling -> batch norm (32, 63,
    95 filters), the same head: **494,549** parameters for 10 classes on one channel,
    exactly those of ``SESNNet`` without its scale parameters (a 7 x 7 kernel has as many
    weights as SESN's 49 basis functions).

    Parameters
    ----------
    n_classes : int
    in_channels : int, default=1
    widths : tuple of int, default=(32, 63, 95)
    kernel_size : int, default=7
    hidden : int, default=256
    dropout : float, default=0.7
    """

    def __init__(self, n_classes, in_channels=1, widths=(32, 63, 95), kernel_size=7, hidden=256, dropout=0.7):
        super().__init__()
        blocks = []
        channels = in_channels
        for width in widths:
            blocks += [
                nn.Conv2d(channels, width, kernel_size, padding=kernel_size // 2),
                nn.ReLU(),
                nn.MaxPool2d(2, ceil_mode=True),
                nn.BatchNorm2d(width),
            ]
            channels = width
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveMaxPool2d(2)
        self.head = sesn_head(channels, n_classes, hidden, dropout)

    def forward(self, x):
        return self.head(self.pool(self.features(x)))


_SCALE_KEYS = ("n_scales", "parameterisation", "init_sigma_basis", "init_isr", "kernel_extent")
# Hyper-parameters every builder receives from the classifier, whether it uses them or not.
CLASSIFIER_KEYS = _SCALE_KEYS + ("n_filters",)


def construct(network, architecture, hyper_parameters, *args, uses=()):
    """``network(*args, **kwargs)`` from a builder's ``hyper_parameters``.

    The classifier's shared keys (:data:`CLASSIFIER_KEYS`) are passed only where listed in
    ``uses``; every other key is a ``module__*`` argument of the user and is passed on, so
    that none is silently dropped. One the network does not accept raises a ``ValueError``
    naming it and the accepted ones.
    """
    import inspect

    kwargs = {key: value for key, value in hyper_parameters.items() if key not in CLASSIFIER_KEYS or key in uses}
    accepted = [name for name in inspect.signature(network).parameters if name not in ("n_classes", "in_channels")]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ValueError(
            f"module__{unknown[0]} is not an argument of {network.__name__} (architecture={architecture!r}); "
            f"it accepts {', '.join(accepted)}."
        )
    return network(*args, **kwargs)


@register_architecture("table1")
def _build_table1(*, n_classes, in_channels, image_size, **hyper_parameters):
    return construct(Table1Net, "table1", hyper_parameters, n_classes, in_channels, uses=CLASSIFIER_KEYS)


@register_architecture("sesn")
def _build_sesn(*, n_classes, in_channels, image_size, **hyper_parameters):
    return construct(SESNNet, "sesn", hyper_parameters, n_classes, in_channels, uses=_SCALE_KEYS)


@register_architecture("cnn")
def _build_cnn(*, n_classes, in_channels, image_size, **hyper_parameters):
    return construct(PlainCNN, "cnn", hyper_parameters, n_classes, in_channels)


from . import baselines  # noqa: E402,F401  (registers "dss", "siconvnet", "disco")

"""Building blocks shared by the networks: the SESN MNIST body and the convolution initialisation."""

from __future__ import annotations

import math

from torch import nn

from ..utils.validation import Integer, Sequence
from .pooling import ScaleProjection

__all__ = ["mnist_blocks", "reset_conv_parameters", "check_input_shape"]

_WIDTHS = Sequence(Integer(low=1))


def mnist_blocks(in_channels, widths, make_conv, *, project=False, scale_axis=False):
    """The body of the SESN MNIST networks: one block per width.

    Every block is ``make_conv(channels, width)`` -> [max projection over the scales] ->
    ReLU -> 2 x 2 max pooling (``ceil_mode``) -> batch norm, so that networks of
    different convolutions compare at the same layout (Sosnovik et al., 2019).

    Parameters
    ----------
    in_channels : int
        Channels of the input images.
    widths : sequence of int
        Output channels of every block, e.g. ``(32, 63, 95)``.
    make_conv : callable
        ``make_conv(in_channels, out_channels)`` returns the block's convolution.
    project : bool, default=False
        Follow the convolution with :class:`~skscale.nn.ScaleProjection` ("max").
    scale_axis : bool, default=False
        The features carry a scale axis (B, C, S, H, W) through the pooling and the
        norm (``MaxPool3d((1, 2, 2))`` and ``BatchNorm3d``).

    Returns
    -------
    features : torch.nn.Sequential
        ``4`` (``5`` with ``project``) modules per block, in that order.

    Examples
    --------
    >>> features = mnist_blocks(1, (4, 8), lambda c, o: nn.Conv2d(c, o, 3, padding=1))
    >>> len(features), type(features[-1]).__name__, features[-1].num_features
    (8, 'BatchNorm2d', 8)
    """
    blocks = []
    channels = in_channels
    for width in _WIDTHS.check(widths, "widths"):
        blocks.append(make_conv(channels, width))
        if project:
            blocks.append(ScaleProjection("max"))
        blocks.append(nn.ReLU())
        if scale_axis:
            blocks += [nn.MaxPool3d((1, 2, 2), ceil_mode=True), nn.BatchNorm3d(width)]
        else:
            blocks += [nn.MaxPool2d(2, ceil_mode=True), nn.BatchNorm2d(width)]
        channels = width
    return nn.Sequential(*blocks)


def check_input_shape(layer, x, channels=None, scales=None, *, scale_axis=False):
    """Refuse an input that is not ``(B, channels, H, W)`` or ``(B, channels, scales, H, W)``.

    Parameters
    ----------
    layer : torch.nn.Module
        Named in the error.
    x : tensor
    channels, scales : int, optional
        Required sizes of the channel and scale axes; ``None`` accepts any.
    scale_axis : bool, default=False
        Whether the input has a scale axis (5-D) or not (4-D).

    Raises
    ------
    ValueError
        Naming the layer, the expected shape and the shape it got.
    """
    expected = ["B", "C" if channels is None else channels, "H", "W"]
    if scale_axis:
        expected.insert(2, "S" if scales is None else scales)
    if (
        x.dim() != len(expected)
        or (channels is not None and x.shape[1] != channels)
        or (scale_axis and scales is not None and x.shape[2] != scales)
    ):
        raise ValueError(
            f"{type(layer).__name__} expects input of shape ({', '.join(map(str, expected))}), "
            f"got {tuple(x.shape)}."
        )


def reset_conv_parameters(weight, bias=None, *, zero_bias=False):
    """Initialise a convolution's weights as ``torch.nn.Conv2d`` does.

    Kaiming-uniform weights (``a = sqrt(5)``) with the fan-in of all axes after the first
    (the output channels); a bias uniform in ``+-1 / sqrt(fan_in)``, or zero.

    Parameters
    ----------
    weight : Parameter of shape (O, ...)
    bias : Parameter of shape (O,), optional
    zero_bias : bool, default=False
        Set the bias to zero (DISCO's choice) instead.
    """
    nn.init.kaiming_uniform_(weight.view(weight.shape[0], -1), a=math.sqrt(5))
    if bias is None:
        return
    if zero_bias:
        nn.init.zeros_(bias)
    else:
        bound = 1.0 / math.sqrt(weight[0].numel())
        nn.init.uniform_(bias, -bound, bound)

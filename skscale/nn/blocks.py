"""Building blocks shared by the networks: the SESN MNIST body, convolution checks and initialisation."""

from __future__ import annotations

import math
from typing import NamedTuple

from torch import nn

from ..utils.validation import Integer, Sequence
from .hooks import has_forward_hooks, recording
from .pooling import MaxPool2x2, ScaleProjection

__all__ = [
    "SESNLayout",
    "SESN_LAYOUT",
    "OddKernelConv",
    "mnist_blocks",
    "reset_conv_parameters",
    "check_input_shape",
]

_POSITIVE = Integer(low=1)
_WIDTHS = Sequence(_POSITIVE)


class SESNLayout(NamedTuple):
    """The layout of the SESN MNIST networks (Sosnovik et al., 2020), shared by every
    network compared with them (:func:`mnist_blocks`, :func:`~skscale.nn.heads.sesn_head`).

    Attributes
    ----------
    widths : tuple of int
        Filters of the three blocks.
    hidden : int
        Units of the head's hidden layer.
    dropout : float
        Dropout rate before the logits.
    """

    widths: tuple
    hidden: int
    dropout: float


#: SESN's values: blocks of 32, 63 and 95 filters, a head of 256 units and dropout 0.7.
SESN_LAYOUT = SESNLayout(widths=(32, 63, 95), hidden=256, dropout=0.7)


class ProjectingSequential(nn.Sequential):
    """``nn.Sequential`` that fuses a scale convolution with the max projection that follows it.

    A module with a ``forward_max_projected`` method (:class:`~skscale.nn.ScaleConvT2H`,
    :class:`~skscale.nn.ScaleConvH2H`) followed by ``ScaleProjection("max")`` runs as that
    method: the same values and gradients, without writing and re-reading the
    ``(B, O, S, H, W)`` output (about 0.05 of the ``sesn`` network's inference and 0.1 of
    its training step on a CPU), and in training without keeping it. With a forward hook
    on either module (:func:`~skscale.nn.hooks.has_forward_hooks`), each module runs as in
    ``nn.Sequential``. A graph recorded (``torch.jit.trace``, ``torch.export``,
    ``torch.compile``) is fused in eval mode and runs the modules apart in training mode.
    """

    def forward(self, x):
        modules = list(self)
        # A recorded graph holds torch operations only: the fused backward is a Python function.
        fuse = not (recording() and self.training)
        position = 0
        while position < len(modules):
            module = modules[position]
            following = modules[position + 1] if position + 1 < len(modules) else None
            if (
                fuse
                and isinstance(following, ScaleProjection)
                and following.mode == "max"
                and hasattr(module, "forward_max_projected")
                and not (has_forward_hooks(module) or has_forward_hooks(following))
            ):
                x = module.forward_max_projected(x)
                position += 2
            else:
                x = module(x)
                position += 1
        return x


def mnist_blocks(in_channels, widths, make_conv, *, project=False, scale_axis=False):
    """The body of the SESN MNIST networks: one block per width.

    Every block is ``make_conv(channels, width)`` -> [max projection over the scales] ->
    2 x 2 max pooling (``ceil_mode``; :class:`~skscale.nn.pooling.MaxPool2x2`) -> ReLU ->
    batch norm, so that networks of different convolutions compare at the same layout:
    SESN's (Sosnovik et al., 2019), whose ReLU -> pooling gives the same values and
    gradients as pooling -> ReLU.

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
        The features carry a scale axis (B, C, S, H, W) through the pooling (over H and
        W only) and the norm (``BatchNorm3d``).

    Returns
    -------
    features : ProjectingSequential
        ``4`` (``5`` with ``project``) modules per block, in that order; an
        ``nn.Sequential`` that fuses each convolution with its projection (unless a
        forward hook observes either, or a graph is recorded in training mode).

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
        # Pooling before the ReLU gives what ReLU -> pooling gives (both are monotone), with
        # a quarter of the values to rectify.
        blocks += [MaxPool2x2(), nn.ReLU()]
        blocks.append(nn.BatchNorm3d(width) if scale_axis else nn.BatchNorm2d(width))
        channels = width
    return ProjectingSequential(*blocks)


class OddKernelConv(nn.Module):
    """Base of the convolutions with one learned square kernel of odd size.

    Checks and keeps the sizes every such layer has, and names them first in its repr;
    a subclass creates its weights and adds its own settings.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the input and filters, positive.
    kernel_size : int
        Odd side of the kernel, positive.
    """

    def __init__(self, in_channels, out_channels, kernel_size):
        super().__init__()
        self.in_channels = _POSITIVE.check(in_channels, "in_channels")
        self.out_channels = _POSITIVE.check(out_channels, "out_channels")
        self.kernel_size = Integer(low=1, odd=True).check(kernel_size, "kernel_size")

    def extra_repr(self):
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"


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

"""SiCNN: a multi-column network whose columns share one kernel at different scales.

Xu, Y., Xiao, T., Zhang, J., Yang, K. and Zhang, Z. (2014). Scale-Invariant
Convolutional Neural Networks (arXiv:1411.6369).

Every column of the network sees the same image; column ``j`` correlates with the
layer's one learned kernel rescaled by the factor ``s_j`` (a larger support for a larger
factor), so a pattern shown ``s_j`` times larger excites column ``j`` as the pattern
itself excites the column of factor 1. The columns stay apart through the network (each
has its own batch norm) and are max-pooled at the end, which makes the features locally
invariant to the scales the factors cover.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ...utils.validation import Integer, Real, Sequence
from ..blocks import SESN_LAYOUT, OddKernelConv, check_input_shape, reset_conv_parameters
from ..functional import correlate_same
from ..heads import mnist_head
from ..pooling import MaxPool2x2, ScaleProjection
from ..registry import register_architecture
from .siconvnet import SESN_FACTORS

__all__ = ["MultiColumnConv2d", "ColumnBatchNorm", "SiCNN", "rescaled_kernel_size", "stretch_matrix"]

_POSITIVE_INT = Integer(low=1)
_FACTORS = Sequence(Real(low=0, closed="neither"))


def rescaled_kernel_size(kernel_size, factor):
    """The smallest odd support that holds a ``kernel_size`` kernel stretched by ``factor``.

    Examples
    --------
    >>> [rescaled_kernel_size(7, factor) for factor in SESN_FACTORS]
    [3, 5, 5, 7, 11, 17, 25]
    """
    # The tolerance keeps a width that is odd up to rounding (7 * 1.0, 5 * 0.6) at its size.
    return 2 * max(0, math.ceil((kernel_size * factor - 1) / 2 - 1e-9)) + 1


def stretch_matrix(kernel_size, factor):
    """The (n, kernel_size) map of a kernel's taps to those of the kernel stretched by ``factor``.

    Each tap is taken as a pixel-sized square of a continuous kernel; the kernel is
    stretched by ``factor`` about its centre and integrated over the ``n`` pixels of
    :func:`rescaled_kernel_size`, and divided by ``factor``. Every column sums to 1, so a
    2-D kernel ``A @ W @ A.T`` keeps the sum of ``W`` whatever the factor: it is
    ``W(x / s) / s**2`` sampled by area (antialiased when shrinking, each tap spread over
    ``s`` pixels when stretching), and factor 1 is the identity.

    Examples
    --------
    >>> stretch_matrix(3, 2.0)  # three taps over six pixels, centred on seven
    array([[0.25, 0.  , 0.  ],
           [0.5 , 0.  , 0.  ],
           [0.25, 0.25, 0.  ],
           [0.  , 0.5 , 0.  ],
           [0.  , 0.25, 0.25],
           [0.  , 0.  , 0.5 ],
           [0.  , 0.  , 0.25]])
    """
    size = rescaled_kernel_size(kernel_size, factor)
    # Pixel edges, centred: the stretched taps and the pixels of the new support.
    taps = factor * (np.arange(kernel_size + 1) - kernel_size / 2)
    pixels = np.arange(size + 1) - size / 2
    low = np.maximum(pixels[:-1, None], taps[None, :-1])
    high = np.minimum(pixels[1:, None], taps[None, 1:])
    return np.clip(high - low, 0.0, None) / factor


class MultiColumnConv2d(OddKernelConv):
    """One kernel correlated at several scales, one column per scale: -> (B, O, S, H, W).

    Column ``j`` correlates with the kernel stretched by exactly ``s_j``,
    ``W(x / s_j) / s_j**2`` on the odd support :func:`rescaled_kernel_size` (by area:
    :func:`stretch_matrix`), so that column ``j`` responds to a pattern stretched by its
    factor as the column of factor 1 responds to the pattern. "Same" zero padding keeps
    the spatial size. With ``input_columns=1`` every column reads the
    one ``(B, C, H, W)`` input (the first layer); with ``input_columns=S`` column ``j``
    reads column ``j`` of a ``(B, C, S, H, W)`` input only.

    The one ``weight`` serves every column: its gradient sums the columns' gradients.

    Differences from the SESN benchmark code (``XU_SIConv2d``): kernels are stretched
    onto their own support instead of a common zero-padded one, keep their sum instead of
    their L1 norm (a linear map of the weights), and are resampled by area with the exact
    factor, where the benchmark's whole-pixel sizes change it (its 0.3 is 0.26).

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int, default=7
        Odd size of the learned kernel (the column of factor 1).
    factors : sequence of float, default=SESN_FACTORS
        The scale of every column.
    input_columns : int, default=1
        1, or ``len(factors)``.

    Attributes
    ----------
    weight : Parameter of shape (O, C, kernel_size, kernel_size)
        No bias: the batch norm that follows has one per column.

    Examples
    --------
    >>> layer = MultiColumnConv2d(1, 4, kernel_size=5, factors=(0.5, 1.0, 2.0))
    >>> tuple(layer(torch.randn(2, 1, 16, 16)).shape)
    (2, 4, 3, 16, 16)
    >>> [tuple(kernel.shape[-2:]) for kernel in layer.column_kernels()]
    [(3, 3), (5, 5), (11, 11)]
    """

    def __init__(self, in_channels, out_channels, kernel_size=7, factors=SESN_FACTORS, input_columns=1):
        super().__init__(in_channels, out_channels, kernel_size)
        self.factors = _FACTORS.check(factors, "factors")
        self.input_columns = _POSITIVE_INT.check(input_columns, "input_columns")
        if self.input_columns not in (1, len(self.factors)):
            raise ValueError(
                f"input_columns must be 1 or len(factors)={len(self.factors)}, got {input_columns!r}."
            )
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        # Not in the state dict: they follow from the factors. Factor 1 needs none (identity).
        for index, factor in enumerate(self.factors):
            if factor == 1.0:
                continue
            matrix = torch.as_tensor(stretch_matrix(self.kernel_size, factor), dtype=self.weight.dtype)
            self.register_buffer(f"stretch_{index}", matrix, persistent=False)
        self.reset_parameters()

    def reset_parameters(self):
        """The initialisation of ``nn.Conv2d`` (Kaiming-uniform)."""
        reset_conv_parameters(self.weight)

    def column_kernels(self):
        """The kernel of every column: a list of (O, C, n_j, n_j) tensors."""
        kernels = []
        for index in range(len(self.factors)):
            matrix = getattr(self, f"stretch_{index}", None)  # none for factor 1: the weight itself
            if matrix is None:
                kernels.append(self.weight)
            else:
                matrix = matrix.to(self.weight.dtype)
                kernels.append(matrix @ self.weight @ matrix.T)
        return kernels

    def forward(self, x):
        if self.input_columns == 1:
            check_input_shape(self, x, self.in_channels)
            columns = [x] * len(self.factors)
        else:
            check_input_shape(self, x, self.in_channels, self.input_columns, scale_axis=True)
            columns = x.unbind(2)
        # The large kernels of the large factors go through the FFT where that is cheaper.
        outputs = [
            correlate_same(column, kernel, impl="auto")
            for column, kernel in zip(columns, self.column_kernels())
        ]
        return torch.stack(outputs, dim=2)

    def extra_repr(self):
        return super().extra_repr() + f", factors={self.factors}, input_columns={self.input_columns}"


class ColumnBatchNorm(nn.BatchNorm2d):
    """Batch norm of (B, C, S, H, W) features with its own statistics and affine map per
    channel *and* column (``C * S`` features), as columns of separate networks would have."""

    def __init__(self, channels, n_columns, **kwargs):
        self.channels = _POSITIVE_INT.check(channels, "channels")
        self.n_columns = _POSITIVE_INT.check(n_columns, "n_columns")
        super().__init__(channels * n_columns, **kwargs)

    def forward(self, x):
        check_input_shape(self, x, self.channels, self.n_columns, scale_axis=True)
        batch, channels, n_columns, height, width = x.shape
        flat = super().forward(x.reshape(batch, channels * n_columns, height, width))
        return flat.view(batch, channels, n_columns, height, width)


@register_architecture("sicnn")
class SiCNN(nn.Module):
    """SiCNN for MNIST-sized images (Xu et al., 2014), as benchmarked by SESN.

    Three blocks of :class:`MultiColumnConv2d` (7 x 7 kernels, 32, 63 and 95 filters,
    seven columns of factors :data:`~skscale.nn.baselines.SESN_FACTORS`) -> 2 x 2 max
    pooling -> ReLU -> :class:`ColumnBatchNorm`, then the maximum over the columns and the
    SESN head (2 x 2 max pooling, 256 units without bias, batch norm, ReLU, dropout,
    logits): **496,639** trainable parameters for 10 classes on one channel (the paper's
    Table 5: 497k), the batch norms of the seven columns included.

    Parameters
    ----------
    n_classes : int
    in_channels : int, default=1
    factors : sequence of float, default=SESN_FACTORS
        The scales of the columns.
    kernel_size : int, default=7
    widths, hidden, dropout
        As for :class:`~skscale.nn.models.PlainCNN`; the columns of a block share its filters.
    """

    def __init__(
        self,
        n_classes,
        in_channels=1,
        factors=SESN_FACTORS,
        kernel_size=7,
        widths=SESN_LAYOUT.widths,
        hidden=SESN_LAYOUT.hidden,
        dropout=SESN_LAYOUT.dropout,
    ):
        super().__init__()
        widths = Sequence(_POSITIVE_INT).check(widths, "widths")
        factors = _FACTORS.check(factors, "factors")
        layers, channels, input_columns = [], in_channels, 1
        for width in widths:
            layers += [
                MultiColumnConv2d(channels, width, kernel_size, factors, input_columns),
                MaxPool2x2(),
                nn.ReLU(),
                ColumnBatchNorm(width, len(factors)),
            ]
            channels, input_columns = width, len(factors)
        layers.append(ScaleProjection("max"))
        self.features = nn.Sequential(*layers)
        self.head = mnist_head(channels, n_classes, hidden, dropout)

    def forward(self, x):
        return self.head(self.features(x))

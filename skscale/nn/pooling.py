"""Reductions over the scale axis, and the 2 x 2 spatial max pooling of the MNIST bodies."""

from __future__ import annotations

import torch
from torch import nn

from ..utils.validation import Options
from .hooks import HookCountingModule, takes_backward_path

__all__ = ["ScaleProjection"]


def max_of_planes(planes):
    """Elementwise maximum of a sequence of equally shaped tensors.

    Without gradients, a chain of ``torch.maximum`` over the scale planes takes about half
    the time of ``amax`` over the scale axis on a CPU (no reduction kernel, no ``-inf``
    fill); the values are the same, NaN included.
    """
    out = planes[0]
    for plane in planes[1:]:
        out = torch.maximum(out, plane)
    return out


class ScaleProjection(HookCountingModule):
    """Project a scale-equivariant feature map onto the plane: (B, C, S, H, W) -> (B, C, H, W).

    Max (or mean) over the scale axis gives features invariant to a rescaling that
    shifts the responses along that axis.

    With gradients, ``"max"`` keeps the index of every maximum (``torch.max``), so the
    backward pass routes each gradient to one scale; ``amax``'s backward compares the
    whole input with the result and divides by the count of ties, several passes over
    an input ``S`` times the output's size (about 0.1 of the ``sesn`` training step on a
    CPU). The two agree wherever the maximum is unique. Without gradients it is the
    elementwise maximum of the scale planes (:func:`max_of_planes`).

    Parameters
    ----------
    mode : {"max", "mean"}, default="max"

    Examples
    --------
    >>> import torch
    >>> tuple(ScaleProjection()(torch.randn(2, 4, 3, 8, 8)).shape)
    (2, 4, 8, 8)
    """

    def __init__(self, mode="max"):
        super().__init__()
        self.mode = Options(("max", "mean")).check(mode, "mode")

    def forward(self, x):
        if x.dim() != 5:
            raise ValueError(f"ScaleProjection expects input of shape (B, C, S, H, W), got {tuple(x.shape)}.")
        if self.mode == "mean":
            return x.mean(dim=2)
        if takes_backward_path(self, x):
            return x.max(dim=2).values
        return max_of_planes(x.unbind(dim=2))

    def extra_repr(self):
        return f"mode={self.mode!r}"


class MaxPool2x2(nn.Module):
    """2 x 2 max pooling with stride 2 over the last two axes, odd sizes rounded up.

    ``(..., H, W) -> (..., ceil(H / 2), ceil(W / 2))``: what ``nn.MaxPool2d(2,
    ceil_mode=True)`` gives on ``(B, C, H, W)`` and ``nn.MaxPool3d((1, 2, 2),
    ceil_mode=True)`` on ``(B, C, S, H, W)``. With gradients it is torch's pooling (whose
    backward sends each gradient to one input). Without, it is the maximum of the four
    strided quarters of the input (an odd side padded with ``-inf``): on a CPU torch's
    pooling of contiguous NCHW tensors takes about ten times as long, near 0.05 of the
    ``sesn`` network's inference.

    Examples
    --------
    >>> import torch
    >>> x = torch.randn(2, 3, 7, 8)
    >>> torch.equal(MaxPool2x2()(x), nn.MaxPool2d(2, ceil_mode=True)(x))
    True
    """

    def forward(self, x):
        if x.dim() not in (4, 5):
            raise ValueError(
                f"MaxPool2x2 expects input of shape (B, C, H, W) or (B, C, S, H, W), got {tuple(x.shape)}."
            )
        if takes_backward_path(self, x):
            if x.dim() == 4:
                return nn.functional.max_pool2d(x, 2, ceil_mode=True)
            return nn.functional.max_pool3d(x, (1, 2, 2), ceil_mode=True)
        height, width = x.shape[-2:]
        if height % 2 or width % 2:
            x = nn.functional.pad(x, (0, width % 2, 0, height % 2), value=float("-inf"))
        rows = torch.maximum(x[..., 0::2, :], x[..., 1::2, :])
        return torch.maximum(rows[..., 0::2], rows[..., 1::2])

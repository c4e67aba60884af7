"""Reductions over the scale axis."""

from __future__ import annotations

from torch import nn

from ..utils.validation import Options

__all__ = ["ScaleProjection"]


class ScaleProjection(nn.Module):
    """Project a scale-equivariant feature map onto the plane: (B, C, S, H, W) -> (B, C, H, W).

    Max (or mean) over the scale axis gives features invariant to a rescaling that
    shifts the responses along that axis.

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
        if self.mode == "max":
            return x.amax(dim=2)
        return x.mean(dim=2)

    def extra_repr(self):
        return f"mode={self.mode!r}"

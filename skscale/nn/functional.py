"""Low-level correlation used by the scale convolutions."""

from __future__ import annotations

import torch.nn.functional as F

__all__ = ["correlate_same"]


def correlate_same(x, kernel, stride=1, groups=1):
    """Cross-correlate with zero "same" padding (``padding = size // 2``, odd kernels).

    Parameters
    ----------
    x : tensor of shape (B, C_in, H, W)
    kernel : tensor of shape (C_out, C_in // groups, l, l), ``l`` odd
    stride : int, default=1
    groups : int, default=1

    Returns
    -------
    out : tensor of shape (B, C_out, ceil(H / stride), ceil(W / stride))
    """
    return F.conv2d(x, kernel, stride=stride, padding=kernel.shape[-1] // 2, groups=groups)

"""Classification heads shared by the networks (SESN's MNIST head)."""

from __future__ import annotations

from torch import nn

from .blocks import SESN_LAYOUT

__all__ = ["sesn_head", "mnist_head"]


def sesn_head(channels, n_classes, hidden=SESN_LAYOUT.hidden, dropout=SESN_LAYOUT.dropout):
    """SESN's classification head for a 2 x 2 feature map.

    Flatten, ``hidden`` units (no bias), batch norm, ReLU, dropout, logits.

    Parameters
    ----------
    channels : int
        Channels of the ``(batch, channels, 2, 2)`` input.
    n_classes : int
        Number of logits.
    hidden : int, default=SESN_LAYOUT.hidden
        Width of the hidden layer (256, :data:`~skscale.nn.blocks.SESN_LAYOUT`).
    dropout : float, default=SESN_LAYOUT.dropout
        Dropout probability before the logits (0.7).

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


def mnist_head(channels, n_classes, hidden=SESN_LAYOUT.hidden, dropout=SESN_LAYOUT.dropout):
    """:func:`sesn_head` after max pooling any feature map to 2 x 2 (same parameter count)."""
    return nn.Sequential(nn.AdaptiveMaxPool2d(2), *sesn_head(channels, n_classes, hidden, dropout))

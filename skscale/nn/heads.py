"""Classification heads shared by the networks (SESN's MNIST head)."""

from __future__ import annotations

from torch import nn

__all__ = ["sesn_head", "mnist_head"]


def sesn_head(channels, n_classes, hidden=256, dropout=0.7):
    """SESN's classification head for a 2 x 2 feature map.

    Flatten, ``hidden`` units (no bias), batch norm, ReLU, dropout, logits.

    Parameters
    ----------
    channels : int
        Channels of the ``(batch, channels, 2, 2)`` input.
    n_classes : int
        Number of logits.
    hidden : int, default=256
        Width of the hidden layer.
    dropout : float, default=0.7
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


def mnist_head(channels, n_classes, hidden=256, dropout=0.7):
    """:func:`sesn_head` after max pooling any feature map to 2 x 2 (same parameter count)."""
    return nn.Sequential(nn.AdaptiveMaxPool2d(2), *sesn_head(channels, n_classes, hidden, dropout))

"""BatchNorm statistics that match the current weights ("precise BN").

During training, BatchNorm's running statistics are an exponential average over batches
seen with *earlier* weights; after a short fit (or after the internal scales changed)
they lag behind the network, and eval-mode predictions can collapse onto one class while
training-mode ones are right. :func:`recalibrate_batchnorm` recomputes them with the
weights frozen: a pass over training batches in which only the BatchNorm layers are in
training mode, their statistics averaged over the batches with equal weights.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["BATCHNORM_TYPES", "batchnorm_layers", "recalibrate_batchnorm"]

#: The layers whose running statistics are recomputed (their lazy and synchronised
#: variants are subclasses of these or listed).
BATCHNORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def batchnorm_layers(module):
    """The BatchNorm layers of ``module`` that keep running statistics."""
    return [
        layer
        for layer in module.modules()
        if isinstance(layer, BATCHNORM_TYPES) and layer.track_running_stats and layer.running_mean is not None
    ]


@torch.no_grad()
def recalibrate_batchnorm(module, batches):
    """Recompute the running statistics of every BatchNorm layer of ``module`` on ``batches``.

    Parameters
    ----------
    module : torch.nn.Module
        Left in the training mode it had; its weights are not changed.
    batches : iterable of torch.Tensor
        Input batches on the module's device, e.g. the training images without
        augmentation. Batches of a single sample are skipped (BatchNorm needs two values
        per channel).

    Returns
    -------
    n_samples : int
        Samples the new statistics are averaged over; 0 leaves the statistics as they
        were.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    >>> data = torch.randn(64, 3) * 5 + 2
    >>> recalibrate_batchnorm(net, data.split(16))
    64
    >>> bool(torch.allclose(net[1].running_mean, net[0](data).mean(0), atol=1e-4))
    True
    """
    layers = batchnorm_layers(module)
    if not layers:
        return 0
    saved = [
        (layer.momentum, layer.training, {name: buffer.clone() for name, buffer in layer.named_buffers()})
        for layer in layers
    ]
    was_training = module.training
    n_samples = 0
    try:
        module.eval()
        for layer in layers:
            layer.reset_running_stats()
            layer.momentum = None  # a cumulative average: every batch weighs the same
            layer.train()
        for batch in batches:
            if len(batch) < 2:
                continue
            module(batch)
            n_samples += len(batch)
    finally:
        module.train(was_training)
        for layer, (momentum, training, buffers) in zip(layers, saved):
            layer.momentum = momentum
            layer.train(training)
            if not n_samples:
                for name, value in buffers.items():
                    getattr(layer, name).copy_(value)
    return n_samples

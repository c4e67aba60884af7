"""skorch callbacks for networks with internal scales."""

from __future__ import annotations

import numpy as np
from skorch.callbacks import Callback

from .nn import find_internal_scales

__all__ = ["ScaleTrajectory", "ScaleLRWarmup", "find_internal_scales", "scale_history", "SCALE_PARAM_GROUP"]

#: Name of the optimiser parameter group that holds the scale parameters.
SCALE_PARAM_GROUP = "internal_scales"


def scale_history(history, key="isr"):
    """Per-epoch values of ``key`` (``"isr"`` or ``"sigma_basis"``) recorded by :class:`ScaleTrajectory`.

    Parameters
    ----------
    history : estimator, skorch History or sequence of float
        A fitted classifier (its ``history`` is read), a History, or the values themselves.
    key : str, default="isr"
        The recorded column.

    Returns
    -------
    values : ndarray of shape (n_epochs,)

    Raises
    ------
    ValueError
        If the history has no such column (a network without internal scales) or is empty.
    """
    from skorch.history import History

    source = getattr(history, "history", history)
    if isinstance(source, History):
        try:
            source = source[:, key]
        except KeyError:
            raise ValueError(
                f"the history has no {key!r} column; train with skscale's ScaleTrajectory "
                "callback (ScaleEquivariantClassifier records it on every epoch)."
            ) from None
    values = np.asarray(source, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"each history must hold one {key} value per epoch, got an array of shape {values.shape}.")
    return values


class ScaleTrajectory(Callback):
    """Record the internal scales in the history at the end of every epoch.

    Adds ``sigma_basis`` (float), ``isr`` (float) and ``scales`` (list of float) to
    ``net.history`` for the first :class:`InternalScales` of the module; networks without
    internal scales record nothing.

    Examples
    --------
    >>> # after fit: net.history[:, "isr"] is the ISR after each epoch (the paper's Fig. 6)
    """

    def on_epoch_end(self, net, **kwargs):
        found = find_internal_scales(net.module_)
        if not found:
            return
        scales = found[0]
        net.history.record("sigma_basis", scales.sigma_basis)
        net.history.record("isr", scales.isr)
        net.history.record("scales", scales().detach().cpu().tolist())


class ScaleLRWarmup(Callback):
    """Linear warm-up of the learning rate of the scale parameters.

    In epoch ``e`` (counted from 0) the parameter group named
    :data:`SCALE_PARAM_GROUP` gets ``scale_lr * min(1, e / warmup_epochs)``: the scales
    stay put in the first epoch and reach their own learning rate after
    ``warmup_epochs`` epochs, letting the filter weights settle first. With
    ``warmup_epochs=0`` the rate is ``scale_lr`` from the start.

    Parameters
    ----------
    scale_lr : float
        Learning rate of the scale parameters after the warm-up.
    warmup_epochs : int, default=0
    """

    def __init__(self, scale_lr, warmup_epochs=0):
        self.scale_lr = scale_lr
        self.warmup_epochs = warmup_epochs

    def on_epoch_begin(self, net, **kwargs):
        epoch = len(net.history) - 1  # the history already holds the new epoch's row
        factor = 1.0 if self.warmup_epochs <= 0 else min(1.0, epoch / self.warmup_epochs)
        for group in net.optimizer_.param_groups:
            if group.get("name") == SCALE_PARAM_GROUP:
                group["lr"] = self.scale_lr * factor
        net.history.record("scale_lr", self.scale_lr * factor)

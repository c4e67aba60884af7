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
        raise ValueError(
            f"each history must hold one {key} value per epoch, got an array of shape {values.shape}."
        )
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
    """Linear warm-up of the scale parameters' learning rate, per step, as a multiplier.

    Before every training step the learning rate of the parameter group named
    :data:`SCALE_PARAM_GROUP` is multiplied by ``min(1, t / warmup_epochs)``, where ``t``
    counts the epochs done, fractions included (``epoch + batch / batches_per_epoch``):
    the scales stay put at the first step and reach their full rate after
    ``warmup_epochs`` epochs, letting the filter weights settle first. After the step the
    rate is restored, so the group's rate stays whatever the optimiser and any skorch
    :class:`~skorch.callbacks.LRScheduler` make it: the warm-up composes with schedules
    (list this callback before the scheduler, as the classifier's defaults are).

    The rate used by the last step of every epoch is recorded as ``scale_lr`` in the
    history.

    Parameters
    ----------
    warmup_epochs : float, default=0
        Length of the warm-up in epochs; 0 turns it off.
    """

    def __init__(self, warmup_epochs=0):
        self.warmup_epochs = warmup_epochs

    def _scale_groups(self, net):
        return [group for group in net.optimizer_.param_groups if group.get("name") == SCALE_PARAM_GROUP]

    def on_epoch_begin(self, net, dataset_train=None, **kwargs):
        self.epoch_ = len(net.history) - 1  # the history already holds the new epoch's row
        self.batch_ = 0
        batch_size = net.get_params_for("iterator_train").get("batch_size", net.batch_size)
        try:
            n_samples = len(dataset_train)
        except TypeError:
            n_samples = None
        if n_samples is None or batch_size is None or batch_size <= 0:
            self.batches_per_epoch_ = None
        else:
            self.batches_per_epoch_ = max(1, -(-n_samples // batch_size))

    def factor(self):
        """The multiplier of the coming step."""
        if self.warmup_epochs <= 0:
            return 1.0
        progress = self.epoch_
        if self.batches_per_epoch_:
            progress += min(self.batch_, self.batches_per_epoch_) / self.batches_per_epoch_
        return min(1.0, progress / self.warmup_epochs)

    def on_batch_begin(self, net, training=False, **kwargs):
        if not training:
            return
        factor = self.factor()
        self.saved_ = [group["lr"] for group in self._scale_groups(net)]
        for group in self._scale_groups(net):
            group["lr"] = group["lr"] * factor
        self.used_ = [group["lr"] for group in self._scale_groups(net)]

    def on_batch_end(self, net, training=False, **kwargs):
        if not training:
            return
        for group, rate in zip(self._scale_groups(net), self.saved_):
            group["lr"] = rate
        self.batch_ += 1

    def on_epoch_end(self, net, **kwargs):
        used = getattr(self, "used_", None)
        if used:
            net.history.record("scale_lr", used[0])

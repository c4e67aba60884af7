"""Scale selection by a sweep (once-for-all): one network trained over many ISRs, the best validated.

While it sweeps, :class:`SweepSelection` draws ``log ISR`` uniformly from a wide range for
every training batch (``sigma_basis`` stays where it started), so the shared weights learn
to work over the whole range. Then, for each ISR of a geometric grid, the BatchNorm
statistics are recomputed at that ISR (:func:`~skscale.nn.batchnorm.recalibrate_batchnorm`,
Yu & Huang 2019) and the validation error is measured; the best ISR is kept and the remaining epochs fine-tune
the network there.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from skorch.callbacks import Callback
from skorch.dataset import unpack_data

from .._images import IGNORED_INDEX, image_batches
from ..nn import find_internal_scales
from ..nn.batchnorm import recalibrate_batchnorm
from ..utils.validation import Integer, Pair, Real

__all__ = ["SweepSelection"]


def validation_error_and_loss(net, dataset):
    """Error rate and mean cross-entropy of ``net.module_`` (eval mode) on a dataset of class indices.

    Per image for classification, per pixel for segmentation masks (pixels of class index
    -100, cross-entropy's ``ignore_index``, are left out).
    """
    was_training = net.module_.training
    net.module_.eval()
    n_wrong, total_loss, n_targets = 0, 0.0, 0
    try:
        with torch.no_grad():
            for batch in net.get_iterator(dataset, training=False):
                images, targets = unpack_data(batch)
                logits = net.module_(torch.as_tensor(images).to(net.device))
                targets = torch.as_tensor(targets).to(logits.device).long()
                counted = targets != IGNORED_INDEX
                n_wrong += int(((logits.argmax(dim=1) != targets) & counted).sum())
                total_loss += float(torch.nn.functional.cross_entropy(logits, targets, reduction="sum"))
                n_targets += int(counted.sum())
    finally:
        net.module_.train(was_training)
    return n_wrong / max(n_targets, 1), total_loss / max(n_targets, 1)


class SweepSelection(Callback):
    """Train one network over many ISRs, then keep the ISR with the lowest validation error.

    For the first ``max_epochs - finetune_epochs`` epochs of a training call (at least
    one), every training batch runs at an ISR drawn log-uniformly from ``isr_range``, and
    validation batches at the range's geometric middle; ``sigma_basis`` stays where it
    started. Then, for each of ``n_candidates`` ISRs spaced geometrically over
    ``isr_range``, the BatchNorm statistics are recomputed on up to ``n_recalibration_batches``
    training batches (:func:`~skscale.nn.batchnorm.recalibrate_batchnorm`) and the error on
    the validation split is measured (ties go to the lower validation loss). The best ISR is
    set, its statistics recomputed, and the remaining epochs train (fine-tune) there. If
    training stops earlier (early stopping), the selection runs at the end of training. A
    checkpoint callback that restores an earlier epoch restores that epoch's scales too: the classifier's
    ``early_stopping`` keeps the last epoch with a sweep.

    Parameters
    ----------
    isr_range : (float, float), default=(1.25, 12.0)
        Lowest and highest ISR drawn and validated.
    n_candidates : int, default=8
        ISRs validated (1: the geometric middle of the range, nothing to select).
    finetune_epochs : int, default=2
        Epochs at the selected ISR at the end of each training call.
    n_recalibration_batches : int, default=20
        Training batches read to recompute the BatchNorm statistics at each candidate.

    Attributes
    ----------
    candidates_ : ndarray of shape (n_candidates,)
        The ISRs validated.
    validation_errors_ : ndarray of shape (n_candidates,)
        The validation error rate at each candidate, after recalibration.
    validation_losses_ : ndarray of shape (n_candidates,)
        The validation cross-entropy at each.
    selected_isr_ : float
        The ISR kept.
    """

    def __init__(self, isr_range=(1.25, 12.0), n_candidates=8, finetune_epochs=2, n_recalibration_batches=20):
        self.isr_range = isr_range
        self.n_candidates = n_candidates
        self.finetune_epochs = finetune_epochs
        self.n_recalibration_batches = n_recalibration_batches

    def initialize(self):
        Pair(Real(low=1, closed="neither"), allow_equal=True).check(self.isr_range, "isr_range")
        Integer(low=1).check(self.n_candidates, "n_candidates")
        Integer(low=0).check(self.finetune_epochs, "finetune_epochs")
        Integer(low=1).check(self.n_recalibration_batches, "n_recalibration_batches")
        return super().initialize()

    def candidates(self):
        """The ISRs validated: geometric over ``isr_range`` (its middle for one candidate)."""
        low, high = (float(value) for value in self.isr_range)
        if self.n_candidates == 1:
            return np.array([math.sqrt(low * high)])
        return np.geomspace(low, high, self.n_candidates)

    def _scales(self, net):
        found = find_internal_scales(net.module_)
        return found[0] if found and found[0].n_scales > 1 else None

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        internal = self._scales(net)
        self.sigma_basis_ = internal.sigma_basis if internal is not None else None
        self.sweeping_ = internal is not None
        self.epochs_done_ = 0
        seed = getattr(net, "_seed_", None)
        self.rng_ = np.random.default_rng(None if seed is None else [seed, len(net.history)])

    def on_batch_begin(self, net, training=False, **kwargs):
        if not self.sweeping_:
            return
        low, high = (math.log(float(value)) for value in self.isr_range)
        log_isr = self.rng_.uniform(low, high) if training else 0.5 * (low + high)
        self._scales(net).set_range(self.sigma_basis_, math.exp(log_isr))

    def on_epoch_end(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        self.epochs_done_ += 1
        sweep_epochs = max(1, net.max_epochs - self.finetune_epochs)
        if self.sweeping_ and self.epochs_done_ >= sweep_epochs:
            self.select(net, dataset_train, dataset_valid)

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        self._datasets = (dataset_train, dataset_valid)

    def on_train_end(self, net, X=None, y=None, **kwargs):
        datasets = getattr(self, "_datasets", None)
        if self.sweeping_ and datasets is not None:  # stopped before the sweep ended: select now
            self.select(net, *datasets)
        self._datasets = None

    def select(self, net, dataset_train, dataset_valid):
        """Validate every candidate ISR (BatchNorm recalibrated at each), keep the best."""
        internal = self._scales(net)
        dataset = dataset_valid if dataset_valid is not None else dataset_train
        candidates = self.candidates()
        errors, losses = [], []
        for isr in candidates:
            internal.set_range(self.sigma_basis_, float(isr))
            recalibrate_batchnorm(
                net.module_, image_batches(net, dataset_train, self.n_recalibration_batches)
            )
            error, loss = validation_error_and_loss(net, dataset)
            errors.append(error)
            losses.append(loss)
        best = min(range(len(candidates)), key=lambda position: (errors[position], losses[position]))
        self.candidates_ = candidates
        self.validation_errors_ = np.asarray(errors)
        self.validation_losses_ = np.asarray(losses)
        self.selected_isr_ = float(candidates[best])
        internal.set_range(self.sigma_basis_, self.selected_isr_)
        recalibrate_batchnorm(net.module_, image_batches(net, dataset_train, self.n_recalibration_batches))
        self.sweeping_ = False
        net.history.record("sweep_selected_isr", self.selected_isr_)

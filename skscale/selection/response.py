"""Scale selection from the network's own scale response (expectation-maximisation).

E-step: :func:`read_winning_scales` reads, per image, the internal scale whose response
wins the max scale projection (:class:`~skscale.nn.ScaleProjection`), at the positions the
rest of the network uses and weighted by how much it uses them, with probe scales one
step beyond each end of the current range. M-step: :class:`ResponseSelection` moves
``sigma_basis`` and the ISR part of the way toward the quantiles of those winning scales
after every epoch, while the weights keep training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from skorch.callbacks import Callback

from .._images import image_batches
from ..nn import InternalScales, ScaleConvH2H, ScaleConvT2H, ScaleProjection, find_internal_scales
from ..utils.validation import Integer, Real

__all__ = ["ResponseSelection", "WinningScales", "read_winning_scales", "probe_scales"]


@dataclass
class WinningScales:
    """What :func:`read_winning_scales` read from a batch of images.

    Attributes
    ----------
    log_scales : ndarray of shape (n_images,)
        Per image, the natural log of the scale (pixels) at which the image's response
        curve peaks, refined between neighbouring scales.
    winners : ndarray of shape (n_images,)
        Per image, the index of the read scale where that curve peaks.
    winner_shares : ndarray of shape (n_images, n_read_scales)
        Per image, the weighted share of positions each read scale wins (rows sum to 1).
    read_scales : ndarray of shape (n_read_scales,)
        The scales read: the current internal scales with ``n_probes`` probes on each side.
    n_probes : int
        Probe scales on each side.
    """

    log_scales: np.ndarray
    winners: np.ndarray
    winner_shares: np.ndarray
    read_scales: np.ndarray
    n_probes: int

    def end_shares(self):
        """Share of images whose response curve peaks at a lower probe, and at an upper probe."""
        if self.n_probes == 0 or len(self.log_scales) == 0:
            return 0.0, 0.0
        lower = float(np.mean(self.winners < self.n_probes))
        upper = float(np.mean(self.winners >= len(self.read_scales) - self.n_probes))
        return lower, upper


def probe_scales(scales, n_probes=1):
    """``scales`` with ``n_probes`` more on each side, one log-step apart.

    The step is the mean log-step of ``scales`` (Eq. 2: ``ISR ** (1 / (N_S - 1))``); a
    single scale is given steps of a factor 2.

    Parameters
    ----------
    scales : 1-D tensor
        Increasing internal scales.
    n_probes : int, default=1

    Returns
    -------
    extended : 1-D tensor of float64, length ``len(scales) + 2 * n_probes``
    """
    log_scales = scales.detach().double().cpu().log()
    n_scales = len(log_scales)
    step = (log_scales[-1] - log_scales[0]) / (n_scales - 1) if n_scales > 1 else torch.tensor(math.log(2.0))
    offsets = torch.arange(1, n_probes + 1, dtype=torch.float64) * step
    below = (log_scales[0] - offsets).flip(0)
    above = log_scales[-1] + offsets
    return torch.cat([below, log_scales, above]).exp()


def _winning_log_scale(responses, log_read_scales):
    """Per output position, the log-scale of the maximum over the scale axis, refined by a parabola.

    ``responses`` is ``(B, C, S, H, W)``. Around the winning index ``i`` a parabola through
    the responses at ``i - 1, i, i + 1`` peaks at ``i + (r[i-1] - r[i+1]) / (2 (r[i-1] - 2 r[i] +
    r[i+1]))`` (at most half a step either way); the log-scale is interpolated linearly in
    the index between neighbouring read scales. End scales are not refined.
    """
    n_read = responses.shape[2]
    winner = responses.argmax(dim=2)
    log_at_winner = log_read_scales[winner]
    if n_read < 3:
        return winner, log_at_winner
    inner = winner.clamp(1, n_read - 2)
    before = responses.gather(2, (inner - 1).unsqueeze(2)).squeeze(2)
    centre = responses.gather(2, inner.unsqueeze(2)).squeeze(2)
    after = responses.gather(2, (inner + 1).unsqueeze(2)).squeeze(2)
    curvature = before - 2 * centre + after
    offset = torch.where(curvature < 0, 0.5 * (before - after) / curvature.clamp_max(-1e-12), 0.0)
    offset = offset.clamp(-0.5, 0.5) * ((winner > 0) & (winner < n_read - 1))
    neighbour = (winner + offset.sign().long()).clamp(0, n_read - 1)
    log_scales = log_at_winner + offset.abs() * (log_read_scales[neighbour] - log_at_winner)
    return winner, log_scales


def _scale_convolutions(module, internal_scales):
    return [
        layer
        for layer in module.modules()
        if isinstance(layer, (ScaleConvT2H, ScaleConvH2H)) and layer.scales is internal_scales
    ]


def read_winning_scales(module, images, *, n_probes=1, batch_size=64):
    """The internal scale that wins each image in a network's max scale projection.

    The network reads the images in eval mode with its internal scales extended by
    ``n_probes`` probe scales on each side (:func:`probe_scales`; every scale convolution
    that shares the network's first :class:`~skscale.nn.InternalScales` reads them, the
    weights unchanged), so that objects outside the current range are seen. At the first
    :class:`~skscale.nn.ScaleProjection` in ``max`` mode, every output position
    ``(c, h, w)`` has a winning scale (:func:`_winning_log_scale`, refined between
    neighbouring scales in log-scale) and a weight ``|a * d logit / d a|``: the projected
    activation ``a`` times the gradient of the predicted class's logit with respect to it.
    The weight is zero where the pooling that follows drops a position and grows with the
    head's use of the channel. The image's response curve is the weighted sum over
    positions of the responses at every read scale; its peak, refined by a parabola in
    log-scale, is the image's winning scale.

    Parameters
    ----------
    module : torch.nn.Module
        A network with :class:`~skscale.nn.InternalScales` and a max
        :class:`~skscale.nn.ScaleProjection` after its first scale convolution.
    images : tensor of shape (n_images, channels, height, width)
        On the network's device.
    n_probes : int, default=1
        Probe scales on each side of the current range.
    batch_size : int, default=64
        Images per forward pass.

    Returns
    -------
    WinningScales
    """
    found = find_internal_scales(module)
    projections = [layer for layer in module.modules() if isinstance(layer, ScaleProjection)]
    projections = [layer for layer in projections if layer.mode == "max"]
    if not found or not projections:
        raise ValueError(
            "reading the winning scale needs a network with InternalScales and a max ScaleProjection, "
            f"got {type(module).__name__}."
        )
    internal = found[0]
    parameter = next(iter(module.parameters()), None)
    device = parameter.device if parameter is not None else images.device
    read_scales = probe_scales(internal(), n_probes)
    probe = InternalScales.from_values(read_scales.tolist()).to(device)
    log_read_scales = read_scales.log().to(device)
    convolutions = _scale_convolutions(module, internal)

    captured = {}

    def keep_response(layer, inputs, output):
        captured["responses"] = inputs[0].detach()
        leaf = output.detach().requires_grad_(True)
        captured["projected"] = leaf
        return leaf

    was_training = module.training
    requires_grad = {parameter: parameter.requires_grad for parameter in module.parameters()}
    handle = projections[0].register_forward_hook(keep_response)
    log_scales, winners, shares = [], [], []
    try:
        for layer in convolutions:
            layer.scales = probe
        module.eval()
        module.requires_grad_(False)
        for batch in torch.as_tensor(images).split(batch_size):
            with torch.enable_grad():
                logits = module(batch.to(device))
                chosen = logits.argmax(dim=1, keepdim=True)
                logits.gather(1, chosen).sum().backward()
            projected = captured["projected"]
            weights = (projected.detach() * projected.grad).abs().flatten(1)
            # An image the head does not react to at all: every position counts alike.
            weights = torch.where(weights.sum(dim=1, keepdim=True) > 0, weights, torch.ones_like(weights))
            weights = weights / weights.sum(dim=1, keepdim=True)
            responses = captured["responses"]
            winner, _ = _winning_log_scale(responses, log_read_scales)
            one_hot = torch.nn.functional.one_hot(winner.flatten(1).long(), len(read_scales))
            shares.append((weights.unsqueeze(2) * one_hot.to(weights.dtype)).sum(dim=1))
            # The image's response curve: every scale's response, weighted as the positions.
            curve = (responses.movedim(2, -1).flatten(1, -2).to(weights.dtype) * weights.unsqueeze(2)).sum(
                dim=1
            )
            image_winner, image_log_scale = _winning_log_scale(curve[:, None, :, None, None], log_read_scales)
            winners.append(image_winner.flatten())
            log_scales.append(image_log_scale.flatten())
    finally:
        handle.remove()
        for layer in convolutions:
            layer.scales = internal
        for parameter, flag in requires_grad.items():
            parameter.requires_grad_(flag)
        module.train(was_training)
    return WinningScales(
        log_scales=torch.cat(log_scales).double().cpu().numpy(),
        winners=torch.cat(winners).cpu().numpy(),
        winner_shares=torch.cat(shares).double().cpu().numpy(),
        read_scales=read_scales.numpy(),
        n_probes=n_probes,
    )


def dataset_images(net, dataset, n_images, seed=0):
    """Up to ``n_images`` images of a skorch dataset, evenly spaced through it, stacked."""
    n_total = len(dataset)
    positions = np.unique(np.linspace(0, n_total - 1, num=min(n_images, n_total)).round().astype(int))
    subset = torch.utils.data.Subset(dataset, positions.tolist())
    return torch.cat(list(image_batches(net, subset)))


class ResponseSelection(Callback):
    """Move the internal scales toward the scales at which the network's response wins.

    After every epoch, on up to ``n_images`` images (the validation split if there is one,
    else evenly spaced training images) :func:`read_winning_scales` gives each image's
    winning log-scale ``L``. The targets are ``log sigma* = quantile(L, q)`` and ``log
    ISR* = quantile(L, 1 - q) - quantile(L, q)`` (at least ``log min_isr``, at most ``log
    max_isr``); if an end probe wins most images, that end of the target reaches at least
    the probe (the range is too narrow: widen). Then (Eq. 2's two numbers, in log-scale)::

        log sigma_basis += damping * (log sigma* - log sigma_basis)
        log ISR         += damping * (log ISR* - log ISR)

    and the scales are set with :meth:`skscale.nn.InternalScales.set_range`.

    Records per epoch in the history: ``response_sigma_basis``, ``response_isr`` (the
    targets), ``response_lower_share`` and ``response_upper_share`` (the share of images an
    end probe wins).

    Parameters
    ----------
    damping : float, default=0.5
        Fraction of the way moved each epoch, in [0, 1]; 0 reads but never moves.
    quantile : float, default=0.1
        ``q`` above, in [0, 0.5).
    n_images : int, default=256
        Images read per epoch.
    n_probes : int, default=1
        Probe scales beyond each end.
    min_isr, max_isr : float, default=1.25, 16.0
        Bounds of the target ISR.
    min_sigma_basis : float, default=0.5
        Floor of the target ``sigma_basis``, in pixels: finer scales sample the Hermite
        functions below the pixel grid, where they answer to pixel noise and edges
        rather than to the object's size (the lower probe can still read below it).
    widen_share : float, default=0.5
        An end probe that wins more than this share of the images widens the range.
    """

    def __init__(
        self,
        damping=0.5,
        quantile=0.1,
        n_images=256,
        n_probes=1,
        min_isr=1.25,
        max_isr=16.0,
        widen_share=0.5,
        min_sigma_basis=0.5,
    ):
        self.damping = damping
        self.quantile = quantile
        self.n_images = n_images
        self.n_probes = n_probes
        self.min_isr = min_isr
        self.max_isr = max_isr
        self.widen_share = widen_share
        self.min_sigma_basis = min_sigma_basis

    def initialize(self):
        Real(low=0, high=1).check(self.damping, "damping")
        Real(low=0, high=0.5, closed="left").check(self.quantile, "quantile")
        Integer(low=1).check(self.n_images, "n_images")
        Integer(low=0).check(self.n_probes, "n_probes")
        Real(low=1, closed="neither").check(self.min_isr, "min_isr")
        Real(low=self.min_isr).check(self.max_isr, "max_isr")
        Real(low=0, high=1).check(self.widen_share, "widen_share")
        Real(low=0, closed="neither").check(self.min_sigma_basis, "min_sigma_basis")
        return super().initialize()

    def targets(self, read):
        """``(sigma*, ISR*)`` of the winning scales ``read`` (a :class:`WinningScales`)."""
        low, high = np.quantile(read.log_scales, [self.quantile, 1 - self.quantile])
        lower_share, upper_share = read.end_shares()
        log_read = np.log(read.read_scales)
        if self.n_probes and lower_share > self.widen_share:
            low = min(low, log_read[0])
        if self.n_probes and upper_share > self.widen_share:
            high = max(high, log_read[-1])
        low_floor = math.log(self.min_sigma_basis)
        # The range keeps its top when the floor raises its bottom.
        log_isr = float(np.clip(high - max(low, low_floor), math.log(self.min_isr), math.log(self.max_isr)))
        return math.exp(max(low, low_floor)), math.exp(log_isr)

    def on_epoch_end(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        found = find_internal_scales(net.module_)
        if not found or found[0].n_scales < 2:
            return
        internal = found[0]
        dataset = dataset_valid if dataset_valid is not None else dataset_train
        images = dataset_images(net, dataset, self.n_images)
        read = read_winning_scales(net.module_, images, n_probes=self.n_probes, batch_size=net.batch_size)
        target_sigma, target_isr = self.targets(read)
        log_sigma = math.log(internal.sigma_basis)
        log_isr = math.log(internal.isr)
        log_sigma += self.damping * (math.log(target_sigma) - log_sigma)
        log_isr += self.damping * (math.log(target_isr) - log_isr)
        if self.damping > 0:
            internal.set_range(math.exp(log_sigma), math.exp(log_isr))
        lower_share, upper_share = read.end_shares()
        net.history.record("response_sigma_basis", target_sigma)
        net.history.record("response_isr", target_isr)
        net.history.record("response_lower_share", lower_share)
        net.history.record("response_upper_share", upper_share)

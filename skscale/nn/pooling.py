"""Reductions over the scale axis, and the 2 x 2 spatial max pooling of the MNIST bodies."""

from __future__ import annotations

import functools

import torch
from torch import nn

from ..utils.validation import Options
from .hooks import HookCountingModule, recording, takes_backward_path

__all__ = ["ScaleProjection"]


def common_dtype(tensors):
    """The dtype that torch's type promotion gives an operation on all of ``tensors``."""
    return functools.reduce(torch.promote_types, [tensor.dtype for tensor in tensors])


def max_of_planes(planes, out=None):
    """Elementwise maximum of a sequence of equally shaped tensors.

    Without gradients, a chain of ``torch.maximum`` over the scale planes takes about half
    the time of ``amax`` over the scale axis on a CPU (no reduction kernel, no ``-inf``
    fill); the values are the same, NaN included. Unless autograd or a recording sees
    it, the chain runs in place after its first step: one result is written, not one per
    plane.

    Parameters
    ----------
    planes : sequence of tensors
    out : tensor, optional
        Where to write the result (a tensor that autograd does not record).

    Returns
    -------
    out : tensor
    """
    if len(planes) == 1:
        return planes[0] if out is None else out.copy_(planes[0])
    if out is None:
        out = torch.maximum(planes[0], planes[1])
        if out.requires_grad or recording():  # a recorded chain writes nothing in place
            for plane in planes[2:]:
                out = torch.maximum(out, plane)
            return out
        # In place, the first step's result must already hold every plane's dtype (autocast
        # mixes bf16 and float32 planes); widening is exact.
        out = out.to(common_dtype(planes))
    else:
        torch.maximum(planes[0], planes[1], out=out)
    for plane in planes[2:]:
        torch.maximum(out, plane, out=out)
    return out


def _maximum_and_first_position(planes):
    """Elementwise maximum of ``planes`` and the index of the first plane holding it.

    The index (``uint8``, or ``int16`` past 256 planes) counts the leading planes below the
    maximum, so where the maximum is NaN it is 0.
    """
    out = max_of_planes(planes) if len(planes) > 1 else planes[0].clone()
    dtype = torch.uint8 if len(planes) <= 256 else torch.int16
    winner = torch.zeros(out.shape, dtype=dtype, device=out.device)
    # below: every plane so far is below the maximum (never where it is NaN).
    below = None
    for plane in planes[:-1]:
        below = plane < out if below is None else below.logical_and_(plane < out)
        winner += below
    return out, winner


def _keep_position(ctx, output):
    """Save the position of every maximum (``output[1]``, not differentiable) for both AD modes."""
    winner = output[1]
    ctx.mark_non_differentiable(winner)
    ctx.save_for_backward(winner)
    ctx.save_for_forward(winner)


class _GroupMax(torch.autograd.Function):
    """Maximum over the scale axis of several ``(B, C, S_g, H, W)`` tensors taken together.

    Forward: the elementwise maximum of all scale planes (NaN propagates) and, per output,
    the position of the first plane that holds it (``uint8``, or ``int16`` past 255
    planes): the number of leading planes below the maximum. Backward: every group's
    gradient is ``grad`` where that position is one of its planes and zero elsewhere,
    written once at the group's shape.

    Counting and multiplying by masks, not ``masked_fill`` or ``where``: on a CPU torch's
    kernels with a boolean mask are several times slower than arithmetic on it.
    """

    @staticmethod
    def forward(*groups):
        planes = [plane for group in groups for plane in group.unbind(dim=2)]
        return _maximum_and_first_position(planes)

    @staticmethod
    def setup_context(ctx, inputs, output):
        _keep_position(ctx, output)
        ctx.groups = [(int(group.shape[2]), group.dtype) for group in inputs]

    @staticmethod
    def backward(ctx, grad, _):
        (winner,) = ctx.saved_tensors
        winner, grad = winner.unsqueeze(2), grad.unsqueeze(2)
        grads, first = [], 0
        for n_scales, dtype in ctx.groups:
            positions = torch.arange(first, first + n_scales, dtype=winner.dtype, device=winner.device)
            # In the group's dtype: under autocast, groups may differ (bf16 direct, float32 FFT).
            grads.append((grad * (winner == positions.view(-1, 1, 1))).to(dtype))
            first += n_scales
        return tuple(grads)

    @staticmethod
    def jvp(ctx, *tangents):
        (winner,) = ctx.saved_tensors
        # The tangent of the plane that holds each maximum (a group without one: zero).
        tangents = [
            winner.new_zeros((*winner.shape[:2], n_scales, *winner.shape[2:]), dtype=dtype)
            if tangent is None
            else tangent
            for tangent, (n_scales, dtype) in zip(tangents, ctx.groups)
        ]
        planes = torch.cat(tangents, dim=2) if len(tangents) > 1 else tangents[0]
        return planes.gather(2, winner.long().unsqueeze(2)).squeeze(2), None

    @staticmethod
    def vmap(info, in_dims, *groups):
        # The mapped axis joins the batch axis; a group that is not mapped is repeated.
        folded = [
            (
                group.movedim(axis, 0) if axis is not None else group.expand(info.batch_size, *group.shape)
            ).flatten(0, 1)
            for group, axis in zip(groups, in_dims)
        ]
        out, winner = _GroupMax.apply(*folded)
        return (out.unflatten(0, (info.batch_size, -1)), winner.unflatten(0, (info.batch_size, -1))), (0, 0)


def max_over_scale_groups(groups, backward, out=None):
    """``torch.cat(groups, dim=2)`` reduced by its maximum over the scale axis, without the concatenation.

    Parameters
    ----------
    groups : sequence of tensors of shape (B, C, S_g, H, W)
        Equal but for ``S_g``: the scales of a convolution's support groups.
    backward : bool
        Whether a backward pass follows. Then the gradient goes to the first scale holding
        each maximum (``torch.max``'s choice on ties; where the maximum is NaN, the first
        scale), the same as ``torch.max``'s wherever the incoming gradient is finite
        (the others get ``0 * grad``). Otherwise the result is the chain of
        :func:`max_of_planes`.
    out : tensor, optional
        Without ``backward``: where to write the result.

    Returns
    -------
    out : tensor of shape (B, C, H, W)
    """
    if backward:
        return _GroupMax.apply(*groups)[0]
    return max_of_planes([plane for group in groups for plane in group.unbind(dim=2)], out=out)


class ScaleProjection(HookCountingModule):
    """Project a scale-equivariant feature map onto the plane: (B, C, S, H, W) -> (B, C, H, W).

    Max (or mean) over the scale axis gives features invariant to a rescaling that
    shifts the responses along that axis.

    With gradients, ``"max"`` keeps the index of every maximum (``torch.max``), so the
    backward pass routes each gradient to one scale; ``amax``'s backward compares the
    whole input with the result and divides by the count of ties, several passes over
    an input ``S`` times the output's size. The two agree wherever the maximum is unique.
    Without gradients it is the elementwise maximum of the scale planes (:func:`max_of_planes`).

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


def _window_maxima(winner, rows, columns):
    """Flat index of every window's maximum in the ``(2 rows, 2 columns)`` input: ``(N, rows * columns)``."""
    width = 2 * columns
    corner = torch.arange(0, rows * 2 * width, 2 * width, device=winner.device).view(-1, 1)
    corner = corner + torch.arange(0, width, 2, device=winner.device)
    winner = winner.long()
    return (corner + (winner >> 1) * width + (winner & 1)).view(-1, rows * columns)


class _MaxPool2x2(torch.autograd.Function):
    """2 x 2 max pooling with stride 2 of ``(..., H, W)``, ``H`` and ``W`` even, for autograd.

    Forward: the maximum of the four strided quarters of the input and the quarter that
    holds it, as torch's pooling on a CPU chooses: the first in scan order (top left, top
    right, bottom left, bottom right), or the last NaN of a window that holds one.
    Returns both; the position is not differentiable. Backward: ``grad`` scattered to
    that position of every window, zero at the other three; a tangent is gathered from it.
    """

    @staticmethod
    def forward(x):
        quarters = [x[..., row::2, column::2] for row in (0, 1) for column in (0, 1)]
        out, winner = _maximum_and_first_position(quarters)
        if out.isnan().any():
            for position, quarter in enumerate(quarters):
                winner.masked_fill_(quarter.isnan(), position)
        return out, winner

    @staticmethod
    def setup_context(ctx, inputs, output):
        _keep_position(ctx, output)

    @staticmethod
    def backward(ctx, grad, _):
        (winner,) = ctx.saved_tensors
        rows, columns = grad.shape[-2:]
        index = _window_maxima(winner, rows, columns)
        spread = grad.new_zeros((index.shape[0], 4 * rows * columns))
        # Out of place: vmap has a batching rule for it (per-example gradients), not for scatter_.
        spread = spread.scatter(1, index, grad.reshape(-1, rows * columns))
        return spread.view(*grad.shape[:-2], 2 * rows, 2 * columns)

    @staticmethod
    def jvp(ctx, tangent):
        (winner,) = ctx.saved_tensors
        rows, columns = winner.shape[-2:]
        index = _window_maxima(winner, rows, columns)
        return tangent.reshape(index.shape[0], -1).gather(1, index).view(winner.shape), None

    @staticmethod
    def vmap(info, in_dims, x):
        # Any leading axes pool alike: the mapped one goes first.
        return _MaxPool2x2.apply(x.movedim(in_dims[0], 0)), (0, 0)


class MaxPool2x2(nn.Module):
    """2 x 2 max pooling with stride 2 over the last two axes, odd sizes rounded up.

    ``(..., H, W) -> (..., ceil(H / 2), ceil(W / 2))``: what ``nn.MaxPool2d(2,
    ceil_mode=True)`` gives on ``(B, C, H, W)`` and ``nn.MaxPool3d((1, 2, 2),
    ceil_mode=True)`` on ``(B, C, S, H, W)``: the maximum of the four strided quarters of
    the input (an odd side padded with ``-inf``), which on a CPU is much faster than
    torch's pooling of contiguous NCHW tensors. With gradients the position of every
    maximum is kept too, and the backward sends each gradient to it, as torch's pooling
    does (a graph recorded in training mode runs torch's pooling).

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
        backward = takes_backward_path(self, x)
        # torch's pooling: in a recorded graph (torch operations only), and off contiguous CPU
        # tensors, where ours was not measured faster (channels-last: torch's is faster).
        if backward and (recording() or x.device.type != "cpu" or not x.is_contiguous()):
            if x.dim() == 4:
                return nn.functional.max_pool2d(x, 2, ceil_mode=True)
            return nn.functional.max_pool3d(x, (1, 2, 2), ceil_mode=True)
        height, width = x.shape[-2:]
        if height % 2 or width % 2:
            x = nn.functional.pad(x, (0, width % 2, 0, height % 2), value=float("-inf"))
        if backward:
            return _MaxPool2x2.apply(x)[0]
        rows = torch.maximum(x[..., 0::2, :], x[..., 1::2, :])
        return torch.maximum(rows[..., 0::2], rows[..., 1::2])

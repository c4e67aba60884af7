"""Scale convolutions: lifting (T -> H, Eq. 3) and scale-to-scale (H -> H, Eq. 4).

A kernel is a learned linear combination of the Hermite-Gaussian basis of
:mod:`skscale.basis`, evaluated at every internal scale. Each scale is convolved with a
kernel of its own support ``2 * ceil(k * sigma_i) + 1``; scales with the same support
share one convolution call. The largest support is Eq. 6 of the paper.
"""

from __future__ import annotations

import math
import numbers
from collections import OrderedDict

import torch
from torch import nn

from ..basis import hermite_basis, n_basis_functions, support_sizes
from .functional import correlate_same
from .scales import InternalScales

__all__ = ["ScaleConvT2H", "ScaleConvH2H"]


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")


def _as_internal_scales(scales):
    if isinstance(scales, InternalScales):
        return scales
    if isinstance(scales, nn.Module):
        raise ValueError(
            f"scales must be an InternalScales module or a sequence of floats, got {type(scales).__name__}."
        )
    return InternalScales.from_values(scales)


class _ScaleConv(nn.Module):
    """Shared machinery: scale handling, basis cache, support groups."""

    def __init__(self, in_channels, out_channels, scales, kernel_extent, max_order, index_set,
                 stride, bias, weight_shape):
        super().__init__()
        _check_positive_int("in_channels", in_channels)
        _check_positive_int("out_channels", out_channels)
        _check_positive_int("stride", stride)
        if isinstance(kernel_extent, bool) or not isinstance(kernel_extent, numbers.Real) \
                or not math.isfinite(kernel_extent) or kernel_extent <= 0:
            raise ValueError(f"kernel_extent must be a positive finite number, got {kernel_extent!r}.")
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.scales = _as_internal_scales(scales)
        self.kernel_extent = float(kernel_extent)
        self.max_order = max_order
        self.index_set = index_set
        self.n_functions = n_basis_functions(max_order, index_set)
        self.stride = int(stride)
        self.weight = nn.Parameter(torch.empty(*weight_shape, self.n_functions))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self._basis_cache = None
        self.reset_parameters()

    def reset_parameters(self):
        """Kaiming-uniform weights with fan-in ``C_in * [scale_size *] F`` (as ``nn.Conv2d``)."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight[0].numel()
            bound = 1.0 / math.sqrt(fan_in)
            nn.init.uniform_(self.bias, -bound, bound)

    @property
    def n_scales(self):
        return self.scales.n_scales

    def kernel_sizes(self):
        """Current per-scale kernel supports; the largest is Eq. 6."""
        return support_sizes(self.scales(), self.kernel_extent)

    def basis_groups(self):
        """Basis of every support group: list of ``(indices, basis (F, S_g, l, l))``.

        Fixed scales: computed once and reused. Trainable scales: rebuilt on every call
        while training (the basis must carry the graph to the scale parameters) and reused
        in eval mode under ``torch.no_grad()`` until a scale parameter changes.
        """
        dtype, device = self.weight.dtype, self.weight.device
        cacheable = not self.scales.trainable or (not self.training and not torch.is_grad_enabled())
        key = (self.scales.state_key(), dtype, device)
        if cacheable and self._basis_cache is not None and self._basis_cache[0] == key:
            return self._basis_cache[1]
        scales = self.scales().to(dtype)
        groups = OrderedDict()
        for index, size in enumerate(support_sizes(scales, self.kernel_extent)):
            groups.setdefault(size, []).append(index)
        result = []
        for size, indices in groups.items():
            index_tensor = torch.tensor(indices, device=device)
            basis = hermite_basis(scales[index_tensor], size, self.max_order, index_set=self.index_set)
            result.append((indices, basis))
        if cacheable:
            result = [(indices, basis.detach()) for indices, basis in result]
            self._basis_cache = (key, result)
        return result

    def _apply(self, fn, *args, **kwargs):
        self._basis_cache = None  # dtype/device moves invalidate the cache
        return super()._apply(fn, *args, **kwargs)

    def __getstate__(self):
        state = super().__getstate__()
        state = dict(state)
        state["_basis_cache"] = None
        return state

    def _assemble(self, outputs, indices_per_group):
        """Concatenate group outputs ``(B, O, S_g, H, W)`` along the scale axis in scale order."""
        order = [i for indices in indices_per_group for i in indices]
        out = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=2)
        if order != sorted(order):
            inverse = torch.empty(len(order), dtype=torch.long)
            inverse[torch.tensor(order)] = torch.arange(len(order))
            out = out.index_select(2, inverse.to(out.device))
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1, 1, 1)
        return out

    def extra_repr(self):
        return (
            f"{self.in_channels}, {self.out_channels}, n_scales={self.n_scales}, "
            f"kernel_extent={self.kernel_extent}, max_order={self.max_order}, "
            f"index_set={self.index_set!r}, stride={self.stride}, bias={self.bias is not None}"
        )


class ScaleConvT2H(_ScaleConv):
    """Lifting scale convolution (Eq. 3): (B, C, H, W) -> (B, O, S, H', W').

    The output at internal scale ``s`` is the input correlated with the kernel
    ``sum_f w[o, c, f] psi_f(. / s) / s**2``: the same learned kernel dilated to every
    scale (Eq. 1), so that rescaling the input by 2 shifts the responses by one octave
    along the scale axis.

    Parameters
    ----------
    in_channels : int
        Channels ``C`` of the input.
    out_channels : int
        Filters ``O``.
    scales : InternalScales or sequence of float
        Internal scales, usually an :class:`InternalScales` shared by all layers; a
        sequence of floats gives fixed scales.
    kernel_extent : float, default=2.0
        ``k`` of Eq. 6; the kernel at scale ``sigma`` has support ``2 ceil(k sigma) + 1``.
    max_order : int, default=3
        Highest Hermite order of the basis.
    index_set : {"total", "tensor"}, default="total"
        Which order pairs enter the basis (see :func:`skscale.basis.hermite_basis`).
    stride : int, default=1
        Spatial stride; padding is "same" (``l // 2`` for every scale), so the output is
        ``ceil(H / stride) x ceil(W / stride)`` whatever the kernel sizes.
    bias : bool, default=True
        One bias per output channel, shared by all scales (keeps equivariance).

    Attributes
    ----------
    weight : Parameter of shape (O, C, F)
        Coefficients of the ``F`` basis functions.
    bias : Parameter of shape (O,) or None

    Examples
    --------
    >>> import torch
    >>> from skscale.nn import InternalScales, ScaleConvT2H
    >>> layer = ScaleConvT2H(3, 8, InternalScales(n_scales=3, init_sigma_basis=1.0, init_isr=2.0))
    >>> tuple(layer(torch.randn(2, 3, 32, 32)).shape)
    (2, 8, 3, 32, 32)
    """

    def __init__(self, in_channels, out_channels, scales, kernel_extent=2.0, max_order=3, *,
                 index_set="total", stride=1, bias=True):
        super().__init__(in_channels, out_channels, scales, kernel_extent, max_order, index_set,
                         stride, bias, weight_shape=(out_channels, in_channels))

    def forward(self, x):
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"ScaleConvT2H expects input of shape (B, {self.in_channels}, H, W), got {tuple(x.shape)}."
            )
        outputs, indices_per_group = [], []
        for indices, basis in self.basis_groups():
            size, n_group = basis.shape[-1], basis.shape[1]
            # (O, S_g, C, l, l): the same coefficients on the basis at each scale of the group.
            kernel = torch.einsum("ocf,fsyx->oscyx", self.weight, basis)
            kernel = kernel.reshape(self.out_channels * n_group, self.in_channels, size, size)
            out = correlate_same(x, kernel, stride=self.stride)
            outputs.append(out.view(out.shape[0], self.out_channels, n_group, *out.shape[-2:]))
            indices_per_group.append(indices)
        return self._assemble(outputs, indices_per_group)


class ScaleConvH2H(_ScaleConv):
    """Scale-to-scale convolution (Eq. 4): (B, C, S, H, W) -> (B, O, S, H', W').

    The output at scale ``s`` correlates the input at scales ``s .. s + scale_size - 1``
    with kernels at scale ``s`` (``scale_size = 1`` is Eq. 4; larger values add
    inter-scale interaction as in SESN). Input scales past the last one are zero, which
    truncates the scale axis at its upper end.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels ``C`` and filters ``O``.
    scales : InternalScales or sequence of float
        Must hold as many scales as the input's scale axis.
    scale_size : int, default=1
        Number of neighbouring input scales each output scale reads.
    kernel_extent : float, default=2.0
        ``k`` of Eq. 6.
    max_order : int, default=3
        Highest Hermite order of the basis.
    index_set : {"total", "tensor"}, default="total"
    stride : int, default=1
    bias : bool, default=True

    Attributes
    ----------
    weight : Parameter of shape (O, C, scale_size, F)
    bias : Parameter of shape (O,) or None

    Examples
    --------
    >>> import torch
    >>> from skscale.nn import InternalScales, ScaleConvH2H
    >>> layer = ScaleConvH2H(4, 6, InternalScales(n_scales=3, init_sigma_basis=1.0), scale_size=2)
    >>> tuple(layer(torch.randn(2, 4, 3, 20, 20)).shape)
    (2, 6, 3, 20, 20)
    """

    def __init__(self, in_channels, out_channels, scales, scale_size=1, kernel_extent=2.0,
                 max_order=3, *, index_set="total", stride=1, bias=True):
        _check_positive_int("scale_size", scale_size)
        self.scale_size = int(scale_size)
        super().__init__(in_channels, out_channels, scales, kernel_extent, max_order, index_set,
                         stride, bias, weight_shape=(out_channels, in_channels, scale_size))

    def forward(self, x):
        if x.dim() != 5 or x.shape[1] != self.in_channels or x.shape[2] != self.n_scales:
            raise ValueError(
                f"ScaleConvH2H expects input of shape (B, {self.in_channels}, {self.n_scales}, H, W), "
                f"got {tuple(x.shape)}."
            )
        batch, channels, n_scales, height, width = x.shape
        if self.scale_size > 1:
            x = nn.functional.pad(x, (0, 0, 0, 0, 0, self.scale_size - 1))
            # (B, C, S, H, W, scale_size): the input scales each output scale reads.
            windows = x.unfold(2, self.scale_size, 1)
        else:
            windows = x.unsqueeze(-1)
        outputs, indices_per_group = [], []
        for indices, basis in self.basis_groups():
            size, n_group = basis.shape[-1], basis.shape[1]
            index_tensor = torch.tensor(indices, device=x.device)
            group_input = windows.index_select(2, index_tensor) if n_group != n_scales else windows
            group_input = group_input.permute(0, 2, 1, 5, 3, 4).reshape(
                batch, n_group * channels * self.scale_size, height, width
            )
            # (S_g, O, C, scale_size, l, l), then one convolution group per scale.
            kernel = torch.einsum("ocjf,fsyx->socjyx", self.weight, basis)
            kernel = kernel.reshape(n_group * self.out_channels, channels * self.scale_size, size, size)
            out = correlate_same(group_input, kernel, stride=self.stride, groups=n_group)
            out = out.view(batch, n_group, self.out_channels, *out.shape[-2:]).transpose(1, 2)
            outputs.append(out)
            indices_per_group.append(indices)
        return self._assemble(outputs, indices_per_group)

    def extra_repr(self):
        return super().extra_repr() + f", scale_size={self.scale_size}"

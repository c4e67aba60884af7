"""Scale convolutions: lifting (T -> H, Eq. 3) and scale-to-scale (H -> H, Eq. 4).

A kernel is a learned linear combination of the Hermite-Gaussian basis of
:mod:`skscale.basis`, evaluated at every internal scale. Each scale is convolved with a
kernel of its own support ``2 * ceil(k * sigma_i) + 1``; scales with the same support
share one convolution call. The largest support is Eq. 6 of the paper.

Speed. Every support group is correlated either directly (``F.conv2d``) or through the
FFT (:func:`skscale.nn.functional.fft_correlate_same`), as ``conv_impl`` asks. All groups
that go through the FFT are merged into one call (its cost hardly depends on the kernel
size, and the input is transformed once); on small maps (14 x 14 or 7 x 7 in the ``sesn``
network) that call transforms by matrix products (:mod:`skscale.nn.dft`). With ``"auto"``
the groups with the largest kernels take the FFT, split by the one rule
:func:`skscale.nn.planning.fft_split` (deterministic for a given input shape and for training vs
inference).
``per_scale_support=False`` instead zero-pads every scale's kernel to the largest
support (:func:`skscale.basis.window_basis`) and runs one correlation for all scales
(the SESN scheme), with the same result.
A forward pass reads the current scales on the host once (for the kernel sizes); with
fixed scales, or in eval mode without gradients, the basis is cached and nothing is read.

Deployment. In eval mode the scales are fixed: ``eval()`` (and ``load_state_dict`` or a
device move in eval mode) caches the basis, and a network recorded in eval mode by
``torch.jit.trace``, ``torch.export.export`` or ``torch.compile`` uses it as a constant,
with static kernel sizes and the inference plan of ``conv_impl="auto"``::

    program = torch.export.export(network.eval(), (images,))
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torch.fx.experimental.symbolic_shapes import optimization_hint

from ..basis import hermite_basis, n_basis_functions, support_sizes, window_basis
from ..utils.validation import Boolean, Integer, Options, Real
from .blocks import check_input_shape, reset_conv_parameters
from .functional import correlate_same, correlate_spectrum, cut_to_reach, kernel_spectrum
from .hooks import HookCountingModule, recording, takes_backward_path
from .planning import CONV_IMPLS, fft_split
from .pooling import common_dtype, max_over_scale_groups
from .scales import InternalScales

__all__ = ["ScaleConvT2H", "ScaleConvH2H"]

_POSITIVE = Integer(low=1)
# Inference in forward_max_projected: the most bytes of (B, O, S, H, W) outputs written at once.
# On a CPU a batch whose whole output outgrows this runs slower (fresh memory on every call,
# cache misses).
_FUSED_CHUNK_BYTES = 16 * 2**20


def _as_internal_scales(scales):
    if isinstance(scales, InternalScales):
        return scales
    if isinstance(scales, nn.Module):
        raise ValueError(
            f"scales must be an InternalScales module or a sequence of floats, got {type(scales).__name__}."
        )
    return InternalScales.from_values(scales)


def _refresh_after_load(module, incompatible_keys):
    module._refresh_basis_cache()


def _merge_groups(groups):
    """One group from several: bases zero-padded to the largest support, scales concatenated.

    Zero-padding a kernel does not change a "same" correlation, so the merged group gives
    the outputs of the separate groups (in the concatenated scale order).
    """
    size = max(basis.shape[-1] for _, basis in groups)
    indices, bases = [], []
    for group_indices, basis in groups:
        pad = (size - basis.shape[-1]) // 2
        bases.append(nn.functional.pad(basis, (pad, pad, pad, pad)) if pad else basis)
        indices.extend(group_indices)
    return tuple(indices), torch.cat(bases, dim=1)


def _cut_to_image(groups, height, width):
    """Support groups with every basis cut to the taps that can reach an ``H x W`` image
    (:func:`~skscale.nn.functional.cut_to_reach`: every output and gradient stays as it
    was, the direct path is spared the padding taps of a large internal scale on the small
    maps of a deep layer); groups cut to the same size are merged into one call.
    """
    cut = [(indices, cut_to_reach(basis, height, width)) for indices, basis in groups]
    if all(basis is cut_basis for (_, basis), (_, cut_basis) in zip(groups, cut)):
        return groups
    by_size = OrderedDict()
    for indices, basis in cut:
        by_size.setdefault(int(basis.shape[-1]), []).append((indices, basis))
    return [found[0] if len(found) == 1 else _merge_groups(found) for found in by_size.values()]


class _ScaleConv(HookCountingModule):
    """Shared machinery: scale handling, basis cache, support groups.

    Takes the arguments of :class:`ScaleConvT2H`; a subclass gives the shape of its
    basis coefficients with :meth:`_coefficient_shape`.
    """

    def __init__(
        self,
        in_channels,
        out_channels,
        scales,
        kernel_extent=2.0,
        max_order=3,
        *,
        index_set="total",
        stride=1,
        bias=True,
        conv_impl="auto",
        per_scale_support=True,
    ):
        super().__init__()
        self.in_channels = _POSITIVE.check(in_channels, "in_channels")
        self.out_channels = _POSITIVE.check(out_channels, "out_channels")
        self.stride = _POSITIVE.check(stride, "stride")
        self.conv_impl = Options(CONV_IMPLS).check(conv_impl, "conv_impl")
        self.per_scale_support = Boolean().check(per_scale_support, "per_scale_support")
        self.kernel_extent = Real(low=0, closed="neither").check(kernel_extent, "kernel_extent")
        self.scales = _as_internal_scales(scales)
        self.max_order = max_order
        self.index_set = index_set
        self.n_functions = n_basis_functions(max_order, index_set)
        self.weight = nn.Parameter(torch.empty(*self._coefficient_shape(), self.n_functions))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self._basis_cache = None
        self._index_cache = {}
        self._kernel_cache = {}
        self.register_load_state_dict_post_hook(_refresh_after_load)
        self.reset_parameters()

    def reset_parameters(self):
        """Kaiming-uniform weights with fan-in ``C_in * [scale_size *] F`` (as ``nn.Conv2d``)."""
        reset_conv_parameters(self.weight, self.bias)

    @property
    def n_scales(self):
        return self.scales.n_scales

    def kernel_sizes(self):
        """Current per-scale kernel supports; the largest is Eq. 6."""
        return support_sizes(self.scales(), self.kernel_extent)

    def basis_groups(self):
        """Basis of every support group: list of ``(indices, basis (F, S_g, l, l))``.

        ``indices`` is a tuple of scale positions. The basis is evaluated once on the
        largest support and every scale cut to its own (:func:`~skscale.basis.window_basis`).
        With ``per_scale_support=True`` scales with equal support form one group, a crop
        of that basis; with ``False`` there is one group holding every scale.

        Fixed scales: computed once and reused. Trainable scales: rebuilt on every call
        while training (the basis must carry the graph to the scale parameters) and reused
        in eval mode under ``torch.no_grad()`` until a scale parameter changes.

        In eval mode the scales are fixed: ``eval()``, ``load_state_dict`` and device or
        dtype moves cache the basis at once, and a graph recorded in eval mode
        (``torch.jit.trace``, ``torch.export``, ``torch.compile``) uses that cache as a
        constant, with the kernel sizes as Python ints. A scale changed in place after
        the last of these calls is not seen by a recording.
        """
        if recording() and not self.training:
            if self._basis_cache is not None:
                return self._basis_cache[1]
            if torch.compiler.is_exporting():
                raise RuntimeError(
                    f"{type(self).__name__} has no cached basis to export; call module.eval() first."
                )
        dtype, device = self.weight.dtype, self.weight.device
        cacheable = not self.scales.trainable or (not self.training and not torch.is_grad_enabled())
        # Only a cached basis needs the key (torch.func passes scales without storage to read).
        key = (self.scales.state_key(), dtype, device, self.per_scale_support) if cacheable else None
        if cacheable and self._basis_cache is not None and self._basis_cache[0] == key:
            return self._basis_cache[1]
        scales = self.scales().to(dtype)
        # The one host read of a forward pass: the kernel sizes (Eq. 6) are Python ints.
        sizes = support_sizes(scales, self.kernel_extent)
        largest = max(sizes)
        full = window_basis(hermite_basis(scales, largest, self.max_order, index_set=self.index_set), sizes)
        if self.per_scale_support:
            groups = OrderedDict()
            for index, size in enumerate(sizes):
                groups.setdefault(size, []).append(index)
            # A smaller support is the centre of the largest grid: every group is a view.
            result = []
            for size, indices in groups.items():
                indices = tuple(indices)
                window = slice((largest - size) // 2, (largest + size) // 2)
                result.append((indices, self._take(full, 1, indices)[..., window, window]))
        else:
            result = [(tuple(range(len(sizes))), full)]
        if cacheable:
            # Contiguous copies, not views of one basis: a recording saves every one as a whole
            # tensor (torch.export.save warns about partial views).
            result = [
                (indices, basis.detach().clone(memory_format=torch.contiguous_format))
                for indices, basis in result
            ]
            self._basis_cache = (key, result)
            self._kernel_cache = {}
        return result

    def _take(self, tensor, dim, indices):
        """``tensor`` at positions ``indices`` along ``dim``, without a host-to-device copy.

        Runs of consecutive positions (the usual case: support sizes grow with the scale)
        are a view; other orders use an index tensor cached per device.
        """
        first = indices[0]
        if indices == tuple(range(first, first + len(indices))):
            return tensor.narrow(dim, first, len(indices))
        return tensor.index_select(dim, self._device_indices(indices, tensor.device))

    def _device_indices(self, indices, device):
        cache_key = (indices, device)
        if cache_key not in self._index_cache:
            self._index_cache[cache_key] = torch.tensor(indices, dtype=torch.long, device=device)
        return self._index_cache[cache_key]

    def _coefficient_shape(self):
        """Shape of :attr:`weight` without its last axis (one coefficient per basis function)."""
        raise NotImplementedError

    def _correlation_shape(self):
        """Input channels and output channels per scale, and whether scales are conv groups."""
        raise NotImplementedError

    def correlation_plan(self, input_shape, backward=True):
        """Which correlation path every support group takes for inputs of a given shape.

        Parameters
        ----------
        input_shape : tuple of int
            Shape of the layer's input, ``(B, C, H, W)`` or ``(B, C, S, H, W)``.
        backward : bool, default=True
            Whether a backward pass follows (what ``"auto"`` assumes in training).

        Returns
        -------
        plan : list of (tuple of int, int, str)
            ``(scale indices, kernel size, "direct" or "fft")`` per correlation call, in
            the order the forward pass runs them. A kernel wider than ``2 max(H, W) - 1``
            is correlated cut to that size (its other taps never reach the image), and
            scales cut to one size share a call.
        """
        plan = self._plan(self.basis_groups(), tuple(input_shape), backward)
        return [(indices, basis.shape[-1], impl) for indices, basis, impl in plan]

    def _plan(self, groups, input_shape, backward):
        """Pair every basis group with a correlation path; merge the FFT groups into one.

        Returns a list of ``(indices, basis, impl)``. Kernels wider than the image first
        lose the taps that cannot reach it (:func:`_cut_to_image`). All groups that take
        the FFT become one group (kernels zero-padded to the largest of them), which
        transforms the input once. With ``conv_impl="auto"`` the groups, ordered by kernel
        size, are split by :func:`~skscale.nn.planning.fft_split`.
        """
        groups = _cut_to_image(groups, input_shape[-2], input_shape[-1])
        if self.conv_impl != "auto":
            direct = groups if self.conv_impl == "direct" else []
            fft = groups if self.conv_impl == "fft" else []
        else:
            ordered = sorted(groups, key=lambda group: group[1].shape[-1])
            in_channels, out_channels, grouped = self._correlation_shape()
            n_direct = fft_split(
                [int(basis.shape[-1]) for _, basis in ordered],
                [len(indices) for indices, _ in ordered],
                input_shape[-2],
                input_shape[-1],
                in_channels,
                out_channels,
                grouped=grouped,
                stride=self.stride,
                # The example's batch size when the batch is symbolic (no guard on it).
                batch_size=optimization_hint(input_shape[0]),
                backward=backward,
            )
            direct, fft = ordered[:n_direct], ordered[n_direct:]
        plan = [(indices, basis, "direct") for indices, basis in direct]
        if fft:
            indices, basis = _merge_groups(fft) if len(fft) > 1 else fft[0]
            plan.append((indices, basis, "fft"))
        return plan

    def _forward_plan(self, x):
        # A graph recorded in eval mode is for inference, whatever the grad mode while recording.
        inference = recording() and not self.training
        needs_grad = x.requires_grad or self.weight.requires_grad
        backward = not inference and torch.is_grad_enabled() and needs_grad
        # A symbolic batch (torch.export with a dynamic batch) stays symbolic: only "auto" reads it.
        batch = x.shape[0] if torch.compiler.is_compiling() else int(x.shape[0])
        return self._plan(self.basis_groups(), (batch, *(int(n) for n in x.shape[1:])), backward)

    def _refresh_basis_cache(self):
        """In eval mode, cache the basis of the current scales now (see :meth:`basis_groups`)."""
        if not self.training and not recording():
            with torch.no_grad():
                self.basis_groups()

    def train(self, mode=True):
        super().train(mode)
        self._refresh_basis_cache()
        return self

    def _apply(self, fn, *args, **kwargs):
        self._basis_cache = None  # dtype/device moves invalidate the caches
        self._index_cache = {}
        self._kernel_cache = {}
        module = super()._apply(fn, *args, **kwargs)
        self._refresh_basis_cache()
        return module

    def __getstate__(self):
        state = super().__getstate__()
        state = dict(state)
        state["_basis_cache"] = None
        state["_index_cache"] = {}
        state["_kernel_cache"] = {}
        return state

    def __setstate__(self, state):
        state.setdefault("_index_cache", {})
        state.setdefault("_kernel_cache", {})
        super().__setstate__(state)

    def _correlate(self, x, indices, impl, build_kernel, groups=1, bias=None):
        """``correlate_same(x, build_kernel(), ...)`` for the support group ``indices``.

        In inference (eval mode, no gradients, nothing recording) the kernel, or on the FFT
        path its spectrum, is kept for the next call on images of the same size until the
        weights (``weight._version``) or the cached basis change.
        """
        if self.training or torch.is_grad_enabled() or recording() or self._basis_cache is None:
            return correlate_same(x, build_kernel(), stride=self.stride, groups=groups, impl=impl, bias=bias)
        key = (indices, impl, int(x.shape[-2]), int(x.shape[-1]))
        stamp = (self.weight._version, self.weight.data_ptr())
        entry = self._kernel_cache.get(key)
        if entry is None or entry[0] is not self._basis_cache or entry[1] != stamp:
            kernel = build_kernel()
            if impl == "fft":
                kernel = kernel_spectrum(kernel, x.shape[-2], x.shape[-1], groups, self.stride)
            entry = (self._basis_cache, stamp, kernel)
            self._kernel_cache[key] = entry
        kernel = entry[2]
        if impl != "fft":
            return correlate_same(x, kernel, stride=self.stride, groups=groups, impl=impl, bias=bias)
        out = correlate_spectrum(x, kernel, self.stride).to(torch.result_type(x, self.weight))
        return out if bias is None else out + bias.view(1, -1, 1, 1)

    def _group_bias(self, n_group, scale_major):
        """The bias of one correlation call's output channels (``None`` without bias).

        The call's channels are ``(O, S_g)`` flattened (``scale_major=False``) or
        ``(S_g, O)`` (``True``); every scale gets the same bias.
        """
        if self.bias is None:
            return None
        return self.bias.repeat(n_group) if scale_major else self.bias.repeat_interleave(n_group)

    def _group_outputs(self, x):
        """Outputs ``(B, O, S_g, H, W)`` of every correlation call and their scale indices."""
        raise NotImplementedError

    def forward(self, x):
        return self._assemble(*self._group_outputs(x))

    def forward_max_projected(self, x):
        """``self(x).max(dim=2).values``, without assembling the scale axis.

        The maximum over the scales is taken plane by plane from every support group's
        output (:func:`~skscale.nn.pooling.max_over_scale_groups`), so the
        ``(B, O, S, H, W)`` output is never concatenated, and in training only the index of
        each maximum is kept for the backward pass, which gives every group its gradient
        directly: what a network that projects right after this layer runs (see
        :func:`~skscale.nn.blocks.mnist_blocks`). In inference on a CPU (no gradients,
        nothing recording) the batch runs in chunks whose ``(B_c, O, S, H', W')`` outputs
        hold at most 16 MiB, each chunk's maximum written into the result: the same values,
        less memory and a faster pass.

        Parameters
        ----------
        x : tensor
            As for :meth:`forward`.

        Returns
        -------
        out : tensor of shape (B, O, H', W')
        """
        if recording() or torch.is_grad_enabled():
            outputs, _ = self._group_outputs(x)
            return max_over_scale_groups(outputs, backward=takes_backward_path(self, outputs[0]))
        # Inference: a few images at a time, each chunk's maximum written into the result.
        batch = int(x.shape[0])
        out_size = [-(-int(n) // self.stride) for n in x.shape[-2:]]
        image_bytes = self.out_channels * self.n_scales * out_size[0] * out_size[1] * x.element_size()
        # On a GPU a whole batch keeps the device busy; the measured gain is a CPU's.
        n_chunks = max(1, -(-batch * image_bytes // _FUSED_CHUNK_BYTES)) if x.device.type == "cpu" else 1
        chunk = -(-batch // n_chunks)
        out = None
        for start in range(0, batch, chunk):
            outputs, _ = self._group_outputs(x[start : start + chunk])
            if out is None:
                out = outputs[0].new_empty(
                    (batch, *outputs[0].shape[1:2], *outputs[0].shape[3:]), dtype=common_dtype(outputs)
                )
            max_over_scale_groups(outputs, backward=False, out=out[start : start + chunk])
        return out

    def _assemble(self, outputs, indices_per_group):
        """Concatenate group outputs ``(B, O, S_g, H, W)`` along the scale axis in scale order.

        The bias is already in every group's output (:meth:`_group_bias`).
        """
        order = tuple(i for indices in indices_per_group for i in indices)
        out = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=2)
        if order != tuple(sorted(order)):
            inverse = [0] * len(order)
            for position, index in enumerate(order):
                inverse[index] = position
            out = self._take(out, 2, tuple(inverse))
        return out

    def extra_repr(self):
        return (
            f"{self.in_channels}, {self.out_channels}, n_scales={self.n_scales}, "
            f"kernel_extent={self.kernel_extent}, max_order={self.max_order}, "
            f"index_set={self.index_set!r}, stride={self.stride}, bias={self.bias is not None}, "
            f"conv_impl={self.conv_impl!r}, per_scale_support={self.per_scale_support}"
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
    conv_impl : {"auto", "direct", "fft"}, default="auto"
        How the support groups are correlated: ``"direct"`` (``F.conv2d``), ``"fft"``
        (:func:`~skscale.nn.functional.fft_correlate_same`, same result up to float
        error) or ``"auto"``: the groups with the largest kernels through one FFT call and
        the others direct, split where the cost model of
        :func:`~skscale.nn.planning.conv_cost_estimates` is lowest for the kernel sizes,
        image size, channels and batch (and whether gradients are needed); see
        :meth:`correlation_plan`.
        On a CPU the FFT wins from kernels of about 15 pixels with one input channel in
        training (25 or more in inference), and from about 7 to 13 with tens of channels.
    per_scale_support : bool, default=True
        Convolve every scale with a kernel of its own support (scales of equal support
        share one call). ``False`` zero-pads every scale's kernel to the largest support
        and runs one correlation (the SESN scheme, kept for comparison); same outputs.

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

    def _coefficient_shape(self):
        return self.out_channels, self.in_channels

    def _correlation_shape(self):
        # Every scale reads the whole input; the scales of a group stack their outputs.
        return self.in_channels, self.out_channels, False

    def _group_outputs(self, x):
        check_input_shape(self, x, self.in_channels)
        plan = self._forward_plan(x)
        outputs, indices_per_group = [], []
        for indices, basis, impl in plan:
            size, n_group = int(basis.shape[-1]), int(basis.shape[1])

            def build_kernel(basis=basis, size=size, n_group=n_group):
                # (O, S_g, C, l, l): the same coefficients on the basis at each scale of the group.
                kernel = torch.einsum("ocf,fsyx->oscyx", self.weight, basis)
                return kernel.reshape(self.out_channels * n_group, self.in_channels, size, size)

            bias = self._group_bias(n_group, scale_major=False)
            out = self._correlate(x, indices, impl, build_kernel, bias=bias)
            outputs.append(out.view(out.shape[0], self.out_channels, n_group, *out.shape[-2:]))
            indices_per_group.append(indices)
        return outputs, indices_per_group


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
    index_set, stride, bias, conv_impl, per_scale_support
        As for :class:`ScaleConvT2H`.

    Attributes
    ----------
    weight : Parameter of shape (O, C, scale_size, F)
        Coefficients of the ``F`` basis functions for every input scale offset.
    bias : Parameter of shape (O,) or None

    Examples
    --------
    >>> import torch
    >>> from skscale.nn import InternalScales, ScaleConvH2H
    >>> layer = ScaleConvH2H(4, 6, InternalScales(n_scales=3, init_sigma_basis=1.0), scale_size=2)
    >>> tuple(layer(torch.randn(2, 4, 3, 20, 20)).shape)
    (2, 6, 3, 20, 20)
    """

    def __init__(
        self,
        in_channels,
        out_channels,
        scales,
        scale_size=1,
        kernel_extent=2.0,
        max_order=3,
        *,
        index_set="total",
        stride=1,
        bias=True,
        conv_impl="auto",
        per_scale_support=True,
    ):
        self.scale_size = _POSITIVE.check(scale_size, "scale_size")
        super().__init__(
            in_channels,
            out_channels,
            scales,
            kernel_extent,
            max_order,
            index_set=index_set,
            stride=stride,
            bias=bias,
            conv_impl=conv_impl,
            per_scale_support=per_scale_support,
        )

    def _coefficient_shape(self):
        return self.out_channels, self.in_channels, self.scale_size

    def _correlation_shape(self):
        # Every scale reads its own window of scale_size input scales: one conv group each.
        return self.in_channels * self.scale_size, self.out_channels, True

    def _group_outputs(self, x):
        check_input_shape(self, x, self.in_channels, self.n_scales, scale_axis=True)
        batch, channels, _, height, width = x.shape
        if self.scale_size > 1:
            x = nn.functional.pad(x, (0, 0, 0, 0, 0, self.scale_size - 1))
            # (B, C, S, H, W, scale_size): the input scales each output scale reads.
            windows = x.unfold(2, self.scale_size, 1)
        else:
            windows = x.unsqueeze(-1)
        group_channels = channels * self.scale_size
        plan = self._forward_plan(x)
        outputs, indices_per_group = [], []
        for indices, basis, impl in plan:
            size, n_group = int(basis.shape[-1]), int(basis.shape[1])
            group_input = self._take(windows, 2, indices)
            group_input = group_input.permute(0, 2, 1, 5, 3, 4).reshape(
                batch, n_group * group_channels, height, width
            )

            def build_kernel(basis=basis, size=size, n_group=n_group):
                # (S_g, O, C, scale_size, l, l), then one convolution group per scale.
                kernel = torch.einsum("ocjf,fsyx->socjyx", self.weight, basis)
                return kernel.reshape(n_group * self.out_channels, group_channels, size, size)

            bias = self._group_bias(n_group, scale_major=True)
            out = self._correlate(group_input, indices, impl, build_kernel, groups=n_group, bias=bias)
            out = out.view(batch, n_group, self.out_channels, *out.shape[-2:]).transpose(1, 2)
            outputs.append(out)
            indices_per_group.append(indices)
        return outputs, indices_per_group

    def extra_repr(self):
        return super().extra_repr() + f", scale_size={self.scale_size}"

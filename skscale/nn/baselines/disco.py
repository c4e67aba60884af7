"""DISCO: discrete scale convolutions with a basis optimised for equivariance.

Sosnovik, I., Moskalev, A. and Smeulders, A. W. M. (2021). DISCO: accurate Discrete
Scale Convolutions. BMVC 2021 (arXiv:2106.02733).

A kernel is a learned combination of ``F = effective_size**2`` basis functions given at
every scale of a fixed set ``scales``. Relative to the smallest scale, a scale ratio
``r`` that is an integer is realised exactly by dilation: the basis at ``r`` is the
basis at 1 with its taps spread ``r`` pixels apart. Any other ratio has no exact
counterpart on the pixel grid; DISCO *optimises* the basis there for the smallest
scale-equivariance error on the discrete grid:

    sum over scale pairs i < j of  || D_q[x * k_j] - D_q[x] * k_i ||**2,   q = r_j / r_i,

where ``D_q`` shrinks an image by ``q`` and ``x`` are random images: correlating and
then shrinking must equal shrinking and then correlating with the smaller-scale kernel.
The optimisation works on a "proxy" basis, the ``F`` unit impulses of the
``effective_size x effective_size`` grid at scale 1, so it does not depend on the learned
weights; it is linear least squares, solved once in closed form, deterministic, and
cached on disk (:func:`load_disco_basis`). The proxy basis is then mapped linearly to
``F`` Hermite-Gaussian functions (DISCO's "A" variant), which changes the
parameterisation but not the equivariance.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import get_data_home
from torch import nn

from ..._scales import log_uniform_scales
from ...basis import hermite_basis
from ...utils.validation import Integer, Real, Sequence
from ..blocks import SESN_LAYOUT, check_input_shape, reset_conv_parameters
from ..heads import mnist_head
from ..pooling import ScaleProjection
from ..registry import register_architecture
from ..scales import InternalScales
from ..spec import ScaleSpec, resolve_scale_spec

__all__ = [
    "DISCO_SCALES",
    "DiscoBasis",
    "DiscoConvT2H",
    "DiscoConvH2H",
    "DISCONet",
    "disco_kernel_layout",
    "optimise_disco_basis",
    "load_disco_basis",
]

#: The scales of DISCO's MNIST-Scale model (Table 6 of Basting et al.): Eq. 2 with
#: ``sigma_basis = 1.8``, ``ISR = 2`` and four scales, ``1.8 * 2 ** (i / 3)``.
DISCO_SCALES = tuple(log_uniform_scales(4, 1.8, 2.0).tolist())

# Bump when the optimisation changes, so that stale cached bases are not reused.
_CACHE_VERSION = 1
_INTEGER_TOLERANCE = 1e-6
_POSITIVE_INT = Integer(low=1)
_ODD_SIZE = Integer(low=1, odd=True)
_SCALES = Sequence(Real(low=0, closed="neither"))


def _increasing_scales(values, name, *, relative=False):
    """Positive, strictly increasing scales (``relative``: starting at 1) as a list of floats."""
    checked = _SCALES.check(values, name) if _SCALES.is_valid(values) else None
    if (
        checked is None
        or any(b <= a for a, b in zip(checked, checked[1:]))
        or (relative and abs(checked[0] - 1.0) > _INTEGER_TOLERANCE)
    ):
        start = " starting at 1" if relative else ""
        raise ValueError(
            f"{name} must be a strictly increasing sequence of positive finite numbers{start}, "
            f"got {values!r}."
        )
    return list(checked)


def _check_relative_scales(relative_scales):
    # Rounded, so that the optimisation and the cache key see the same numbers.
    return [round(r, 6) for r in _increasing_scales(relative_scales, "relative_scales", relative=True)]


def _is_integer(ratio):
    return abs(ratio - round(ratio)) < _INTEGER_TOLERANCE


def disco_kernel_layout(relative_scales, effective_size=7, margin=1):
    """Support and dilation of the kernel at every scale.

    An integer ratio ``r`` uses the ``effective_size`` kernel dilated by ``r``; any other
    ratio a dense kernel of size ``2 (ceil(r (effective_size - 1) / 2) + margin) + 1``:
    the stretched support plus ``margin`` pixels on each side for interpolation.

    Parameters
    ----------
    relative_scales : sequence of float
        Scales divided by the smallest one (starts at 1, increasing).
    effective_size : int, default=7
    margin : int, default=1

    Returns
    -------
    layout : list of (int, int, bool)
        ``(size, dilation, is_integer)`` per scale.

    Examples
    --------
    >>> disco_kernel_layout([1.0, 1.26, 1.59, 2.0])
    [(7, 1, True), (11, 1, False), (13, 1, False), (7, 2, True)]
    """
    relative_scales = _check_relative_scales(relative_scales)
    effective_size = _ODD_SIZE.check(effective_size, "effective_size")
    margin = Integer(low=0).check(margin, "margin")
    layout = []
    for ratio in relative_scales:
        if _is_integer(ratio):
            layout.append((effective_size, int(round(ratio)), True))
        else:
            half = math.ceil(round(ratio * (effective_size - 1) / 2, 9)) + int(margin)
            layout.append((2 * half + 1, 1, False))
    return layout


def _shrink(images, ratio):
    # Antialiased bicubic: DISCO's code shrinks without antialiasing, which leaves the
    # optimum dominated by aliasing for ratios >= ~1.7 (normalised error 0.17 instead
    # of 0.03 for relative scales [1, 1.73, 3]).
    return F.interpolate(
        images, scale_factor=1.0 / ratio, mode="bicubic", align_corners=False, antialias=True
    )


def _taps(images, size, dilation, crop):
    """Columns of the correlation: ``(images * k)[rows] = taps @ k`` (k flattened row-major)."""
    n_images, _, height, width = images.shape
    taps = F.unfold(images, size, dilation=dilation, padding=dilation * (size // 2))
    taps = taps.view(n_images, size * size, height, width)[:, :, crop : height - crop, crop : width - crop]
    return taps.permute(0, 2, 3, 1).reshape(-1, size * size)


def _shrunk_taps(images, size, dilation, ratio, crop):
    """Columns of ``D_q[images * k]``: every tap image shrunk by ``ratio``."""
    n_images, _, height, width = images.shape
    taps = F.unfold(images, size, dilation=dilation, padding=dilation * (size // 2))
    taps = _shrink(taps.view(n_images * size * size, 1, height, width), ratio)
    out_height, out_width = taps.shape[-2:]
    taps = taps.view(n_images, size * size, out_height, out_width)
    taps = taps[:, :, crop : out_height - crop, crop : out_width - crop]
    return taps.permute(0, 2, 3, 1).reshape(-1, size * size)


def _pair_crop(layout, i, j, ratio):
    """Border of the shrunk grid that zero padding and the bicubic reach may touch."""
    extent_i = (layout[i][0] - 1) * layout[i][1] + 1
    extent_j = (layout[j][0] - 1) * layout[j][1] + 1
    return math.ceil(max(extent_j / (2 * ratio), extent_i / 2)) + 3


def _default_image_size(relative_scales, layout):
    """Smallest multiple of 8 (at least 64) leaving a 32 x 32 interior for every pair."""
    needed = 64
    for i in range(len(layout)):
        for j in range(i + 1, len(layout)):
            ratio = relative_scales[j] / relative_scales[i]
            needed = max(needed, math.ceil(ratio * (2 * _pair_crop(layout, i, j, ratio) + 32)))
    return 8 * math.ceil(needed / 8)


def optimise_disco_basis(
    relative_scales, effective_size=7, *, margin=1, n_images=8, image_size=None, ridge=1e-6, random_state=0
):
    """Optimise DISCO's proxy basis at the non-integer scales (closed-form least squares).

    The proxy basis at scale 1 is the ``F = effective_size**2`` unit impulses of the
    ``effective_size`` grid, and at an integer ratio ``r`` the same impulses ``r`` pixels
    apart. For every function ``f`` the kernels at the other ratios minimise

        sum_{i < j} mean || D_q[x * k_j^f] - D_q[x] * k_i^f ||**2 + ridge * ||k^f||**2

    over ``n_images`` white-noise images ``x`` (``q = r_j / r_i``, ``D_q`` antialiased
    bicubic shrinking, borders cropped): a linear least-squares problem whose normal
    equations are shared by all ``F`` functions and solved once. ``ridge`` is relative to
    the mean diagonal of the normal matrix.

    Simplifications with respect to DISCO's code, which runs Adam on the sum of the
    (unsquared) pair norms over 10,000 uniform-noise images: squared norms, solved
    exactly on a few images; antialiased shrinking; kernels at non-integer ratios limited
    to their stretched support (:func:`disco_kernel_layout`) instead of the largest one.

    Parameters
    ----------
    relative_scales, effective_size, margin
        As for :func:`disco_kernel_layout`.
    n_images : int, default=8
    image_size : int, optional
        Side of the noise images; by default the smallest multiple of 8 (at least 64)
        that leaves a 32 x 32 residual for every scale pair.
    ridge : float, default=1e-6
    random_state : int, default=0
        Seed of the noise images; the result is deterministic.

    Returns
    -------
    proxy : list of ndarray or None
        Per scale: None for an integer ratio (impulses, dilated), else the optimised
        kernels, an array of shape (F, size, size) in float64.

    Examples
    --------
    >>> proxy = optimise_disco_basis([1.0, 1.5, 2.0], effective_size=3, n_images=2)
    >>> proxy[0] is None, proxy[1].shape, proxy[2] is None
    (True, (9, 7, 7), True)
    """
    relative_scales = _check_relative_scales(relative_scales)
    layout = disco_kernel_layout(relative_scales, effective_size, margin)
    n_images = _POSITIVE_INT.check(n_images, "n_images")
    if image_size is None:
        image_size = _default_image_size(relative_scales, layout)
    image_size = _POSITIVE_INT.check(image_size, "image_size")
    ridge = Real(low=0).check(ridge, "ridge")
    unknown = [index for index, (_, _, is_integer) in enumerate(layout) if not is_integer]
    if not unknown:
        return [None] * len(layout)
    n_functions = effective_size**2

    generator = torch.Generator().manual_seed(int(random_state))
    images = torch.randn(n_images, 1, image_size, image_size, generator=generator, dtype=torch.float64)
    offsets = np.concatenate([[0], np.cumsum([size * size for size, _, _ in layout])]).tolist()
    normal = torch.zeros(offsets[-1], offsets[-1], dtype=torch.float64)
    with torch.no_grad():
        for i in range(len(layout)):
            for j in range(i + 1, len(layout)):
                if layout[i][2] and layout[j][2]:
                    continue  # both exact: nothing to optimise
                ratio = relative_scales[j] / relative_scales[i]
                crop = _pair_crop(layout, i, j, ratio)
                if image_size / ratio < 2 * crop + 8:
                    raise ValueError(
                        f"image_size={image_size} is too small for the scale pair {relative_scales[i]}, "
                        f"{relative_scales[j]}; use at least {math.ceil(ratio * (2 * crop + 8))}."
                    )
                n_i, n_j = offsets[i + 1] - offsets[i], offsets[j + 1] - offsets[j]
                aa = torch.zeros(n_j, n_j, dtype=torch.float64)
                bb = torch.zeros(n_i, n_i, dtype=torch.float64)
                ab = torch.zeros(n_j, n_i, dtype=torch.float64)
                rows = 0
                for image in images.split(1):  # one image at a time bounds the memory
                    # Residual  a k_j - b k_i:  correlate then shrink, minus shrink then correlate.
                    a = _shrunk_taps(image, layout[j][0], layout[j][1], ratio, crop)
                    b = _taps(_shrink(image, ratio), layout[i][0], layout[i][1], crop)
                    aa += a.T @ a
                    bb += b.T @ b
                    ab += a.T @ b
                    rows += a.shape[0]
                block_i, block_j = slice(offsets[i], offsets[i + 1]), slice(offsets[j], offsets[j + 1])
                normal[block_j, block_j] += aa / rows
                normal[block_i, block_i] += bb / rows
                normal[block_j, block_i] -= ab / rows
                normal[block_i, block_j] -= ab.T / rows
    unknown_index = torch.cat([torch.arange(offsets[s], offsets[s + 1]) for s in unknown])
    known = [s for s in range(len(layout)) if s not in unknown]
    # The known kernels of function f are the unit vector f in every known block.
    rhs = -sum(normal[unknown_index, offsets[s] : offsets[s + 1]] for s in known)
    system = normal[unknown_index][:, unknown_index]
    system = system + ridge * system.diagonal().mean() * torch.eye(len(unknown_index), dtype=torch.float64)
    solution = torch.linalg.solve(system, rhs)  # (unknowns, F)
    proxy, start = [None] * len(layout), 0
    for s in unknown:
        size = layout[s][0]
        proxy[s] = solution[start : start + size * size].T.reshape(n_functions, size, size).numpy().copy()
        start += size * size
    return proxy


def _cache_path(data_home, key):
    folder = Path(get_data_home(data_home)) / "skscale" / "disco"
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    scales = "-".join(f"{r:g}" for r in key["relative_scales"])
    return folder / f"disco_e{key['effective_size']}_scales-{scales}_{digest}.npz"


def load_disco_basis(relative_scales, effective_size=7, *, margin=1, data_home=None, **optimise_kwargs):
    """:func:`optimise_disco_basis`, computed once and cached on disk.

    The result is stored in ``<data_home>/skscale/disco/`` (``data_home`` as in
    :func:`sklearn.datasets.get_data_home`: ``~/scikit_learn_data`` unless the
    ``SCIKIT_LEARN_DATA`` environment variable says otherwise), in a ``.npz`` file named
    after every argument of the optimisation, and written atomically so that parallel
    processes (``GridSearchCV(n_jobs=...)``) may race safely. Without non-integer ratios
    nothing is optimised and nothing is written.

    Parameters
    ----------
    relative_scales, effective_size, margin
        As for :func:`optimise_disco_basis`.
    data_home : str or path-like, optional
        Cache root; see :func:`sklearn.datasets.get_data_home`.
    **optimise_kwargs
        ``n_images``, ``image_size``, ``ridge``, ``random_state`` of
        :func:`optimise_disco_basis` (part of the cache key).

    Returns
    -------
    proxy : list of ndarray or None
        As returned by :func:`optimise_disco_basis`.
    """
    relative_scales = _check_relative_scales(relative_scales)
    layout = disco_kernel_layout(relative_scales, effective_size, margin)
    if all(is_integer for _, _, is_integer in layout):
        return [None] * len(layout)
    unexpected = set(optimise_kwargs) - {"n_images", "image_size", "ridge", "random_state"}
    if unexpected:
        raise TypeError(f"load_disco_basis() got unexpected keyword arguments {sorted(unexpected)}.")
    settings = dict(n_images=8, image_size=None, ridge=1e-6, random_state=0)
    settings.update(optimise_kwargs)
    if settings["image_size"] is None:
        settings["image_size"] = _default_image_size(relative_scales, layout)
    key = dict(
        relative_scales=relative_scales,
        effective_size=int(effective_size),
        margin=int(margin),
        version=_CACHE_VERSION,
        **{name: float(v) if name == "ridge" else int(v) for name, v in settings.items()},
    )
    path = _cache_path(data_home, key)
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as stored:
                if json.loads(str(stored["key"])) == key:
                    return [
                        stored[f"scale_{s}"] if f"scale_{s}" in stored else None for s in range(len(layout))
                    ]
        except (OSError, ValueError, KeyError):
            pass  # unreadable or foreign file: recompute and replace it
    proxy = optimise_disco_basis(relative_scales, effective_size, margin=margin, **settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"scale_{s}": kernels for s, kernels in enumerate(proxy) if kernels is not None}
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, key=np.array(json.dumps(key, sort_keys=True)), **arrays)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    return proxy


class DiscoBasis(nn.Module):
    """DISCO basis at a fixed set of scales (Sosnovik et al., 2021).

    ``F = effective_size**2`` Hermite-Gaussian functions (orders ``0 .. effective_size - 1``
    along each axis, envelope ``scales[0]``) sampled on the ``effective_size`` grid give
    the basis at the smallest scale; at every larger scale the same linear combination
    of the proxy basis of :func:`load_disco_basis` gives it: dilated for integer ratios
    ``scales[s] / scales[0]``, optimised otherwise. Each function is divided by its L2
    norm at the smallest scale. The basis holds no trainable parameter; it may be shared
    by several layers. It is computed on first use (:meth:`kernels`, so the first forward
    pass of a layer, or a ``state_dict``): constructing it touches no disk.

    Parameters
    ----------
    scales : sequence of float, default=DISCO_SCALES
        Strictly increasing scales; only their ratios and ``scales[0]`` (the envelope of
        the Hermite functions) matter.
    effective_size : int, default=7
        Kernel size at the smallest scale; ``F = effective_size**2`` functions.
    margin : int, default=1
        See :func:`disco_kernel_layout`.
    data_home : str or path-like, optional
        Where the optimised basis is cached (see :func:`load_disco_basis`), on first use.

    Attributes
    ----------
    scales : InternalScales
        The fixed scales (``parameterisation="fixed"``), so that
        :class:`~skscale.ScaleEquivariantClassifier` reports them as ``scales_``.
    layout : list of (int, int, bool)
        ``(size, dilation, is_integer)`` per scale.
    n_functions : int

    Examples
    --------
    >>> basis = DiscoBasis([1.5, 3.0], effective_size=5)  # integer ratio: nothing optimised
    >>> [(tuple(kernels.shape), dilation) for kernels, dilation in basis.kernels()]
    [((25, 5, 5), 1), ((25, 5, 5), 2)]
    """

    def __init__(self, scales=DISCO_SCALES, effective_size=7, *, margin=1, data_home=None):
        super().__init__()
        if hasattr(scales, "tolist"):  # arrays and tensors
            scales = torch.as_tensor(scales).reshape(-1).tolist()
        values = _increasing_scales(scales, "scales")
        self.effective_size = _ODD_SIZE.check(effective_size, "effective_size")
        self.margin = margin
        relative = [value / values[0] for value in values]
        self.layout = disco_kernel_layout(relative, self.effective_size, margin)
        self.n_functions = self.effective_size**2
        self.scales = InternalScales.from_values(values)
        self._values = values
        self.data_home = data_home
        # The basis is computed (and the optimised proxy read from or written to the disk
        # cache) on first use, so that building a network touches no disk; until then the
        # buffers hold zeros of their final shapes, so that state dicts load into them.
        self._computed = False
        self._dtype = torch.get_default_dtype()
        for index, (kernel_size, _, _) in enumerate(self.layout):
            placeholder = torch.zeros(self.n_functions, kernel_size, kernel_size, dtype=self._dtype)
            self.register_buffer(f"basis_{index}", placeholder)

    def _compute(self):
        """Fill the basis buffers once (in place: their device and dtype are kept)."""
        if self._computed:
            return
        values = self._values
        relative = [value / values[0] for value in values]
        proxy = load_disco_basis(relative, self.effective_size, margin=self.margin, data_home=self.data_home)
        size = self.effective_size
        hermite = hermite_basis(
            torch.tensor([values[0]], dtype=torch.float64), size, size - 1, index_set="tensor"
        )[:, 0]
        hermite = hermite.reshape(self.n_functions, self.n_functions)
        hermite = hermite / torch.linalg.vector_norm(hermite, dim=1, keepdim=True)
        with torch.no_grad():
            for index, ((kernel_size, _, is_integer), kernels) in enumerate(zip(self.layout, proxy)):
                if is_integer:
                    basis = hermite.reshape(self.n_functions, size, size)
                else:
                    kernels = torch.as_tensor(kernels, dtype=torch.float64).reshape(self.n_functions, -1)
                    basis = (hermite @ kernels).reshape(self.n_functions, kernel_size, kernel_size)
                # Rounded to the default dtype at construction first, as an eager basis was.
                getattr(self, f"basis_{index}").copy_(basis.to(self._dtype))
        self._computed = True

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        self._compute()
        super()._save_to_state_dict(destination, prefix, keep_vars)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        if all(f"{prefix}basis_{index}" in state_dict for index in range(len(self.layout))):
            self._computed = True

    @property
    def n_scales(self):
        return len(self.layout)

    def kernels(self):
        """``[(basis (F, size, size), dilation) for every scale]``, computed on the first call."""
        self._compute()
        return [
            (getattr(self, f"basis_{index}"), dilation) for index, (_, dilation, _) in enumerate(self.layout)
        ]

    def extra_repr(self):
        return f"effective_size={self.effective_size}, n_functions={self.n_functions}, layout={self.layout}"


def _as_disco_basis(basis):
    if isinstance(basis, DiscoBasis):
        return basis
    if isinstance(basis, nn.Module):
        raise ValueError(f"basis must be a DiscoBasis or a sequence of scales, got {type(basis).__name__}.")
    return DiscoBasis(basis)


class _DiscoConv(nn.Module):
    def __init__(self, in_channels, out_channels, basis, stride, bias, weight_shape):
        super().__init__()
        self.in_channels = _POSITIVE_INT.check(in_channels, "in_channels")
        self.out_channels = _POSITIVE_INT.check(out_channels, "out_channels")
        self.basis = _as_disco_basis(basis)
        self.stride = _POSITIVE_INT.check(stride, "stride")
        self.weight = nn.Parameter(torch.empty(*weight_shape, self.basis.n_functions))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        """Kaiming-uniform weights with fan-in ``C [* scale_size] * F``; zero bias (as DISCO)."""
        reset_conv_parameters(self.weight, self.bias, zero_bias=True)

    @property
    def n_scales(self):
        return self.basis.n_scales

    def _correlate(self, x, kernel, dilation):
        padding = dilation * (kernel.shape[-1] // 2)
        return F.conv2d(x, kernel, self.bias, stride=self.stride, padding=padding, dilation=dilation)

    def extra_repr(self):
        return (
            f"{self.in_channels}, {self.out_channels}, n_scales={self.n_scales}, stride={self.stride}, "
            f"bias={self.bias is not None}"
        )


class DiscoConvT2H(_DiscoConv):
    """DISCO lifting convolution: (B, C, H, W) -> (B, O, S, H', W').

    The output at scale ``s`` is the input correlated with ``sum_f w[o, c, f] psi_f^s``,
    the same coefficients on the :class:`DiscoBasis` at every scale (dilated for integer
    scale ratios).

    Parameters
    ----------
    in_channels, out_channels : int
    basis : DiscoBasis or sequence of float
        A (shared) :class:`DiscoBasis`; a sequence of scales builds one with the default
        options (which may optimise and cache it in the scikit-learn data home).
    stride : int, default=1
        Spatial stride; padding is "same".
    bias : bool, default=True
        One bias per output channel, shared by all scales.

    Attributes
    ----------
    weight : Parameter of shape (O, C, F)
    bias : Parameter of shape (O,) or None

    Examples
    --------
    >>> import torch
    >>> layer = DiscoConvT2H(1, 4, DiscoBasis([1.0, 2.0, 4.0], effective_size=3))
    >>> tuple(layer(torch.randn(2, 1, 16, 16)).shape)
    (2, 4, 3, 16, 16)
    """

    def __init__(self, in_channels, out_channels, basis, *, stride=1, bias=True):
        super().__init__(in_channels, out_channels, basis, stride, bias, (out_channels, in_channels))

    def forward(self, x):
        check_input_shape(self, x, self.in_channels)
        outputs = []
        for basis, dilation in self.basis.kernels():
            kernel = torch.einsum("ocf,fyx->ocyx", self.weight, basis.to(self.weight.dtype))
            outputs.append(self._correlate(x, kernel, dilation))
        return torch.stack(outputs, dim=2)


class DiscoConvH2H(_DiscoConv):
    """DISCO scale-to-scale convolution: (B, C, S, H, W) -> (B, O, S, H', W').

    Output scale ``s`` correlates input scales ``s .. s + scale_size - 1`` with kernels on
    the basis at scale ``s``; input scales past the last one are read as zeros (a
    truncated scale axis, as in SESN and DISCO).

    Parameters
    ----------
    in_channels, out_channels, stride, bias
        As for :class:`DiscoConvT2H`.
    basis : DiscoBasis or sequence of float
        Must hold as many scales as the input's scale axis.
    scale_size : int, default=1
        Number of neighbouring input scales each output scale reads.

    Attributes
    ----------
    weight, bias
        As for :class:`DiscoConvT2H`, with ``weight`` of shape (O, C, scale_size, F).

    Examples
    --------
    >>> import torch
    >>> layer = DiscoConvH2H(4, 6, DiscoBasis([1.0, 2.0], effective_size=3), scale_size=2)
    >>> tuple(layer(torch.randn(2, 4, 2, 16, 16)).shape)
    (2, 6, 2, 16, 16)
    """

    def __init__(self, in_channels, out_channels, basis, scale_size=1, *, stride=1, bias=True):
        self.scale_size = _POSITIVE_INT.check(scale_size, "scale_size")
        super().__init__(
            in_channels, out_channels, basis, stride, bias, (out_channels, in_channels, scale_size)
        )

    def forward(self, x):
        check_input_shape(self, x, self.in_channels, self.n_scales, scale_axis=True)
        batch, channels, n_scales, height, width = x.shape
        outputs = []
        for scale, (basis, dilation) in enumerate(self.basis.kernels()):
            n_read = min(self.scale_size, n_scales - scale)
            inputs = x[:, :, scale : scale + n_read].reshape(batch, channels * n_read, height, width)
            kernel = torch.einsum("ocjf,fyx->ocjyx", self.weight[:, :, :n_read], basis.to(self.weight.dtype))
            kernel = kernel.reshape(self.out_channels, channels * n_read, *basis.shape[-2:])
            outputs.append(self._correlate(inputs, kernel, dilation))
        return torch.stack(outputs, dim=2)

    def extra_repr(self):
        return super().extra_repr() + f", scale_size={self.scale_size}"


@register_architecture("disco")
class DISCONet(nn.Module):
    """DISCO network for MNIST-sized images (Sosnovik et al., 2021).

    :class:`DiscoConvT2H` (32 filters) -> ReLU -> 2 x 2 average pooling -> 3-D batch
    norm, :class:`DiscoConvH2H` (63) -> ReLU -> average pooling -> 3-D batch norm,
    :class:`DiscoConvH2H` (95) -> max projection over the scales -> ReLU -> batch norm,
    and the SESN head (2 x 2 max pooling, 256 units without bias, batch norm, ReLU,
    dropout, logits). All layers share one :class:`DiscoBasis` with 49 functions (7 x 7
    at the smallest scale), so the network has **494,549** trainable parameters for 10
    classes on one channel, as :class:`~skscale.nn.models.PlainCNN`, whatever the
    scales and the image size; the scales are fixed.

    Simplifications with respect to DISCO's MNIST model: the digits are not upsampled
    to 56 x 56 first unless ``upsample=2``; the head pools adaptively to 2 x 2 (DISCO: a
    7 x 7 max pool and a strided 2 x 2 average pool on the 14 x 14 map); the basis is
    the "A" variant (one Hermite envelope) optimised as in :func:`optimise_disco_basis`.

    Parameters
    ----------
    n_classes : int
    in_channels : int, default=1
    scales : sequence of float, optional
        The fixed scales. By default ``init_sigma_basis * init_isr ** (i / (n_scales - 1))``
        (Eq. 2), which with the defaults below is DISCO's :data:`DISCO_SCALES`
        (``1.8 * 2 ** (i / 3)``, ``i = 0 .. 3`` on MNIST-Scale). DISCO's scales are never
        learned, so a classifier's ``parameterisation`` and ``kernel_extent`` do not apply.
    effective_size : int, default=7
    margin : int, default=1
    data_home : str or path-like, optional
        Cache of the optimised basis (see :func:`load_disco_basis`).
    scale_size : int, default=1
        Inter-scale interaction of the two :class:`DiscoConvH2H` layers.
    upsample : int, default=1
        Nearest-neighbour upsampling factor applied first (DISCO: 2).
    widths, hidden, dropout
        As for :class:`~skscale.nn.models.PlainCNN`.
    scale_spec : ScaleSpec, mapping or None, optional
        The scales of Eq. 2 when ``scales`` is not given (:class:`~skscale.nn.ScaleSpec`,
        the classifier's hyper-parameters); a mapping overrides some of
        :attr:`scale_defaults` (``n_scales=4``, ``init_sigma_basis=1.8``, ``init_isr=2.0``).
        Only those three apply: DISCO's scales are fixed.
    """

    scale_defaults = ScaleSpec(n_scales=4, parameterisation="fixed", init_sigma_basis=1.8, init_isr=2.0)

    def __init__(
        self,
        n_classes,
        in_channels=1,
        scales=None,
        effective_size=7,
        margin=1,
        data_home=None,
        scale_size=1,
        upsample=1,
        widths=SESN_LAYOUT.widths,
        hidden=SESN_LAYOUT.hidden,
        dropout=SESN_LAYOUT.dropout,
        *,
        scale_spec=None,
    ):
        super().__init__()
        self.scale_spec = None if scales is not None else resolve_scale_spec(scale_spec, self.scale_defaults)
        if scales is None:
            spec = self.scale_spec
            scales = log_uniform_scales(spec.n_scales, spec.init_sigma_basis, spec.init_isr).tolist()
        widths = Sequence(_POSITIVE_INT).check(widths, "widths")
        upsample = _POSITIVE_INT.check(upsample, "upsample")
        self.basis = DiscoBasis(scales, effective_size, margin=margin, data_home=data_home)
        self.upsample = nn.Upsample(scale_factor=upsample) if upsample > 1 else nn.Identity()
        layers = []
        channels = in_channels
        for index, width in enumerate(widths):
            if index == 0:
                layers.append(DiscoConvT2H(channels, width, self.basis))
            else:
                layers.append(DiscoConvH2H(channels, width, self.basis, scale_size))
            if index < len(widths) - 1:
                layers += [nn.ReLU(), nn.AvgPool3d((1, 2, 2), ceil_mode=True), nn.BatchNorm3d(width)]
            channels = width
        layers += [ScaleProjection("max"), nn.ReLU(), nn.BatchNorm2d(channels)]
        self.features = nn.Sequential(*layers)
        self.head = mnist_head(channels, n_classes, hidden, dropout)

    def forward(self, x):
        return self.head(self.features(self.upsample(x)))

"""Real 2-D FFTs of image batches on a zero-padded periodic grid, as autograd functions.

The FFT correlation (:func:`skscale.nn.functional.fft_correlate_same`) places every
image on the grid of :func:`~skscale.nn.planning.fft_grid_size`, transforms it
(:func:`padded_spectrum`), multiplies spectra and transforms back to the image's pixels
(:func:`cropped_image`). On a CPU both transforms work a few images at a time, in calls
of at most ``_CPU_POINTS_PER_CALL`` points (:func:`images_per_call`): a batched 2-D
transform slows down several-fold per point once the batch outgrows the caches. The two
transforms are each other's adjoints up to column weights, so each one's backward pass
is the other; both are linear, so a tangent (forward-mode derivative) goes through the
function itself, and ``torch.vmap`` folds the mapped axis into the batch.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

__all__ = ["SpectrumGrid", "padded_spectrum", "cropped_image", "images_per_call", "rfft2_in_pieces"]

# Largest number of points (images x N_H x N_W) that one CPU FFT call transforms.
_CPU_POINTS_PER_CALL = 2**19

_COMPLEX = {torch.float32: torch.complex64, torch.float64: torch.complex128}


def _column_weights(fft_w, dtype, device):
    """Weights of the half-spectrum columns in ``irfft2``'s adjoint.

    ``irfft2`` counts every column ``0 < k < N_W / 2`` twice (with its mirror image) and
    the columns ``0`` and ``N_W / 2`` (even ``N_W``) once, so the adjoint of
    ``rfft2`` is ``N_H N_W irfft2(G w)`` with ``w = 1/2`` on the paired columns and ``1``
    on the others, and the adjoint of ``irfft2`` is ``rfft2(g) / (N_H N_W w)``.
    """
    weights = torch.full((fft_w // 2 + 1,), 0.5, dtype=dtype, device=device)
    weights[0] = 1.0
    if fft_w % 2 == 0:
        weights[-1] = 1.0
    return weights


def _pieces(batch, per_image, per_call):
    """Batch slices of at most ``per_call`` 2-D transforms (at least one image each)."""
    step = max(1, per_call // per_image)
    return [slice(start, min(start + step, batch)) for start in range(0, batch, step)]


def _spectrum_layout(piece, groups):
    """A ``(b, C, N_H, N_W')`` spectrum piece seen in the layout of the whole result."""
    if groups is None:
        return piece
    b, channels = piece.shape[:2]
    return piece.reshape(b, groups, channels // groups, -1).permute(1, 3, 0, 2)


class SpectrumGrid(NamedTuple):
    """Where the images of the FFT path lie on its periodic grid, and how spectra are laid out.

    ``image`` pixel ``(i, j)`` sits at grid point ``(stride i, stride j)`` of the zero
    ``size`` grid; spectra are ``(B, C, N_H, N_W // 2 + 1)`` (``groups=None``) or
    frequency-major ``(g, N_H (N_W // 2 + 1), B, C / g)``; at most ``per_call`` 2-D
    transforms go into one call.

    Attributes
    ----------
    size : tuple of int
        ``(N_H, N_W)``, the periodic grid (:func:`~skscale.nn.planning.fft_grid_size`).
    groups : int or None
        Channel groups of the frequency-major layout; ``None`` for the batch-major one.
    stride : int
        Spacing of the image's pixels on the grid.
    image : tuple of int
        ``(rows, columns)`` of the image.
    per_call : int
        Most 2-D transforms in one call (see :func:`images_per_call`).
    """

    size: tuple
    groups: int | None
    stride: int
    image: tuple
    per_call: int


def padded_spectrum(x, grid, weights=None, scale=1.0):
    """``scale * weights * rfft2`` of the images ``x`` placed on the grid.

    Parameters
    ----------
    x : tensor of shape (B, C, *grid.image), float32 or float64
    grid : SpectrumGrid
    weights : tensor of shape (N_W // 2 + 1,), optional
        A factor per spectrum column.
    scale : float, default=1.0

    Returns
    -------
    spectrum : complex tensor in the layout of ``grid`` (see :class:`SpectrumGrid`)
    """
    return _PaddedSpectrum.apply(x, grid, weights, scale)


def cropped_image(spectrum, grid, weights=None, scale=1.0):
    """``scale * irfft2(weights * spectrum)`` at the grid points of the image.

    The inverse of :func:`padded_spectrum` for ``weights=None`` and ``scale=1``.

    Parameters
    ----------
    spectrum : complex tensor in the layout of ``grid`` (see :class:`SpectrumGrid`)
    grid, weights, scale
        As for :func:`padded_spectrum`.

    Returns
    -------
    image : tensor of shape (B, C, *grid.image), in the spectrum's real dtype
    """
    return _CroppedImage.apply(spectrum, grid, weights, scale)


def _grid_points(tensor, grid):
    """The grid points ``(stride i, stride j)`` of the image's pixels: a strided view of ``tensor``."""
    rows, columns = grid.image
    return tensor[
        ..., : (rows - 1) * grid.stride + 1 : grid.stride, : (columns - 1) * grid.stride + 1 : grid.stride
    ]


def _adjoint_factors(ctx, dtype, device, of_inverse):
    """Column weights and scale that turn one transform into the other one's adjoint.

    By :func:`_column_weights`, the adjoint of ``padded_spectrum`` (weights ``v``, scale
    ``a``) is ``cropped_image`` with weights ``w v`` and scale ``N_H N_W a``, and the
    adjoint of ``cropped_image`` is ``padded_spectrum`` with weights ``v / w`` and scale
    ``a / (N_H N_W)`` (``of_inverse=True``).
    """
    fft_h, fft_w = ctx.grid.size
    half = _column_weights(fft_w, dtype, device)
    if of_inverse:
        weights = 1 / half if ctx.weights is None else ctx.weights / half
        return weights, ctx.scale / (fft_h * fft_w)
    weights = half if ctx.weights is None else half * ctx.weights
    return weights, ctx.scale * fft_h * fft_w


class _GridTransform(torch.autograd.Function):
    """Shared by the two linear transforms: what the backward and tangent passes need."""

    @staticmethod
    def setup_context(ctx, inputs, output):
        _, ctx.grid, ctx.weights, ctx.scale = inputs

    @classmethod
    def jvp(cls, ctx, tangent, *_):
        # Linear: the tangent goes through the transform itself.
        return cls.apply(tangent, ctx.grid, ctx.weights, ctx.scale)


class _PaddedSpectrum(_GridTransform):
    """:func:`padded_spectrum`, written piece by piece into one result.

    A few images at a time are placed in a reused zero buffer that the caches hold and
    transformed (a 2-D transform of many images at once is several times slower per point
    on a CPU), then copied into the result's layout. ``weights`` (per column) and
    ``scale`` serve the adjoint of :class:`_CroppedImage`: each function's backward pass is
    the other one. Both are linear, so a tangent goes through the function itself.
    """

    @staticmethod
    def forward(x, grid, weights, scale):
        batch, channels = x.shape[:2]
        fft_h, fft_w = grid.size
        dtype = _COMPLEX[x.dtype]  # float32 or float64: the callers cast to these
        if grid.groups is None:
            out = x.new_empty((batch, channels, fft_h, fft_w // 2 + 1), dtype=dtype)
        else:
            out = x.new_empty(
                (grid.groups, fft_h * (fft_w // 2 + 1), batch, channels // grid.groups), dtype=dtype
            )
        pieces = _pieces(batch, channels, grid.per_call)
        if not pieces:  # an empty batch (MKL refuses to transform no image)
            return out
        padded = x.new_zeros((pieces[0].stop, channels, fft_h, fft_w))
        window = _grid_points(padded, grid)
        factor = None if weights is None and scale == 1 else (1 if weights is None else weights) * scale
        for piece in pieces:
            n = piece.stop - piece.start
            window[:n].copy_(x[piece])
            transformed = torch.fft.rfft2(padded[:n])
            if factor is not None:
                transformed.mul_(factor)
            target = out[piece] if grid.groups is None else out[:, :, piece]
            target.copy_(_spectrum_layout(transformed, grid.groups))
        return out

    @staticmethod
    def backward(ctx, grad):
        weights, scale = _adjoint_factors(ctx, grad.real.dtype, grad.device, of_inverse=False)
        return cropped_image(grad, ctx.grid, weights, scale), None, None, None

    @staticmethod
    def vmap(info, in_dims, x, grid, weights, scale):
        # The mapped axis joins the batch.
        x = x.movedim(in_dims[0], 0)
        spectrum = padded_spectrum(x.reshape(-1, *x.shape[2:]), grid, weights, scale)
        if grid.groups is None:
            return spectrum.view(x.shape[0], x.shape[1], *spectrum.shape[1:]), 0
        return spectrum.view(*spectrum.shape[:2], x.shape[0], x.shape[1], spectrum.shape[3]), 2


class _CroppedImage(_GridTransform):
    """:func:`cropped_image`, piece by piece; the inverse of :class:`_PaddedSpectrum`.

    The inverse for ``weights=None`` and ``scale=1`` (and the adjoint with the weights
    and scale of :meth:`_PaddedSpectrum.backward`): it reads that function's layout.
    """

    @staticmethod
    def forward(spectrum, grid, weights, scale):
        fft_h, fft_w = grid.size
        rows, columns = grid.image
        if grid.groups is None:
            batch, channels = spectrum.shape[:2]
        else:
            batch, channels = spectrum.shape[2], spectrum.shape[0] * spectrum.shape[3]
        out = spectrum.new_empty((batch, channels, rows, columns), dtype=spectrum.real.dtype)
        pieces = _pieces(batch, channels, grid.per_call)
        if not pieces:
            return out
        buffer = None
        if grid.groups is not None or weights is not None:
            buffer = spectrum.new_empty((pieces[0].stop, channels, fft_h, fft_w // 2 + 1))
        for piece in pieces:
            n = piece.stop - piece.start
            source = spectrum[piece] if grid.groups is None else spectrum[:, :, piece]
            if buffer is not None:
                _spectrum_layout(buffer[:n], grid.groups).copy_(source)
                source = buffer[:n]
                if weights is not None:
                    source.mul_(weights)
            image = torch.fft.irfft2(source, s=grid.size)
            window = _grid_points(image, grid)
            if scale == 1:
                out[piece].copy_(window)
            else:
                torch.mul(window, scale, out=out[piece])
        return out

    @staticmethod
    def backward(ctx, grad):
        weights, scale = _adjoint_factors(ctx, grad.dtype, grad.device, of_inverse=True)
        return padded_spectrum(grad, ctx.grid, weights, scale), None, None, None

    @staticmethod
    def vmap(info, in_dims, spectrum, grid, weights, scale):
        # The mapped axis joins the batch axis (0 batch-major, 2 frequency-major).
        batch_axis = 0 if grid.groups is None else 2
        spectrum = spectrum.movedim(in_dims[0], batch_axis)
        mapped, batch = spectrum.shape[batch_axis : batch_axis + 2]
        image = cropped_image(spectrum.flatten(batch_axis, batch_axis + 1), grid, weights, scale)
        return image.view(mapped, batch, *image.shape[1:]), 0


def images_per_call(shape, device):
    """How many 2-D transforms of ``shape`` one FFT call takes.

    On the CPU a batched 2-D transform slows down several-fold per point once the batch
    outgrows the caches, so the batch is cut into calls of at most
    ``_CPU_POINTS_PER_CALL`` points.

    Parameters
    ----------
    shape : tuple of int
        ``(N_H, N_W)``, the size of one transform.
    device : torch.device

    Returns
    -------
    per_call : int or None
        ``None`` (everything in one call) off the CPU and while a graph is recorded.
    """
    # A recorded graph transforms in one call (its batch may be symbolic).
    if device.type != "cpu" or torch.jit.is_tracing() or torch.compiler.is_compiling():
        return None
    return max(1, _CPU_POINTS_PER_CALL // (shape[0] * shape[1]))


def rfft2_in_pieces(tensor, size):
    """``torch.fft.rfft2(tensor, s=size)`` over the last two axes, in cache-sized calls.

    Parameters
    ----------
    tensor : tensor of shape (..., h, w)
    size : tuple of int
        ``(N_H, N_W)``, the transform size (zero padding at the end of each axis).

    Returns
    -------
    spectrum : complex tensor of shape (..., N_H, N_W // 2 + 1)
    """
    per_call = images_per_call(size, tensor.device)
    leading = tensor.shape[:-2]
    flat = tensor.reshape(-1, *tensor.shape[-2:])
    if per_call is None or flat.shape[0] <= per_call:
        return torch.fft.rfft2(tensor, s=size)
    pieces = [torch.fft.rfft2(piece, s=size) for piece in flat.split(per_call)]
    return torch.cat(pieces).reshape(*leading, *pieces[0].shape[-2:])

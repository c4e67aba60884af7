"""Rescaling of images about their centre, one factor per image, batched in torch."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..utils.validation import Boolean, Integer, Pair, Real

__all__ = ["rescale_images", "rescale_tensor"]

# Output pixels resampled per torch call; bounds the memory of the sampling grid.
_PIXELS_PER_CHUNK = 2**22
# Largest supersampling factor of the antialiasing box filter (enough down to 1/8).
_MAX_SUPERSAMPLING = 8


def _resample(images, factors, output_size, antialias=False, clip=(0.0, 1.0)):
    """Rescale each image about its centre by its own factor onto a new canvas.

    A pixel at offset ``p`` (in pixels) from the centre of the output takes the bicubic
    interpolation of the input at offset ``p / factor`` from the input's centre; inputs
    are zero outside their borders. With ``align_corners=False`` the centre of an
    image of side ``n`` lies at pixel coordinate ``(n - 1) / 2``, so rescaling about it
    keeps digits centred for even and odd sizes alike, and ``factor=1`` with equal
    sizes returns the input (up to float32 rounding of the sampling grid).

    Parameters
    ----------
    images : tensor of shape (B, H, W), float32
    factors : ndarray of shape (B,)
        Positive rescaling factors.
    output_size : tuple of int
        ``(height, width)`` of the output.
    antialias : bool
        Average ``k x k`` samples per output pixel, ``k = ceil(1 / factor)`` (a box
        filter as wide as one input pixel), when downscaling.
    clip : (float, float) or None
        Range the output is clipped to (bicubic interpolation overshoots); ``None``
        leaves it as interpolated.

    Returns
    -------
    rescaled : tensor of shape (B, height, width), dtype and device of ``images``
    """
    n_images, in_height, in_width = images.shape
    out_height, out_width = output_size
    output = images.new_empty((n_images, out_height, out_width))
    if antialias:
        supersampling = np.clip(np.ceil(1.0 / factors - 1e-9), 1, _MAX_SUPERSAMPLING).astype(int)
    else:
        supersampling = np.ones(n_images, dtype=int)
    for k in np.unique(supersampling):
        members = np.flatnonzero(supersampling == k)
        chunk = max(1, _PIXELS_PER_CHUNK // (out_height * out_width * k * k))
        for start in range(0, len(members), chunk):
            index = torch.from_numpy(members[start : start + chunk])
            factor = torch.as_tensor(factors[index.numpy()], dtype=images.dtype)
            # affine_grid maps normalised output coordinates (-1..1 across the output)
            # to normalised input coordinates: an offset of p output pixels is an
            # offset of p / factor input pixels.
            theta = images.new_zeros((len(index), 2, 3))
            theta[:, 0, 0] = out_width / (in_width * factor)
            theta[:, 1, 1] = out_height / (in_height * factor)
            grid = F.affine_grid(theta, [len(index), 1, out_height * k, out_width * k], align_corners=False)
            sampled = F.grid_sample(
                images[index].unsqueeze(1), grid, mode="bicubic", padding_mode="zeros", align_corners=False
            )
            if k > 1:
                sampled = F.avg_pool2d(sampled, int(k))
            output[index] = sampled[:, 0]
    # Bicubic interpolation overshoots next to sharp strokes.
    return output if clip is None else output.clamp_(*clip)


_SIDE = Integer(low=1)
_ANTIALIAS = Boolean()


def _check_factors(factors, n_images):
    """``factors`` broadcast to ``(n_images,)`` float64, all positive and finite."""
    factors = np.broadcast_to(np.asarray(factors, dtype=np.float64), (n_images,))
    if not (np.isfinite(factors).all() and (factors > 0).all()):
        bad = factors[~(np.isfinite(factors) & (factors > 0))][0]
        raise ValueError(f"factors must be positive and finite, got {bad!r}.")
    return factors


def _check_size(output_size):
    """``output_size`` as ``(height, width)``: one positive int or a pair of them."""
    sides = (output_size, output_size) if _SIDE.is_valid(output_size) else output_size
    if not (isinstance(sides, (tuple, list)) and len(sides) == 2 and all(map(_SIDE.is_valid, sides))):
        raise ValueError(f"output_size must be {_SIDE} or a pair of them, got {output_size!r}.")
    return int(sides[0]), int(sides[1])


def rescale_images(images, factors, *, output_size=None, antialias=False):
    """Rescale images about their centre by a factor each (bicubic), on a fixed canvas.

    Every image is magnified (``factor > 1``) or shrunk (``factor < 1``) about its
    centre with bicubic interpolation and sampled onto an ``output_size`` canvas:
    shrunk images are padded with zeros, magnified ones cropped. This is the rescaling
    of MNIST-Scale (SESN's ``RandomAffine(0, scale=...)`` with bicubic interpolation)
    and of Dynamic Scale MNIST.

    The implementation is :func:`torch.nn.functional.grid_sample` (bicubic,
    ``align_corners=False``, zero padding) on a per-image affine grid, so every image
    gets its exact factor about its exact centre in one batched call, instead of the
    integer output sizes that :func:`torch.nn.functional.interpolate` would impose.
    Results are clipped to [0, 1] (bicubic interpolation overshoots).

    Parameters
    ----------
    images : array-like of shape (n_images, height, width)
        Images with values in [0, 1].
    factors : float or array-like of shape (n_images,)
        Positive rescaling factors; a digit rescaled by ``f`` spans ``f`` times as many
        pixels.
    output_size : int or (int, int), default=None
        Side(s) of the output canvas. ``None`` keeps the input size.
    antialias : bool, default=False
        When shrinking by ``f < 1``, average ``ceil(1 / f)**2`` samples per output pixel
        (at most 64), a box filter one input pixel wide that suppresses aliasing. Off by
        default to match the MNIST-Scale protocol of SESN, which resampled without it.

    Returns
    -------
    rescaled : ndarray of shape (n_images, *output_size), float32
        Values in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from skscale.datasets import rescale_images
    >>> square = np.zeros((1, 28, 28), dtype=np.float32)
    >>> square[0, 10:18, 10:18] = 1.0
    >>> big = rescale_images(square, 2.0, output_size=56)
    >>> big.shape, int((big[0] > 0.5).sum(axis=0).max())
    ((1, 56, 56), 16)
    """
    images = np.require(np.asarray(images, dtype=np.float32), requirements=["C", "W"])
    if images.ndim != 3:
        raise ValueError(f"images must have shape (n_images, height, width), got {images.shape}.")
    if images.size and (not np.isfinite(images).all() or images.min() < 0 or images.max() > 1):
        raise ValueError("images must hold finite values in [0, 1].")
    factors = _check_factors(factors, len(images))
    output_size = images.shape[1:] if output_size is None else _check_size(output_size)
    antialias = _ANTIALIAS.check(antialias, "antialias")
    if not len(images):
        return np.empty((0, *output_size), dtype=np.float32)
    with torch.no_grad():
        rescaled = _resample(torch.from_numpy(images), factors, tuple(output_size), antialias=antialias)
    return rescaled.numpy()


def rescale_tensor(images, factors, *, output_size=None, antialias=False, clip=None):
    """Rescale a batch of torch images about their centres, on their device.

    The operation of :func:`rescale_images` for tensors (e.g. to rescale training
    batches on the fly on the GPU): image ``i`` (all its channels) is magnified or
    shrunk by ``factors[i]`` about its centre with bicubic interpolation and sampled
    onto an ``output_size`` canvas, padded with zeros. No gradient is recorded.

    Parameters
    ----------
    images : torch.Tensor of shape (n_images, height, width) or \
(n_images, channels, height, width)
        Floating-point images, on any device.
    factors : float, array-like or torch.Tensor of shape (n_images,)
        Positive, finite rescaling factors.
    output_size : int or (int, int), default=None
        Side(s) of the output canvas; ``None`` keeps the input size.
    antialias : bool, default=False
        Box-filter antialiasing when shrinking, as in :func:`rescale_images`.
    clip : (float, float), default=None
        Range the output is clipped to; ``None`` keeps the interpolated values, as
        standardised images (with negative values) need. ``(0, 1)`` gives the output
        of :func:`rescale_images`.

    Returns
    -------
    rescaled : torch.Tensor of shape (n_images, [channels,] *output_size)
        Same dtype and device as ``images``.

    Examples
    --------
    >>> import torch
    >>> from skscale.datasets import rescale_tensor
    >>> batch = torch.zeros(2, 3, 28, 28)
    >>> batch[:, :, 10:18, 10:18] = 1.0
    >>> rescale_tensor(batch, [2.0, 0.5], output_size=56).shape
    torch.Size([2, 3, 56, 56])
    """
    if not isinstance(images, torch.Tensor) or not images.is_floating_point() or images.ndim not in (3, 4):
        raise ValueError(
            "images must be a floating-point torch.Tensor of shape (n, height, width) or "
            f"(n, channels, height, width), got {type(images).__name__} "
            f"{getattr(images, 'dtype', '')} of shape {tuple(getattr(images, 'shape', ()))}."
        )
    if isinstance(factors, torch.Tensor):
        factors = factors.detach().cpu().numpy()
    factors = _check_factors(factors, len(images))
    output_size = tuple(images.shape[-2:]) if output_size is None else _check_size(output_size)
    antialias = _ANTIALIAS.check(antialias, "antialias")
    if clip is not None:
        clip = Pair(Real(), allow_equal=True).check(clip, "clip")
    channels = images.shape[1] if images.ndim == 4 else 1
    flat = images.reshape(len(images) * channels, *images.shape[-2:])
    with torch.no_grad():
        rescaled = _resample(flat, np.repeat(factors, channels), output_size, antialias=antialias, clip=clip)
    return rescaled.reshape(*images.shape[:-2], *output_size)

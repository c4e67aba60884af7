"""Rescaling of image batches about their centres: the one resampler of skscale.

:func:`rescale_about_centre` magnifies or shrinks every image of a torch batch about
its centre by its own factor and samples it onto a canvas of a chosen size. The
interpolation, the padding of what lies outside the input and an antialiasing filter are
arguments, so that the metrics (the operator ``L_s`` of Eq. 1), the training-time scale
augmentation and the MNIST-Scale / Dynamic Scale MNIST data sets all resample the same
way, each with its own settings.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .utils.validation import Boolean, Integer, Options, Pair, Real

__all__ = ["INTERPOLATIONS", "PADDINGS", "rescale_about_centre"]

INTERPOLATIONS = ("bicubic", "bilinear", "nearest")
"""Interpolation modes of :func:`rescale_about_centre` (those of :func:`torch.nn.functional.grid_sample`)."""

PADDINGS = ("zeros", "border", "reflection")
"""Padding modes of :func:`rescale_about_centre`: what is read outside the input image."""

# Output pixels (times channels) resampled per torch call; bounds the sampling grid's memory.
_PIXELS_PER_CHUNK = 2**22
# Largest supersampling factor of the antialiasing box filter (enough down to 1/8).
_MAX_SUPERSAMPLING = 8

_INTERPOLATION = Options(INTERPOLATIONS)
_PADDING = Options(PADDINGS)
_SIDE = Integer(low=1)
_ANTIALIAS = Boolean()
_CLIP = Pair(Real(), allow_equal=True)


def _check_factors(factors, n_images):
    """``factors`` as a float64 array of shape ``(n_images, 2)``: (height, width) factors."""
    if isinstance(factors, torch.Tensor):
        factors = factors.detach().cpu().numpy()
    factors = np.asarray(factors, dtype=np.float64)
    if factors.ndim == 2 and factors.shape[1:] == (2,):
        factors = np.broadcast_to(factors, (n_images, 2))
    else:
        try:
            factors = np.broadcast_to(factors, (n_images,))
        except ValueError:
            raise ValueError(
                f"factors must be a number or an array of shape ({n_images},) or ({n_images}, 2), "
                f"got shape {factors.shape}."
            ) from None
        factors = np.stack([factors, factors], axis=1)
    valid = np.isfinite(factors) & (factors > 0)
    if not valid.all():
        raise ValueError(f"factors must be positive and finite, got {factors[~valid][0]!r}.")
    return factors


def _check_size(output_size, input_size):
    """``output_size`` as ``(height, width)``: ``None`` (the input's), one side or a pair."""
    if output_size is None:
        return tuple(int(side) for side in input_size)
    sides = (output_size, output_size) if _SIDE.is_valid(output_size) else output_size
    if not (isinstance(sides, (tuple, list)) and len(sides) == 2 and all(map(_SIDE.is_valid, sides))):
        raise ValueError(f"output_size must be {_SIDE} or a pair of them, got {output_size!r}.")
    return int(sides[0]), int(sides[1])


def _supersampling(factors, antialias):
    """Samples per output pixel along (height, width): ``ceil(1 / factor)`` when shrinking."""
    if not antialias:
        return np.ones(factors.shape, dtype=int)
    return np.clip(np.ceil(1.0 / factors - 1e-9), 1, _MAX_SUPERSAMPLING).astype(int)


def rescale_about_centre(
    images,
    factors,
    *,
    output_size=None,
    interpolation="bicubic",
    padding="zeros",
    antialias=False,
    clip=None,
):
    """Rescale each image of a batch about its centre by its own factor, onto a new canvas.

    A pixel at offset ``p`` (in pixels) from the centre of the output reads the input at
    offset ``p / factor`` from the input's centre. With ``align_corners=False`` the centre
    of a side of ``n`` pixels lies at pixel coordinate ``(n - 1) / 2``, so objects stay
    centred for even and odd sizes alike, and ``factor=1`` on an equal canvas returns the
    input (up to float rounding of the sampling grid). A factor ``f > 1`` magnifies (what
    falls outside the canvas is cropped), ``f < 1`` shrinks (the canvas border is filled as
    ``padding`` says). Differentiable in ``images``.

    Parameters
    ----------
    images : torch.Tensor of shape (n_images, height, width) or \
(n_images, channels, height, width)
        Floating-point images on any device; all channels of an image share its factor.
    factors : float, array-like or torch.Tensor of shape (n_images,) or (n_images, 2)
        Positive, finite rescaling factors: an object rescaled by ``f`` spans ``f`` times
        as many pixels. A pair per image rescales height and width by its two factors.
    output_size : int or (int, int), default=None
        Side(s) ``(height, width)`` of the output canvas; ``None`` keeps the input size.
    interpolation : {"bicubic", "bilinear", "nearest"}, default="bicubic"
        How the input is read between its pixels (the ``mode`` of
        :func:`torch.nn.functional.grid_sample`).
    padding : {"zeros", "border", "reflection"}, default="zeros"
        What is read outside the input: zeros, the nearest edge pixel (which keeps the
        background of normalised images), or the input mirrored at its border. The taps of
        the interpolation kernel that fall outside the input read the same.
    antialias : bool, default=False
        When shrinking by ``f < 1``, average ``ceil(1 / f)`` samples per output pixel along
        each axis (at most 8), a box filter one input pixel wide that suppresses aliasing.
    clip : (float, float), default=None
        Range the output is clipped to (bicubic interpolation overshoots next to sharp
        edges); ``None`` keeps the interpolated values.

    Returns
    -------
    rescaled : torch.Tensor of shape (n_images, [channels,] height, width)
        ``(height, width)`` is ``output_size``.
        Same dtype and device as ``images``.

    Examples
    --------
    >>> import torch
    >>> square = torch.zeros(1, 1, 28, 28)
    >>> square[..., 10:18, 10:18] = 1.0
    >>> big = rescale_about_centre(square, 2.0, output_size=56, clip=(0.0, 1.0))
    >>> tuple(big.shape), int((big[0, 0] > 0.5).sum(dim=0).max())
    ((1, 1, 56, 56), 16)
    >>> edge = rescale_about_centre(square, 0.5, interpolation="bilinear", padding="border")
    >>> tuple(edge.shape)
    (1, 1, 28, 28)
    """
    if not isinstance(images, torch.Tensor) or not images.is_floating_point() or images.ndim not in (3, 4):
        raise ValueError(
            "images must be a floating-point torch.Tensor of shape (n, height, width) or "
            f"(n, channels, height, width), got {type(images).__name__} "
            f"{getattr(images, 'dtype', '')} of shape {tuple(getattr(images, 'shape', ()))}."
        )
    factors = _check_factors(factors, len(images))
    out_height, out_width = _check_size(output_size, images.shape[-2:])
    interpolation = _INTERPOLATION.check(interpolation, "interpolation")
    padding = _PADDING.check(padding, "padding")
    antialias = _ANTIALIAS.check(antialias, "antialias")
    if clip is not None:
        clip = _CLIP.check(clip, "clip")

    batch = images if images.ndim == 4 else images.unsqueeze(1)
    n_images, channels, in_height, in_width = batch.shape
    output = batch.new_empty((n_images, channels, out_height, out_width))
    supersampling = _supersampling(factors, antialias)
    for samples in np.unique(supersampling, axis=0) if n_images else ():
        members = np.flatnonzero((supersampling == samples).all(axis=1))
        rows, cols = (int(k) for k in samples)
        chunk = max(1, _PIXELS_PER_CHUNK // (channels * out_height * rows * out_width * cols))
        for start in range(0, len(members), chunk):
            chosen = members[start : start + chunk]
            height_factor = torch.as_tensor(factors[chosen, 0], dtype=batch.dtype)
            width_factor = torch.as_tensor(factors[chosen, 1], dtype=batch.dtype)
            # affine_grid maps normalised output coordinates (-1..1 across the output) to
            # normalised input coordinates: an offset of p output pixels from the centre is
            # an offset of p / factor input pixels.
            theta = batch.new_zeros((len(chosen), 2, 3))
            theta[:, 0, 0] = (out_width / (in_width * width_factor)).to(batch.device)
            theta[:, 1, 1] = (out_height / (in_height * height_factor)).to(batch.device)
            grid = F.affine_grid(
                theta, [len(chosen), channels, out_height * rows, out_width * cols], align_corners=False
            )
            index = torch.from_numpy(chosen).to(batch.device)
            sampled = F.grid_sample(
                batch[index], grid, mode=interpolation, padding_mode=padding, align_corners=False
            )
            if rows > 1 or cols > 1:
                sampled = F.avg_pool2d(sampled, (rows, cols))
            output[index] = sampled
    if clip is not None:
        output = output.clamp(*clip)
    return output if images.ndim == 4 else output[:, 0]

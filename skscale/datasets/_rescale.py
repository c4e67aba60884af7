"""MNIST-Scale's rescaling (bicubic, zero padding) of image arrays and torch batches.

Both functions are :func:`skscale.rescaling.rescale_about_centre` with the settings of
the data sets; they check the images and keep no gradient.
"""

from __future__ import annotations

import numpy as np
import torch

from ..rescaling import rescale_about_centre

__all__ = ["rescale_images", "rescale_tensor"]


def rescale_images(images, factors, *, output_size=None, antialias=False):
    """Rescale images about their centre by a factor each (bicubic), on a fixed canvas.

    Every image is magnified (``factor > 1``) or shrunk (``factor < 1``) about its
    centre with bicubic interpolation and sampled onto an ``output_size`` canvas:
    shrunk images are padded with zeros, magnified ones cropped. This is the rescaling
    of MNIST-Scale (SESN's ``RandomAffine(0, scale=...)`` with bicubic interpolation)
    and of Dynamic Scale MNIST.

    It is :func:`skscale.rescaling.rescale_about_centre` with bicubic interpolation and
    zero padding: every image gets its exact factor about its exact centre in one batched
    call, instead of the integer output sizes that
    :func:`torch.nn.functional.interpolate` would impose. Results are clipped to [0, 1]
    (bicubic interpolation overshoots).

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
    rescaled : ndarray of shape (n_images, height, width) with (height, width) = output_size, float32
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
    with torch.no_grad():
        rescaled = rescale_about_centre(
            torch.from_numpy(images), factors, output_size=output_size, antialias=antialias, clip=(0.0, 1.0)
        )
    return rescaled.numpy()


def rescale_tensor(images, factors, *, output_size=None, antialias=False, clip=None):
    """Rescale a batch of torch images about their centres, on their device.

    The operation of :func:`rescale_images` for tensors (e.g. to rescale training
    batches on the fly on the GPU): image ``i`` (all its channels) is magnified or
    shrunk by ``factors[i]`` about its centre with bicubic interpolation and sampled
    onto an ``output_size`` canvas, padded with zeros. No gradient is recorded.

    Parameters
    ----------
    images, factors, output_size, antialias, clip
        As for :func:`skscale.rescaling.rescale_about_centre`, which this calls with
        bicubic interpolation and zero padding; ``clip=(0, 1)`` gives the output of
        :func:`rescale_images`.

    Returns
    -------
    rescaled : torch.Tensor of shape (n_images, [channels,] height, width)
        ``(height, width)`` is ``output_size``.

    Examples
    --------
    >>> import torch
    >>> from skscale.datasets import rescale_tensor
    >>> batch = torch.zeros(2, 3, 28, 28)
    >>> batch[:, :, 10:18, 10:18] = 1.0
    >>> rescale_tensor(batch, [2.0, 0.5], output_size=56).shape
    torch.Size([2, 3, 56, 56])
    """
    with torch.no_grad():
        return rescale_about_centre(images, factors, output_size=output_size, antialias=antialias, clip=clip)

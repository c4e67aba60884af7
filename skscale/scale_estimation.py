"""Relative object scales estimated from the images alone, for :class:`skscale.ToleranceModel`.

The scale of an image is the radius of gyration (root mean square distance from the
centroid) of its object's mass: for objects of one shape it is proportional to their
size, so its logarithm shifts by ``log2(s)`` when an image is magnified by ``s``. The
object is the connected foreground part with the largest mass after a grey-opening
background subtraction, so clutter, noise and smooth backgrounds elsewhere in the image
do not count, and position and contrast do not matter.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import ndimage, stats
from sklearn.utils.validation import check_array, column_or_1d

from .utils.validation import Boolean, Integer

__all__ = ["estimate_scales"]

_SMOOTH = 0.85
# Foreground: smoothed residual above this many noise standard deviations and above this
# share of the image's largest residual (the latter makes the threshold contrast-invariant).
_NOISE_THRESHOLD = 3.0
_PEAK_FRACTION = 0.2
# Pixels of foreground joined into one object across gaps (broken strokes).
_JOIN = 1
_CHUNK = 64


def _disk(diameter):
    """Boolean disk footprint of ``diameter`` pixels."""
    radius = (diameter - 1) / 2.0
    grid = np.arange(diameter) - radius
    return grid[:, None] ** 2 + grid[None, :] ** 2 <= radius**2 + 1e-9


def _noise_std(images):
    """Pixel noise standard deviation of each image (median absolute neighbour difference)."""
    diffs = np.diff(images, axis=2).reshape(len(images), -1)
    deviation = np.abs(diffs - np.median(diffs, axis=1, keepdims=True))
    return 1.4826 * np.median(deviation, axis=1) / np.sqrt(2.0)


def _gyration_radii(images, background_size):
    """Radius of gyration of each image's object (NaN where there is none)."""
    n_images, height, width = images.shape
    radii = np.full(n_images, np.nan)
    rows, cols = np.indices((height, width), dtype=np.float64)
    # Components never connect across images of a chunk.
    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1] = ndimage.generate_binary_structure(2, 2)
    # Standard deviation of white noise of unit variance after the (discrete) smoothing.
    impulse = np.zeros((9, 9))
    impulse[4, 4] = 1.0
    gain = np.sqrt(np.sum(ndimage.gaussian_filter(impulse, _SMOOTH) ** 2))
    for start in range(0, n_images, _CHUNK):
        chunk = images[start : start + _CHUNK]
        n_chunk = len(chunk)
        smooth = ndimage.gaussian_filter(chunk, _SMOOTH, axes=(1, 2), mode="reflect")
        if background_size > 1:
            # A grey opening keeps the lower envelope: structures narrower than the disk go.
            footprint = _disk(background_size)[None]
            background = ndimage.grey_opening(smooth, footprint=footprint, mode="reflect")
            background = ndimage.gaussian_filter(
                background, background_size / 4.0, axes=(1, 2), mode="reflect"
            )
        else:
            background = np.median(smooth.reshape(n_chunk, -1), axis=1)[:, None, None]
        residual = smooth - background
        noise = _noise_std(chunk) * gain
        peak = residual.reshape(n_chunk, -1).max(axis=1)
        threshold = np.maximum(_NOISE_THRESHOLD * noise, _PEAK_FRACTION * peak)[:, None, None]
        mass = np.clip(residual - threshold, 0.0, None)
        joined = ndimage.binary_dilation(mass > 0, structure=structure, iterations=_JOIN)
        labels, n_labels = ndimage.label(joined, structure=structure)
        if n_labels == 0:
            continue
        index = np.arange(1, n_labels + 1)
        totals = ndimage.sum_labels(mass, labels, index)
        # Image of each component: where its label first occurs (labels count up image by image).
        owner = np.unique(labels, return_index=True)[1][1:] // (height * width)
        # The object is the component of each image with the largest mass.
        best = np.full(n_chunk, -1)
        best_total = np.zeros(n_chunk)
        for label, image_index, total in zip(index, owner, totals):
            if total > best_total[image_index]:
                best_total[image_index], best[image_index] = total, label
        for i in np.flatnonzero(best > 0):
            weight = np.where(labels[i] == best[i], mass[i], 0.0)
            total = weight.sum()
            centre_row = (weight * rows).sum() / total
            centre_col = (weight * cols).sum() / total
            variance = (weight * ((rows - centre_row) ** 2 + (cols - centre_col) ** 2)).sum() / total
            radii[start + i] = np.sqrt(max(variance, 0.25))
    return radii


def _as_gray_images(X, image_shape):
    """(n, H, W) float64 images from the layouts the classifier accepts (channels averaged)."""
    X = check_array(X, allow_nd=True, dtype=np.float64, ensure_all_finite=True, input_name="X")
    if X.ndim == 2:
        if image_shape is None:
            raise ValueError(
                f"image_shape must be given for 2-D X of shape {X.shape} (rows are flattened "
                "images), got None."
            )
        shape = tuple(image_shape) if np.ndim(image_shape) == 1 else ()
        if len(shape) not in (2, 3) or not all(Integer(low=1).is_valid(v) for v in shape):
            raise ValueError(
                f"image_shape must be (height, width) or (height, width, channels), got {image_shape!r}."
            )
        height, width = int(shape[0]), int(shape[1])
        channels = int(shape[2]) if len(shape) == 3 else 1
        if X.shape[1] != height * width * channels:
            raise ValueError(
                f"image_shape={image_shape!r} needs {height * width * channels} features per row, "
                f"X has {X.shape[1]}."
            )
        return X.reshape(len(X), height, width, channels).mean(axis=3)
    if X.ndim == 3:
        return X
    if X.ndim == 4:
        return X.mean(axis=1)
    raise ValueError(
        f"X must be 2-D, 3-D (n, height, width) or 4-D (n, channels, height, width), got {X.shape}."
    )


def _class_offsets(log_scales, groups):
    """Each image's class offset (median log-scale of its class), shrunk for its noise.

    A class median from few images is noisy; subtracting it as it is would add that noise
    to every member. The offsets are shrunk towards their median by the share of their
    variance that the noise of a median (``pi / 2`` times the class variance over its
    size) does not explain, as in empirical-Bayes estimation of group means.
    """
    classes = np.unique(groups)
    members = [log_scales[groups == c] for c in classes]
    medians = np.array([np.median(m) for m in members])
    spreads = np.array([1.4826 * np.median(np.abs(m - np.median(m))) for m in members])
    sizes = np.array([len(m) for m in members])
    noise = np.pi / 2.0 * spreads**2 / sizes
    offsets = medians - np.median(medians)
    between = np.var(offsets)
    shrink = max(0.0, 1.0 - noise.mean() / between) if between > 0 else 0.0
    return shrink * offsets[np.searchsorted(classes, groups)]


def _uniform_quantiles(log_scales, clip):
    """Ranks of ``log_scales`` mapped onto an even grid with their winsorised variance."""
    centre = np.median(log_scales)
    spread = 1.4826 * np.median(np.abs(log_scales - centre))
    if spread > 0:
        clipped = np.clip(log_scales, centre - clip * spread, centre + clip * spread)
    else:
        clipped = log_scales
    # A uniform distribution of width w has variance w**2 / 12.
    width = np.sqrt(12.0 * np.var(clipped))
    ranks = stats.rankdata(log_scales) - 0.5
    return centre + width * (ranks / len(log_scales) - 0.5)


def estimate_scales(X, y=None, *, image_shape=None, background_size=7, correct_spread=True):
    """Estimate one relative object scale per image, for the tolerance model.

    The scale of an image is the radius of gyration of its object's mass, which is
    proportional to the object's size for a fixed shape. The image is smoothed by a
    Gaussian of 0.85 pixel, its background (a grey opening with a disk of
    ``background_size`` pixels: the lower envelope, which follows smooth backgrounds and
    offsets but not thin bright structures) is subtracted, and what stands above both 3
    noise standard deviations (estimated per image) and a fifth of the image's largest
    residual is the foreground mass. The connected part of it (one-pixel gaps
    bridged) with the largest mass is the object: clutter and noise elsewhere in the
    image do not count, and the estimate does not depend on position or contrast.

    With ``y``, the median log-scale of each class is subtracted (digits, cells or parts
    of different classes differ in shape and size, and only the scale within a class is
    wanted), shrunk towards the median of all classes by the share of its variance that
    the noise of a class median does not explain: with few images per class, the class
    medians are noisy and a full subtraction would add that noise to every image.

    With ``correct_spread``, the log-scales are finally mapped, rank for rank, onto an
    even (log-uniform) grid whose variance is that of the log-scales winsorised
    at 3 robust standard deviations: :class:`ToleranceModel` with its default
    log-uniform density reads only the smallest and the largest scale, and a few
    outlying estimates would otherwise widen that range and inflate the recommended ISR.

    Parameters
    ----------
    X : array-like of shape (n_samples, height, width), (n_samples, channels, height, width) \
or (n_samples, n_features)
        Images, as :class:`ScaleEquivariantClassifier` accepts them; channels are averaged.
        Objects are brighter than their background (invert dark objects). 2-D input
        needs ``image_shape``.
    y : array-like of shape (n_samples,), default=None
        Class labels of any type. When given, the median log-scale of each class is
        (shrunk and) subtracted, which removes the size differences between classes (a
        "1" is narrower than a "0").
    image_shape : tuple of int, default=None
        ``(height, width)`` or ``(height, width, channels)`` of the flattened rows of a
        2-D ``X`` (channels last), as in the classifier.
    background_size : int, default=7
        Diameter, in pixels, of the disk of the grey opening that estimates the
        background: bright structures (strokes, filled parts) narrower than it are
        foreground. Use ``1`` for images whose background is flat (a constant, the
        median pixel, is subtracted), which suits filled objects such as blobs.
    correct_spread : bool, default=True
        Map the log-scales onto an even grid with their outlier-robust variance (ranks
        are kept). ``False`` returns the raw estimates.

    Returns
    -------
    scales : ndarray of shape (n_samples,)
        Positive relative scales (only ratios matter), the median scale being 1. Images without an object
        (blank or constant) get ``NaN`` and a ``UserWarning`` names them; drop them with
        ``scales[np.isfinite(scales)]`` before fitting :class:`ToleranceModel`.

    See Also
    --------
    skscale.ToleranceModel : Fits these scales and recommends an internal scale range.

    Notes
    -----
    Limits: one object per image (the brightest-massed one is measured); objects darker
    than their background are not seen; with the default ``background_size``, filled
    objects wider than 7 pixels keep only their edges (still proportional to their size,
    but pass ``background_size=1`` when the background is flat); an image of pure noise
    is not recognised as empty. ``correct_spread`` assumes the user reads the range of
    the scales (as the log-uniform tolerance model does), not their detailed density.

    Measured on MNIST digits rescaled log-uniformly and placed at random positions on a
    64-pixel canvas over a smooth random background with pixel noise:
    ``benchmarks/results/scale_estimation-cpu.md``.

    Examples
    --------
    >>> import numpy as np
    >>> from skscale import estimate_scales
    >>> rng = np.random.default_rng(0)
    >>> sigma = 2.0 ** rng.uniform(1.0, 2.5, size=40)
    >>> grid = np.arange(48) - 23.5
    >>> images = np.exp(-(grid[:, None] ** 2 + grid[None, :] ** 2) / (2 * sigma[:, None, None] ** 2))
    >>> images += 0.02 * rng.standard_normal(images.shape)
    >>> scales = estimate_scales(images, background_size=1)
    >>> scales.shape
    (40,)
    >>> bool(np.corrcoef(np.log(scales), np.log(sigma))[0, 1] > 0.9)
    True
    """
    images = _as_gray_images(X, image_shape)
    n_samples = len(images)
    if y is not None:
        y = column_or_1d(y)
        if len(y) != n_samples:
            raise ValueError(f"y must have one label per image ({n_samples}), got {len(y)} labels.")
    background_size = Integer(low=1).check(background_size, "background_size")
    correct_spread = Boolean().check(correct_spread, "correct_spread")

    log2_scales = np.log2(_gyration_radii(images, background_size))
    missing = np.flatnonzero(~np.isfinite(log2_scales))
    if len(missing):
        shown = ", ".join(str(i) for i in missing[:10]) + (", ..." if len(missing) > 10 else "")
        warnings.warn(
            f"{len(missing)} of {n_samples} images hold no object (blank or constant) "
            f"and get a NaN scale: images {shown}.",
            UserWarning,
            stacklevel=2,
        )
    valid = np.flatnonzero(np.isfinite(log2_scales))
    if y is not None and len(valid):
        log2_scales[valid] -= _class_offsets(log2_scales[valid], np.unique(y, return_inverse=True)[1][valid])
    if len(valid):
        log2_scales[valid] -= np.median(log2_scales[valid])
    if correct_spread and len(valid) >= 2:
        log2_scales[valid] = _uniform_quantiles(log2_scales[valid], clip=3.0)
    return 2.0**log2_scales

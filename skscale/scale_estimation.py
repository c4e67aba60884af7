"""Relative object scales estimated from the images alone, for :class:`skscale.ToleranceModel`.

The scale of an image is the radius of gyration (root mean square distance from the
centroid) of its object's mass: for objects of one shape it is proportional to their
size, so its logarithm shifts by ``log2(s)`` when an image is magnified by ``s``. The
object is the connected foreground part with the largest mass after a grey-opening
background subtraction, so clutter, noise and smooth backgrounds elsewhere in the image
do not count, and position and contrast do not matter.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import ndimage, stats
from sklearn.utils.validation import column_or_1d

from ._images import as_images
from .utils.validation import Boolean, Integer, Options

__all__ = ["POLARITIES", "estimate_scales"]

_SMOOTH = 0.85
# Foreground: smoothed residual above this many noise standard deviations and above this
# share of the image's largest residual (the latter makes the threshold contrast-invariant).
_NOISE_THRESHOLD = 3.0
_PEAK_FRACTION = 0.2
# Pixels of foreground joined into one object across gaps (broken strokes).
_JOIN = 1
_CHUNK = 64
# An image holds an object only where its largest residual stands this many (smoothed)
# noise standard deviations above the background: the largest residual of pure Gaussian
# noise measured 3.6 to 6.4 on 32- and 64-pixel images, that of cluttered digits 7 to 26.
_OBJECT_SIGNIFICANCE = 7.0
# Pixel values beyond this magnitude are reported (images are standardised anyway).
_EXTREME = 1e6
# An image votes for bright (dark) objects when its pixels reach this many times further
# above (below) the median of its border than below (above) it.
_POLARITY_MARGIN = 1.5
POLARITIES = ("auto", "bright", "dark")


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


def _whole_image_background_size(height, width):
    """Smallest ``background_size`` whose disk covers the whole (reflected) image everywhere.

    With ``mode="reflect"`` an image repeats with period ``2 * height`` and ``2 * width``;
    a disk of radius ``sqrt(2) * max(height, width)`` holds a full period around every
    pixel, so the grey opening of any larger disk is the image's minimum everywhere.
    """
    return 2 * math.ceil(math.sqrt(2.0) * max(height, width)) + 1


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
    # A larger disk gives the same background as this one (the image's minimum), so the
    # disk is never built larger than the image needs (nor its memory allocated).
    whole_image = background_size >= _whole_image_background_size(height, width)
    footprint = None if whole_image or background_size == 1 else _disk(background_size)[None]
    for start in range(0, n_images, _CHUNK):
        chunk = images[start : start + _CHUNK]
        n_chunk = len(chunk)
        smooth = ndimage.gaussian_filter(chunk, _SMOOTH, axes=(1, 2), mode="reflect")
        if whole_image:
            background = smooth.reshape(n_chunk, -1).min(axis=1)[:, None, None]
        elif footprint is not None:
            # A grey opening keeps the lower envelope: structures narrower than the disk go.
            background = ndimage.grey_opening(smooth, footprint=footprint, mode="reflect")
            background = ndimage.gaussian_filter(
                background, background_size / 4.0, axes=(1, 2), mode="reflect"
            )
        else:
            background = np.median(smooth.reshape(n_chunk, -1), axis=1)[:, None, None]
        residual = smooth - background
        noise = _noise_std(chunk) * gain
        peak = residual.reshape(n_chunk, -1).max(axis=1)
        # Images whose largest residual noise alone could explain hold no object.
        empty = ~(peak > _OBJECT_SIGNIFICANCE * noise)
        threshold = np.maximum(_NOISE_THRESHOLD * noise, _PEAK_FRACTION * peak)[:, None, None]
        mass = np.clip(residual - threshold, 0.0, None)
        mass[empty] = 0.0
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


def _as_gray_images(X, image_shape, image_layout="auto"):
    """(n, H, W) float64 images, read as the classifier reads them (channels averaged)."""
    if isinstance(image_shape, str) and image_shape == "row":
        raise ValueError(
            "image_shape='row' reads each row as a 1 x n_features image, in which there is no object "
            "to measure; pass image_shape=(height, width) or (height, width, channels)."
        )
    images, _ = as_images(X, image_shape, image_layout, dtype=np.float64)
    return images.mean(axis=1)


def _standardised(images):
    """Each image mapped affinely onto [0, 1] (the estimate is invariant to contrast and offset).

    Dividing by the largest magnitude first keeps pixels of any finite size from
    overflowing. Pixels beyond ``_EXTREME`` in magnitude are reported.
    """
    n_images = len(images)
    largest = np.abs(images).reshape(n_images, -1).max(axis=1)
    extreme = np.flatnonzero(largest > _EXTREME)
    if len(extreme):
        warnings.warn(
            f"X holds pixel values up to {largest.max():.3g} in magnitude ({len(extreme)} of {n_images} "
            f"images, e.g. image {extreme[0]}): each image is standardised to [0, 1] before the "
            "estimate (which ignores contrast and offset); check that these values are not "
            "corrupt or unscaled data.",
            UserWarning,
            stacklevel=3,
        )
    images = images / np.where(largest > 0, largest, 1.0)[:, None, None]
    low = images.reshape(n_images, -1).min(axis=1)[:, None, None]
    span = images.reshape(n_images, -1).max(axis=1)[:, None, None] - low
    return (images - low) / np.where(span > 0, span, 1.0)


def _polarity_votes(images):
    """+1 where an image looks like a bright object, -1 a dark one, 0 where it is unclear.

    The border of an image is mostly background: an object brighter than it reaches
    further above the border's median (99.5th percentile) than anything reaches below it
    (0.5th percentile), and a dark object the other way round. Reaches within a factor
    ``_POLARITY_MARGIN`` of each other (noise, symmetric clutter) do not vote.
    """
    smooth = ndimage.gaussian_filter(images, _SMOOTH, axes=(1, 2), mode="reflect")
    border = np.concatenate(
        [smooth[:, 0, :], smooth[:, -1, :], smooth[:, 1:-1, 0], smooth[:, 1:-1, -1]], axis=1
    )
    level = np.median(border, axis=1)
    flat = smooth.reshape(len(images), -1)
    above = np.percentile(flat, 99.5, axis=1) - level
    below = level - np.percentile(flat, 0.5, axis=1)
    return np.where(above > _POLARITY_MARGIN * below, 1, np.where(below > _POLARITY_MARGIN * above, -1, 0))


def _resolved_polarity(images, polarity):
    """``"bright"`` or ``"dark"``: ``polarity`` itself, or what most images look like for "auto".

    Warns when the images look the other way round than a given ``polarity``, and when
    ``"auto"`` finds dark objects (the images are then inverted).
    """
    votes = _polarity_votes(images)
    n_dark, n_bright = int((votes < 0).sum()), int((votes > 0).sum())
    # Noise alone makes a few images look dark: a quarter of them at least must.
    looks_dark = n_dark > n_bright and 4 * n_dark >= len(images)
    dark_share = n_dark / len(images)
    if polarity == "auto" and looks_dark:
        warnings.warn(
            f"the objects look darker than their background in {dark_share:.0%} of the images, so "
            "estimate_scales inverted them (polarity='auto'); pass polarity='dark' to say so, or "
            "polarity='bright' to keep them as they are.",
            UserWarning,
            stacklevel=3,
        )
        return "dark"
    if polarity == "bright" and looks_dark:
        warnings.warn(
            f"the objects look darker than their background in {dark_share:.0%} of the images, but "
            "polarity='bright' measures bright objects: the scales follow the background, not the "
            "objects. Pass polarity='dark' (or 'auto') for dark objects.",
            UserWarning,
            stacklevel=3,
        )
    if polarity == "dark" and n_bright > n_dark:
        warnings.warn(
            f"the objects look brighter than their background in {n_bright / len(images):.0%} of the "
            "images, but "
            "polarity='dark' measures dark objects. Pass polarity='bright' (or 'auto') for bright objects.",
            UserWarning,
            stacklevel=3,
        )
    return "bright" if polarity == "auto" else polarity


def _checked_labels(y, n_samples):
    """``y`` as a 1-D array of ``n_samples`` finite labels, or None when no class repeats.

    Labels that are all different (an image index, a file name) say nothing about a
    class's size: they are ignored with a warning, as if ``y`` were None.
    """
    y = column_or_1d(y)
    if len(y) != n_samples:
        raise ValueError(f"y must have one label per image ({n_samples}), got {len(y)} labels.")
    if y.dtype.kind in "fc":
        missing = ~np.isfinite(y)
    elif y.dtype.kind == "O":
        missing = np.array(
            [
                value is None or (isinstance(value, (float, np.floating)) and not np.isfinite(value))
                for value in y
            ],
            dtype=bool,
        )
    else:
        missing = np.zeros(n_samples, dtype=bool)
    if missing.any():
        where = np.flatnonzero(missing)
        raise ValueError(
            f"y holds {len(where)} missing or non-finite labels (NaN, inf or None), e.g. {y[where[0]]} at "
            f"image {where[0]}; give every image its class, or pass y=None."
        )
    if n_samples >= 2 and len(np.unique(y)) == n_samples:
        warnings.warn(
            f"y gives each of the {n_samples} images a label of its own, so no class size can be "
            "estimated; the labels are ignored (as with y=None).",
            UserWarning,
            stacklevel=3,
        )
        return None
    return y


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
    # A class of one image has no spread of its own: it takes the median of the others'.
    if (sizes == 1).any() and (sizes > 1).any():
        spreads[sizes == 1] = np.median(spreads[sizes > 1])
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


def estimate_scales(
    X,
    y=None,
    *,
    image_shape=None,
    background_size=7,
    correct_spread=True,
    polarity="auto",
    image_layout="auto",
):
    """Estimate one relative object scale per image, for the tolerance model.

    The scale of an image is the radius of gyration of its object's mass, which is
    proportional to the object's size for a fixed shape. The image is smoothed by a
    Gaussian of 0.85 pixel, its background (a grey opening with a disk of
    ``background_size`` pixels: the lower envelope, which follows smooth backgrounds and
    offsets but not thin bright structures) is subtracted, and what stands above both 3
    noise standard deviations (estimated per image) and a fifth of the image's largest
    residual is the foreground mass. The connected part of it (one-pixel gaps
    bridged) with the largest mass is the object: clutter and noise elsewhere in the
    image do not count, and the estimate does not depend on position or contrast. An
    image whose largest residual stays below 7 noise standard deviations (blank,
    constant or noise only) holds no object.

    Each image is first mapped affinely onto [0, 1] (which changes no estimate) and,
    for dark objects on a bright background (``polarity``), inverted.

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
    X : array-like of shape (n_samples, height, width), (n_samples, channels, height, width), \
(n_samples, height, width, channels) or (n_samples, n_features)
        Finite pixels (NaN and inf are refused), as :class:`ScaleEquivariantClassifier`
        accepts them (the same reading); channels are averaged. See ``image_layout`` for 4-D
        arrays; 2-D rows are square single-channel images unless ``image_shape`` says
        otherwise.
    y : array-like of shape (n_samples,), default=None
        Class labels of any type (NaN, inf and None are refused). When given, the median
        log-scale of each class is (shrunk and) subtracted, which removes the size
        differences between classes (a "1" is narrower than a "0"). Labels that are all
        different (one per image, such as an index) hold no class and are ignored with a
        ``UserWarning``, as if ``y`` were None.
    image_shape : tuple of int, default=None
        ``(height, width)`` or ``(height, width, channels)`` of the flattened rows of a
        2-D ``X`` (channels last), as in the classifier; for 3-D and 4-D ``X`` it must agree
        with the images read.
    background_size : int, default=7
        Diameter, in pixels, of the disk of the grey opening that estimates the
        background: bright structures (strokes, filled parts) narrower than it are
        foreground. Use ``1`` for images whose background is flat (a constant, the
        median pixel, is subtracted), which suits filled objects such as blobs. A disk
        of ``2 * ceil(sqrt(2) * max(height, width)) + 1`` pixels or more covers the whole
        (reflected) image around every pixel: any such value gives the same background,
        each image's minimum, and is computed without building the disk.
    correct_spread : bool, default=True
        Map the log-scales onto an even grid with their outlier-robust variance (ranks
        are kept). ``False`` returns the raw estimates.
    polarity : {"auto", "bright", "dark"}, default="auto"
        Whether the objects are brighter (``"bright"``) or darker (``"dark"``, the images
        are inverted) than their background. ``"auto"`` compares, in each image, how far
        the pixels reach above and below the median of its border (mostly background) and
        inverts them, with a warning, when more images look dark than bright and at
        least a quarter do. A given
        polarity that most images contradict is kept, with a warning.
    image_layout : {"auto", "channels_first", "channels_last"}, default="auto"
        Where the channels of a 4-D ``X`` are. ``"auto"`` reads ``(n, H, W, C)`` with C in
        {1, 3, 4} as channels-last when axis 1 is not also 1, 3 or 4, and everything else
        as ``(n, C, H, W)``; name the layout for ambiguous shapes such as ``(n, 3, 4, 4)``.

    Returns
    -------
    scales : ndarray of shape (n_samples,)
        Positive relative scales (only ratios matter), the median scale being 1. Images
        without an object (blank, constant or noise only) get ``NaN`` and a
        ``UserWarning`` names them (and says so when they are most of the images); drop
        them with ``scales[np.isfinite(scales)]`` before fitting :class:`ToleranceModel`.

    Raises
    ------
    ValueError
        For NaN or infinite pixels, missing or non-finite labels, and invalid arguments
        (each error names its argument).

    Warns
    -----
    UserWarning
        When images hold no object, when pixels exceed 1e6 in magnitude, when the labels
        are all different, and when the objects look darker than their background
        (see ``polarity``).

    See Also
    --------
    skscale.ToleranceModel : Fits these scales and recommends an internal scale range.

    Notes
    -----
    Limits: one object per image (the one with the largest mass is measured); with the
    default ``background_size``, filled objects wider than 7 pixels keep only their edges
    (still proportional to their size, but pass ``background_size=1`` when the background
    is flat); objects fainter than 7 noise standard deviations are taken for noise.
    ``correct_spread`` assumes the user reads the range of the scales (as the log-uniform
    tolerance model does), not their detailed density.

    Measured on MNIST digits rescaled log-uniformly and placed at random positions on a
    64-pixel canvas over clean, cluttered, bright (dark digits), gradient and noisy
    backgrounds: ``benchmarks/results/scale_estimation-cpu.md``.

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
    background_size = Integer(low=1).check(background_size, "background_size")
    correct_spread = Boolean().check(correct_spread, "correct_spread")
    polarity = Options(POLARITIES).check(polarity, "polarity")
    images = _as_gray_images(X, image_shape, image_layout)
    n_samples = len(images)
    if y is not None:
        y = _checked_labels(y, n_samples)
    images = _standardised(images)
    if _resolved_polarity(images, polarity) == "dark":
        images = 1.0 - images

    log2_scales = np.log2(_gyration_radii(images, background_size))
    missing = np.flatnonzero(~np.isfinite(log2_scales))
    if len(missing):
        shown = ", ".join(str(i) for i in missing[:10]) + (", ..." if len(missing) > 10 else "")
        most = (
            " That is most of the images: check that each holds an object that stands out from "
            "its background and noise (and see polarity)."
            if 2 * len(missing) > n_samples
            else ""
        )
        warnings.warn(
            f"{len(missing)} of {n_samples} images hold no object (blank, constant or noise only) "
            f"and get a NaN scale: images {shown}.{most}",
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

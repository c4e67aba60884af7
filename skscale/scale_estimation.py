"""Relative object scales estimated from the images alone, for :class:`skscale.ToleranceModel`.

The estimate is a scale selection in a Gaussian scale space (Lindeberg's normalised
derivatives). Every image gets a *scale signature*: the energy of the scale-normalised
Laplacian ``sigma**2 * Laplacian(G_sigma * I)`` summed over the image, divided by
``sigma**2``, on a log-spaced grid of ``sigma``. Rescaling an image by ``s`` shifts this
curve by ``log2(s)`` along the ``log2(sigma)`` axis and leaves its shape unchanged, and a
contrast change only adds a constant to its logarithm. The relative scale of an image is
therefore the shift that best aligns its log signature with a template (the mean aligned
signature, refined a few times): a one-dimensional registration that uses
every scale at once instead of the single peak of a naive blob detector.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import fft, ndimage
from sklearn.utils.validation import check_array, column_or_1d

from .utils.validation import Boolean, Integer

__all__ = ["estimate_scales"]

_SCALES_PER_OCTAVE = 8
_MIN_SIGMA = 0.5
# Floor of the signature relative to its maximum before the logarithm (ignores the
# empty far ends of the curve).
_LOG_FLOOR = 1e-2
_ALIGN_ITERATIONS = 6
# Known rescaling (in octaves, up and down) of the calibration copies, and their number.
_CALIBRATION_OCTAVES = 0.5
_N_CALIBRATION = 256
_CHUNK = 32


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


def _subtract_background(images, size):
    """Subtract a median filter of ``size`` pixels: wider structures count as background."""
    # The median is taken on every other pixel (4 times faster); the background is smooth.
    step = 2 if size >= 8 else 1
    out = np.empty_like(images)
    for i, image in enumerate(images):
        background = ndimage.median_filter(image[::step, ::step], size=max(3, size // step), mode="reflect")
        if step > 1:
            background = ndimage.zoom(background, step, order=1, mode="nearest")
            background = background[: image.shape[0], : image.shape[1]]
        out[i] = image - ndimage.gaussian_filter(background, size / 4.0, mode="reflect")
    return out


def _signatures(images, sigmas):
    """Log scale signatures (n, n_sigmas) and whether each image holds an object."""
    n_images, height, width = images.shape
    pad = max(height, width) // 2
    padded_shape = (height + 2 * pad, width + 2 * pad)
    ky = 2.0 * np.pi * fft.fftfreq(padded_shape[0])
    kx = 2.0 * np.pi * fft.rfftfreq(padded_shape[1])
    k2 = ky[:, None] ** 2 + kx[None, :] ** 2
    s2 = sigmas[:, None, None] ** 2
    # Fourier transform of the scale-normalised Laplacian of a Gaussian.
    laplacian = -s2 * k2 * np.exp(-0.5 * s2 * k2)
    energy = np.empty((n_images, len(sigmas)))
    for start in range(0, n_images, _CHUNK):
        chunk = images[start : start + _CHUNK]
        chunk = chunk - chunk.mean(axis=(1, 2), keepdims=True)
        chunk = np.pad(chunk, ((0, 0), (pad, pad), (pad, pad)), mode="symmetric")
        response = fft.irfft2(fft.rfft2(chunk)[:, None] * laplacian[None], s=padded_shape)
        local = response[..., pad : pad + height, pad : pad + width].reshape(len(chunk), len(sigmas), -1) ** 2
        # Background and noise spread over the image; the object's energy stands out.
        floor = np.median(local, axis=2)
        excess = np.clip(local - floor[..., None], 0.0, None).sum(axis=2)
        energy[start : start + len(chunk)] = excess / sigmas**2
    top = energy.max(axis=1)
    spread = np.ptp(images.reshape(n_images, -1), axis=1)
    has_object = (spread > 0) & (top > 1e-20 * spread**2)
    safe_top = np.where(top > 0, top, 1.0)[:, None]
    return np.log(energy / safe_top + _LOG_FLOOR), has_object


def _shift_scores(curves, template, max_shift):
    """Negative mean squared difference of centred curves for each shift, (n, 2 max_shift + 1)."""
    n_curves, length = curves.shape
    scores = np.full((n_curves, 2 * max_shift + 1), -np.inf)
    for k in range(2 * max_shift + 1):
        window = template[k : k + length]
        valid = np.isfinite(window)
        if valid.sum() < length // 2:
            continue
        part = curves[:, valid]
        part = part - part.mean(axis=1, keepdims=True)
        reference = window[valid] - window[valid].mean()
        scores[:, k] = -np.mean((part - reference) ** 2, axis=1)
    return scores


def _best_shifts(curves, template, max_shift):
    """Sub-grid shift of each curve against the template (parabolic peak refinement)."""
    scores = _shift_scores(curves, template, max_shift)
    rows = np.arange(len(curves))
    best = np.clip(scores.argmax(axis=1), 1, 2 * max_shift - 1)
    left, centre, right = scores[rows, best - 1], scores[rows, best], scores[rows, best + 1]
    curvature = left - 2.0 * centre + right
    usable = np.isfinite(curvature) & (curvature < 0)
    offset = np.zeros(len(curves))
    offset[usable] = np.clip(0.5 * (left - right)[usable] / curvature[usable], -1.0, 1.0)
    # The curve at t matches the template at t + best - max_shift: the object is smaller.
    return max_shift - best - offset


def _template(curves, shifts, max_shift):
    """Mean of the curves moved back by their shifts, on a grid extended by max_shift."""
    n_curves, length = curves.shape
    extended = np.arange(length + 2 * max_shift) - max_shift
    total = np.zeros(len(extended))
    count = np.zeros(len(extended))
    for curve, shift in zip(curves, shifts):
        moved = np.interp(extended + shift, np.arange(length), curve, left=np.nan, right=np.nan)
        moved -= np.nanmean(moved)
        valid = np.isfinite(moved)
        total[valid] += moved[valid]
        count[valid] += 1
    enough = count >= max(1.0, 0.3 * n_curves)
    return np.where(enough, total / np.maximum(count, 1), np.nan)


def _align(curves, max_shift):
    """Shifts (grid steps) of the curves relative to their common template, and the template."""
    shifts = np.zeros(len(curves))
    for _ in range(_ALIGN_ITERATIONS):
        template = _template(curves, shifts, max_shift)
        shifts = _best_shifts(curves, template, max_shift)
        shifts -= np.median(shifts)
    return shifts, _template(curves, shifts, max_shift)


def _rescaled(images, factor):
    """Each image magnified by ``factor`` about its centre (linear, edges extended)."""
    height, width = images.shape[1:]
    centre = np.array([(height - 1) / 2.0, (width - 1) / 2.0])
    offset = centre - centre / factor
    return np.stack(
        [ndimage.affine_transform(image, np.full(2, 1.0 / factor), offset, order=1, mode="nearest")
         for image in images]
    )


def estimate_scales(X, y=None, *, image_shape=None, background_size=None, correct_spread=True):
    """Estimate one relative object scale per image, for the tolerance model.

    Each image's *scale signature* (the energy of the scale-normalised Laplacian of
    Gaussian, summed over the image, on a log grid of 8 ``sigma`` per octave) is
    shifted along the ``log2(sigma)`` axis by the logarithm of the object's scale. The
    signatures are aligned with a template (their mean aligned signature) by least
    squares on their logarithms, which ignores contrast and uses every scale at once.
    Before that, a median filter of ``background_size`` pixels is subtracted (smooth
    backgrounds and offsets) and, at each ``sigma``, the median response over the image
    is removed from every pixel's (pixel noise and what is left of the background).
    Position does not matter: the energy is summed over the image.

    The slope of the estimate is then calibrated on copies of up to 256 of the images
    magnified and shrunk by a known ``2**0.5`` (so the estimates are in octaves of true
    size, not compressed by the finite grid), and, with ``correct_spread``, the spread
    of the log-scales is reduced by the estimation noise measured on those copies, so
    that noise does not widen the distribution that :class:`ToleranceModel` fits.

    Parameters
    ----------
    X : array-like of shape (n_samples, height, width), (n_samples, channels, height, width) \
or (n_samples, n_features)
        Images, as :class:`ScaleEquivariantClassifier` accepts them; channels are averaged.
        2-D input needs ``image_shape``.
    y : array-like of shape (n_samples,), default=None
        Class labels of any type. When given, the median log-scale of each class is set
        to 0 (and the spread is corrected per class), which removes the size differences
        between classes (a "1" is narrower than a "0").
    image_shape : tuple of int, default=None
        ``(height, width)`` or ``(height, width, channels)`` of the flattened rows of a
        2-D ``X`` (channels last), as in the classifier.
    background_size : int, default=None
        Side, in pixels, of the median filter that estimates the background: structures
        wider than about half of it count as background. ``None`` means
        ``max(height, width) // 5`` (at least 3). Use ``1`` for images whose background is
        flat.
    correct_spread : bool, default=True
        Shrink the log-scales about their median (per class) by the share of their
        variance explained by estimation noise.

    Returns
    -------
    scales : ndarray of shape (n_samples,)
        Positive relative scales (only ratios matter), the median scale being 1 (1 per
        class when ``y`` is given). Images without an object (blank or constant) get
        ``NaN`` and a ``UserWarning`` names them; drop them with
        ``scales[np.isfinite(scales)]`` before fitting :class:`ToleranceModel`.

    See Also
    --------
    skscale.ToleranceModel : Fits these scales and recommends an internal scale range.

    Notes
    -----
    Limits: filled objects wider than about half of ``background_size`` are taken for
    background (pass a larger ``background_size``, or 1 when the background is flat),
    and an image of pure noise is not recognised as empty.

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
    >>> scales = estimate_scales(images)
    >>> scales.shape
    (40,)
    >>> bool(np.corrcoef(np.log(scales), np.log(sigma))[0, 1] > 0.9)
    True
    """
    images = _as_gray_images(X, image_shape)
    n_samples, height, width = images.shape
    if y is not None:
        y = column_or_1d(y)
        if len(y) != n_samples:
            raise ValueError(f"y must have one label per image ({n_samples}), got {len(y)} labels.")
    if background_size is None:
        background_size = max(3, max(height, width) // 5)
    background_size = Integer(low=1).check(background_size, "background_size")
    correct_spread = Boolean().check(correct_spread, "correct_spread")

    largest = max(2.0 * _MIN_SIGMA, max(height, width) / 2.0)
    sigmas = 2.0 ** np.arange(np.log2(_MIN_SIGMA), np.log2(largest) + 1e-9, 1.0 / _SCALES_PER_OCTAVE)
    max_shift = len(sigmas) // 2

    def prepared(batch):
        return _subtract_background(batch, background_size) if background_size > 1 else batch

    curves, has_object = _signatures(prepared(images), sigmas)
    if not has_object.all():
        missing = np.flatnonzero(~has_object)
        shown = ", ".join(str(i) for i in missing[:10]) + (", ..." if len(missing) > 10 else "")
        warnings.warn(
            f"{len(missing)} of {n_samples} images hold no object (blank or constant) "
            f"and get a NaN scale: images {shown}.",
            UserWarning,
            stacklevel=2,
        )

    groups = np.zeros(n_samples, dtype=np.int64) if y is None else np.unique(y, return_inverse=True)[1]
    # One template for all images: per-class templates from few images are noisier
    # (measured); the classes' size differences are removed afterwards by their medians.
    shifts = np.full(n_samples, np.nan)
    valid = np.flatnonzero(has_object)
    if len(valid):
        shifts[valid], template = _align(curves[valid], max_shift)

    log2_scales = shifts / _SCALES_PER_OCTAVE
    if len(valid) >= 2:
        chosen = valid[np.linspace(0, len(valid) - 1, min(_N_CALIBRATION, len(valid))).round().astype(int)]
        moved = {}
        for sign in (1.0, -1.0):
            copies = _rescaled(images[chosen], 2.0 ** (sign * _CALIBRATION_OCTAVES))
            copy_curves, _ = _signatures(prepared(copies), sigmas)
            moved[sign] = _best_shifts(copy_curves, template, max_shift)
        steps = (moved[1.0] - moved[-1.0]) / _SCALES_PER_OCTAVE
        slope = np.median(steps) / (2.0 * _CALIBRATION_OCTAVES)
        if np.isfinite(slope) and slope > 0.1:
            log2_scales = log2_scales / slope
            steps = steps / slope
        # Each copy's estimate carries its own noise, so the difference has twice its variance.
        noise_var = (1.4826 * np.median(np.abs(steps - np.median(steps)))) ** 2 / 2.0
        if correct_spread:
            for group in np.unique(groups[valid]):
                members = np.flatnonzero((groups == group) & has_object)
                centred = log2_scales[members] - np.median(log2_scales[members])
                variance = np.var(centred)
                if variance > 0:
                    log2_scales[members] = centred * np.sqrt(max(variance - noise_var, 0.0) / variance)
    for group in np.unique(groups[valid]):
        members = np.flatnonzero((groups == group) & has_object)
        log2_scales[members] -= np.median(log2_scales[members])
    return 2.0**log2_scales

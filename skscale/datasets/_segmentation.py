"""Scaled segmentation: several MNIST digits (or Fashion-MNIST items) per canvas, with masks."""

from __future__ import annotations

import math

import numpy as np
from sklearn.utils import Bunch, check_random_state

from ..utils.validation import Integer, Options, Pair, Real
from ._fashion import FASHION_MNIST_CLASSES, load_fashion_mnist
from ._mnist import load_mnist
from ._rescale import rescale_images

__all__ = ["make_scaled_segmentation"]

_SOURCE_SIZE = 28  # side of a source digit / item
_INK_THRESHOLD = 0.5  # a pixel of an object whose rescaled intensity reaches this is in its mask
_DATASET = Options(("mnist", "fashion"))
_SCALE_RANGE = Pair(Real(low=0, closed="neither"), allow_equal=True)
_DISTRIBUTION = Options(("log-uniform", "uniform"))
_N_OBJECTS = Pair(Integer(low=1), allow_equal=True)
_CLUTTER_SIDE = (5, 10)  # sides (pixels, before rescaling) of the clutter fragments


def _source_images(dataset, source):
    if dataset == "mnist":
        return load_mnist(source=source or "auto", return_X_y=True)
    return load_fashion_mnist(source=source or "debian", return_X_y=True)


def _draw_scales(distribution, scale_range, size, rng):
    low, high = scale_range
    if isinstance(distribution, str):
        distribution = _DISTRIBUTION.check(distribution, "scale_distribution")
        if distribution == "uniform":
            return rng.uniform(low, high, size)
        return np.exp(rng.uniform(math.log(low), math.log(high), size))
    if not hasattr(distribution, "rvs"):
        raise ValueError(
            "scale_distribution must be 'log-uniform', 'uniform' or a distribution with an rvs method "
            f"(e.g. scipy.stats.lognorm(0.3)), got {distribution!r}."
        )
    # Draws outside scale_range are redrawn (a truncated distribution).
    scales = np.empty(0)
    for _ in range(100):
        drawn = np.asarray(distribution.rvs(size=size, random_state=rng), dtype=np.float64).ravel()
        scales = np.concatenate([scales, drawn[(drawn >= low) & (drawn <= high)]])
        if len(scales) >= size:
            return scales[:size]
    raise ValueError(f"scale_distribution rarely draws inside scale_range={scale_range!r}.")


def _paste(canvas, patch, top, left):
    """The window of ``canvas`` that ``patch`` covers at ``(top, left)``, and the patch's part in it."""
    height, width = canvas.shape
    rows = slice(max(top, 0), min(top + patch.shape[0], height))
    columns = slice(max(left, 0), min(left + patch.shape[1], width))
    part = patch[rows.start - top : rows.stop - top, columns.start - left : columns.stop - left]
    return (rows, columns), part


def make_scaled_segmentation(
    n_samples=200,
    *,
    canvas_size=64,
    n_objects=(1, 3),
    n_classes=3,
    scale_range=(0.5, 1.5),
    scale_distribution="log-uniform",
    dataset="mnist",
    source=None,
    clutter=0,
    noise=0.0,
    random_state=None,
):
    """Canvases with several rescaled objects each, and their per-pixel class masks.

    Every canvas holds a random number of objects (MNIST digits, or Fashion-MNIST items)
    of the first ``n_classes`` source classes, each rescaled about its centre (bicubic,
    :func:`rescale_images`) by its own factor drawn from ``scale_distribution`` on
    ``scale_range`` and placed at a random position where its 28 x 28 frame, rescaled,
    lies inside the canvas. Objects may overlap; a later one covers an earlier one (the
    image keeps the brighter pixel). The mask labels each pixel where an object's
    rescaled intensity reaches 0.5 with its class ``1 .. n_classes``, all others 0
    (background). Clutter fragments (crops of other source images, rescaled alike) and
    Gaussian pixel noise are optional; they are background in the mask. Works offline:
    MNIST from :func:`load_mnist` (``"auto"``: IDX files or the bundled digits),
    Fashion-MNIST from Debian's ``dataset-fashion-mnist`` package.

    Parameters
    ----------
    n_samples : int, default=200
        Canvases.
    canvas_size : int, default=64
        Side of the square canvases, at least ``ceil(28 * scale_range[1])``.
    n_objects : int or (int, int), default=(1, 3)
        Objects per canvas: a number, or the smallest and largest, drawn uniformly.
    n_classes : int, default=3
        Object classes (source labels ``0 .. n_classes - 1``), at most 10.
    scale_range : (float, float), default=(0.5, 1.5)
        Smallest and largest rescaling factor of an object (relative to its 28-pixel source).
    scale_distribution : {"log-uniform", "uniform"} or distribution, default="log-uniform"
        How factors are drawn on ``scale_range``; an object with an ``rvs(size,
        random_state)`` method (a frozen :mod:`scipy.stats` distribution) is truncated
        to ``scale_range``.
    dataset : {"mnist", "fashion"}, default="mnist"
    source : str, optional
        The loader's ``source``; None: ``"auto"`` for MNIST, ``"debian"`` for Fashion-MNIST
        (neither touches the network).
    clutter : int, default=0
        Clutter fragments per canvas.
    noise : float, default=0.0
        Standard deviation of Gaussian noise added to the images (clipped to [0, 1]).
    random_state : int, RandomState instance or None, default=None

    Returns
    -------
    data : sklearn.utils.Bunch
        - ``X``: (n_samples, canvas_size, canvas_size) float32 images in [0, 1].
        - ``y``: (n_samples, canvas_size, canvas_size) int64 masks, 0 background, 1 ..
          ``n_classes`` objects.
        - ``scales``: (n_samples, max objects) float64 factor of every object, NaN where
          a canvas has fewer.
        - ``object_labels``: (n_samples, max objects) int64 mask label of every object, 0
          where a canvas has fewer.
        - ``instances``: (n_samples, canvas_size, canvas_size) int16: ``j + 1`` on the
          visible mask pixels of object ``j``, 0 elsewhere.
        - ``target_names``: names of the mask labels 0 .. n_classes; ``DESCR``.

    Examples
    --------
    >>> from skscale.datasets import make_scaled_segmentation
    >>> data = make_scaled_segmentation(4, canvas_size=48, random_state=0)
    >>> data.X.shape, data.y.shape, sorted(set(data.y.ravel().tolist())) <= [0, 1, 2, 3]
    ((4, 48, 48), (4, 48, 48), True)
    """
    n_samples = Integer(low=1).check(n_samples, "n_samples")
    canvas_size = Integer(low=1).check(canvas_size, "canvas_size")
    if isinstance(n_objects, (int, np.integer)) and not isinstance(n_objects, bool):
        n_objects = (n_objects, n_objects)
    low_objects, high_objects = _N_OBJECTS.check(n_objects, "n_objects")
    n_classes = Integer(low=1, high=10).check(n_classes, "n_classes")
    scale_range = _SCALE_RANGE.check(scale_range, "scale_range")
    dataset = _DATASET.check(dataset, "dataset")
    clutter = Integer(low=0).check(clutter, "clutter")
    noise = Real(low=0).check(noise, "noise")
    patch_size = math.ceil(_SOURCE_SIZE * scale_range[1])
    if patch_size > canvas_size:
        raise ValueError(
            f"canvas_size={canvas_size} is too small for objects rescaled by up to {scale_range[1]:g}: "
            f"they span {patch_size} pixels; pass canvas_size >= {patch_size} or a smaller scale_range."
        )
    rng = check_random_state(random_state)
    images, labels = _source_images(dataset, source)
    object_pool = np.flatnonzero(labels < n_classes)

    counts = rng.randint(low_objects, high_objects + 1, n_samples)
    n_total = int(counts.sum())
    scales = _draw_scales(scale_distribution, scale_range, n_total, rng)
    chosen = rng.choice(object_pool, n_total)
    patches = rescale_images(images[chosen], scales, output_size=patch_size)
    # Centres where the rescaled 28-pixel frame lies inside the canvas.
    half_frames = _SOURCE_SIZE * scales / 2
    centres = rng.uniform(half_frames[:, None], canvas_size - half_frames[:, None], (n_total, 2))

    X = np.zeros((n_samples, canvas_size, canvas_size), dtype=np.float32)
    y = np.zeros(X.shape, dtype=np.int64)
    instances = np.zeros(X.shape, dtype=np.int16)
    max_objects = int(counts.max())
    object_scales = np.full((n_samples, max_objects), np.nan)
    object_labels = np.zeros((n_samples, max_objects), dtype=np.int64)
    first_object = np.concatenate([[0], np.cumsum(counts)[:-1]])

    if clutter:
        fragment_sources = rescale_images(
            images[rng.randint(len(images), size=n_samples * clutter)],
            _draw_scales(scale_distribution, scale_range, n_samples * clutter, rng),
            output_size=patch_size,
        )

    for index in range(n_samples):
        for fragment in range(clutter):
            side = rng.randint(_CLUTTER_SIDE[0], _CLUTTER_SIDE[1] + 1)
            row, column = rng.randint(0, patch_size - side + 1, 2)
            piece = fragment_sources[index * clutter + fragment, row : row + side, column : column + side]
            top, left = rng.randint(-side // 2, canvas_size - side // 2, 2)
            window, part = _paste(X[index], piece, top, left)
            np.maximum(X[index][window], part, out=X[index][window])
        for position in range(counts[index]):
            number = first_object[index] + position
            patch = patches[number]
            top, left = (np.round(centres[number] - patch_size / 2)).astype(int)
            window, part = _paste(X[index], patch, top, left)
            np.maximum(X[index][window], part, out=X[index][window])
            ink = part >= _INK_THRESHOLD
            label = int(labels[chosen[number]]) + 1
            y[index][window][ink] = label
            instances[index][window][ink] = position + 1
            object_scales[index, position] = scales[number]
            object_labels[index, position] = label
    if noise:
        X = np.clip(X + rng.normal(0.0, noise, X.shape).astype(np.float32), 0.0, 1.0)

    names = FASHION_MNIST_CLASSES if dataset == "fashion" else tuple(str(digit) for digit in range(10))
    descr = (
        f"Scaled segmentation of {'Fashion-MNIST' if dataset == 'fashion' else 'MNIST'}: {n_samples} "
        f"canvases of {canvas_size} x {canvas_size} pixels with {low_objects} to {high_objects} objects "
        f"of {n_classes} classes each, rescaled by factors in [{scale_range[0]:g}, {scale_range[1]:g}] "
        f"({scale_distribution if isinstance(scale_distribution, str) else 'given distribution'}), "
        f"{clutter} clutter fragments, noise {noise:g}."
    )
    return Bunch(
        X=X,
        y=y,
        scales=object_scales,
        object_labels=object_labels,
        instances=instances,
        target_names=np.asarray(["background", *names[:n_classes]]),
        DESCR=descr,
    )

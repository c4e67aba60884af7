"""Metrics for scale-equivariant models."""

from __future__ import annotations

import numbers

import numpy as np
import torch
from sklearn.utils.validation import check_consistent_length, check_is_fitted, column_or_1d

from .rescaling import rescale_about_centre
from .utils.validation import Integer, Options, Real

__all__ = [
    "error_per_scale",
    "intersection_over_union",
    "mean_intersection_over_union",
    "rescale",
    "scale_equivariance_error",
]

_MODE = Options(("bicubic", "bilinear"))


def rescale(images, factor, mode="bicubic"):
    """Rescale the spatial axes of a batch by ``factor`` about the image centre.

    This is the operator ``L_s`` of Eq. 1, sampled on the pixel grid: the whole image is
    resized to ``round(H * factor) x round(W * factor)`` pixels by
    :func:`~skscale.rescaling.rescale_about_centre`, with the edge pixels repeated beyond
    the border (``padding="border"``) and, when shrinking, box-filter antialiasing.

    Parameters
    ----------
    images : tensor of shape (B, C, H, W) or (B, C, S, H, W)
        A scale axis, if present, is carried along unchanged.
    factor : float
        Positive rescaling factor; ``2.0`` doubles height and width.
    mode : {"bicubic", "bilinear"}, default="bicubic"
        Interpolation (``align_corners=False``: pixel centres stay pixel centres).

    Returns
    -------
    rescaled : tensor of shape (..., round(H * factor), round(W * factor))
    """
    factor = Real(low=0, closed="neither").check(factor, "factor")
    mode = _MODE.check(mode, "mode")
    if images.dim() not in (4, 5):
        raise ValueError(
            f"images must be 4-D (B, C, H, W) or 5-D (B, C, S, H, W), got {tuple(images.shape)}."
        )
    leading = images.shape[:-2]
    flat = images.reshape(leading[0], -1, *images.shape[-2:])
    height, width = images.shape[-2:]
    size = (round(height * factor), round(width * factor))
    # The whole image is resized to the rounded size: each axis by its own exact ratio.
    ratios = [[size[0] / height, size[1] / width]]
    out = rescale_about_centre(
        flat, ratios, output_size=size, interpolation=mode, padding="border", antialias=factor < 1
    )
    return out.reshape(*leading, *size)


def scale_equivariance_error(module, images, factor=2.0, scale_shift=0, *, crop=0.125, mode="bicubic"):
    """Normalised L2 error of Eq. 1: ``||M(L_s f) - L_s M(f)|| / ||L_s M(f)||``.

    For a module whose output has a scale axis (B, C, S, H, W), rescaling the input by
    ``factor`` should shift the responses by ``scale_shift`` positions along that axis
    (one position when consecutive internal scales differ by ``factor``). The error
    compares ``M(L_s f)`` at scales ``i + scale_shift`` with ``L_s M(f)`` at scales ``i``,
    on the positions that both hold. For a (B, C, H, W) output (an invariant or purely
    translation-equivariant module) ``scale_shift`` must be 0.

    Parameters
    ----------
    module : callable
        Maps a (B, C, H, W) batch to (B, C', H, W) or (B, C', S, H, W), with "same"-size
        output (stride 1). Called under ``torch.no_grad()``, in its current train/eval mode.
    images : tensor of shape (B, C, H, W)
        Smooth test images (e.g. band-limited noise); sharp images make the sampled
        rescaling itself inexact.
    factor : float, default=2.0
        Rescaling factor ``s``.
    scale_shift : int, default=0
        Offset along the scale axis that corresponds to ``factor``.
    crop : float in [0, 0.5), default=0.125
        Fraction of the height and width cut from each border before comparing, to keep
        zero-padding effects out of the measurement.
    mode : {"bicubic", "bilinear"}, default="bicubic"
        Interpolation of ``L_s``.

    Returns
    -------
    error : float
        0 for an exactly equivariant module.

    Examples
    --------
    >>> import torch
    >>> from skscale.nn import ScaleConvT2H
    >>> layer = ScaleConvT2H(1, 4, [1.0, 2.0])
    >>> images = torch.nn.functional.avg_pool2d(torch.randn(2, 1, 64, 64), 9, 1, 4)
    >>> scale_equivariance_error(layer, images, factor=2.0, scale_shift=1) < 0.1
    True
    """
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a tensor of shape (B, C, H, W), got {shape}.")
    crop = Real(0, 0.5, closed="left").check(crop, "crop")
    scale_shift = Integer().check(scale_shift, "scale_shift")
    with torch.no_grad():
        transformed_first = module(rescale(images, factor, mode))
        transformed_last = rescale(module(images), factor, mode)
    if transformed_first.shape != transformed_last.shape:
        raise ValueError(
            "module must keep the spatial size (stride 1, 'same' padding): got "
            f"{tuple(transformed_first.shape)} and {tuple(transformed_last.shape)}."
        )
    if transformed_first.dim() == 5:
        n_scales = transformed_first.shape[2]
        if abs(scale_shift) >= n_scales:
            raise ValueError(
                f"|scale_shift| must be smaller than the {n_scales} output scales, got {scale_shift}."
            )
        if scale_shift >= 0:
            transformed_first = transformed_first[:, :, scale_shift:]
            transformed_last = transformed_last[:, :, : n_scales - scale_shift]
        else:
            transformed_first = transformed_first[:, :, : n_scales + scale_shift]
            transformed_last = transformed_last[:, :, -scale_shift:]
    elif scale_shift != 0:
        raise ValueError(f"scale_shift must be 0 for an output without a scale axis, got {scale_shift}.")
    height, width = transformed_first.shape[-2:]
    top, left = int(height * crop), int(width * crop)
    window = (..., slice(top, height - top), slice(left, width - left))
    difference = transformed_first[window] - transformed_last[window]
    reference = transformed_last[window]
    return float(torch.linalg.vector_norm(difference) / torch.linalg.vector_norm(reference))


def error_per_scale(estimator, X, y, scales, bins=10):
    """Classification error of a fitted classifier per data scale (paper Fig. 4).

    Parameters
    ----------
    estimator : fitted classifier
        Any object with ``predict(X)``, e.g. a
        :class:`~skscale.ScaleEquivariantClassifier` or a scikit-learn classifier.
    X : array-like or dataset
        Samples, in the form ``estimator.predict`` accepts.
    y : array-like of shape (n_samples,)
        True labels.
    scales : array-like of shape (n_samples,)
        Positive data scale of every sample, e.g. ``scales_test`` of
        :func:`~skscale.datasets.make_mnist_scale` or the ``scales`` of a
        :class:`~skscale.datasets.DynamicScaleMNIST`.
    bins : int, array-like of float or "unique", default=10
        - int: that many bins with edges spaced evenly in ``log(scale)`` (scales act
          multiplicatively) from the smallest to the largest scale.
        - array-like: increasing bin edges; the last bin includes its right edge and
          samples outside the edges are left out.
        - ``"unique"``: one bin per distinct scale, for data rendered at the scales of
          a grid (:meth:`DynamicScaleMNIST.at_scales
          <skscale.datasets.DynamicScaleMNIST.at_scales>`).

    Returns
    -------
    bin_scales : ndarray of shape (n_bins,)
        Scale of each non-empty bin: the geometric centre of its edges, or the distinct
        scale for ``bins="unique"``.
    errors : ndarray of shape (n_bins,)
        Fraction of misclassified samples in each bin, in [0, 1].
    counts : ndarray of shape (n_bins,)
        Number of samples in each bin.

    Empty bins are left out, as in :func:`sklearn.calibration.calibration_curve`.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.dummy import DummyClassifier
    >>> X, y = np.zeros((6, 1)), np.array([0, 0, 0, 1, 1, 0])
    >>> scales = np.array([1.0, 1.0, 2.0, 2.0, 4.0, 4.0])
    >>> clf = DummyClassifier(strategy="constant", constant=0).fit(X, y)
    >>> bin_scales, errors, counts = error_per_scale(clf, X, y, scales, bins="unique")
    >>> bin_scales.tolist(), errors.tolist(), counts.tolist()
    ([1.0, 2.0, 4.0], [0.0, 0.5, 0.5], [2, 2, 2])
    """
    y = column_or_1d(y)
    scales = column_or_1d(scales).astype(np.float64)
    check_consistent_length(X, y, scales)
    if not (np.isfinite(scales).all() and (scales > 0).all()):
        raise ValueError("scales must be positive and finite.")
    if not len(y):
        raise ValueError("error_per_scale needs at least one sample.")
    check_is_fitted(estimator)
    wrong = (np.asarray(estimator.predict(X)).reshape(len(y)) != y).astype(np.float64)

    if isinstance(bins, str):
        if bins != "unique":
            raise ValueError(f"bins must be an int, an array of edges or 'unique', got {bins!r}.")
        bin_scales, index = np.unique(scales, return_inverse=True)
        counts = np.bincount(index)
        return bin_scales, np.bincount(index, weights=wrong) / counts, counts

    if isinstance(bins, numbers.Integral) and not isinstance(bins, bool):
        bins = Integer(low=1).check(bins, "bins")
        low, high = scales.min(), scales.max()
        if low == high:
            return np.array([low]), np.array([wrong.mean()]), np.array([len(y)])
        edges = np.geomspace(low, high, int(bins) + 1)
    else:
        edges = np.asarray(bins, dtype=np.float64)
        if edges.ndim != 1 or len(edges) < 2 or not np.all(np.diff(edges) > 0) or not (edges > 0).all():
            raise ValueError(
                f"bins as edges must be a 1-D increasing array of >= 2 positive values, got {bins!r}."
            )
    n_bins = len(edges) - 1
    index = np.searchsorted(edges, scales, side="right") - 1
    index[scales == edges[-1]] = n_bins - 1  # the last bin is closed on the right
    inside = (index >= 0) & (index < n_bins)
    counts = np.bincount(index[inside], minlength=n_bins)
    n_wrong = np.bincount(index[inside], weights=wrong[inside], minlength=n_bins)
    keep = counts > 0
    centres = np.sqrt(edges[:-1] * edges[1:])
    return centres[keep], n_wrong[keep] / counts[keep], counts[keep]


def ignored_pixels(masks, ignore_label):
    """Boolean array: where ``masks`` holds ``ignore_label`` (all False for None or another type)."""
    masks = np.asarray(masks)
    if ignore_label is None:
        return np.zeros(masks.shape, dtype=bool)
    equal = np.asarray(masks == ignore_label)
    return equal if equal.shape == masks.shape else np.zeros(masks.shape, dtype=bool)


def intersection_over_union(y_true, y_pred, *, ignore_label=None):
    """Intersection over union of every class present in ``y_true`` or ``y_pred``.

    Pixels where ``y_true`` is ``ignore_label`` are left out of both masks. For a class
    ``c``, ``IoU_c = |T_c & P_c| / |T_c | P_c|`` with ``T_c`` (``P_c``) the pixels that
    ``y_true`` (``y_pred``) assigns to it, counted over all images together.

    Parameters
    ----------
    y_true, y_pred : array-like of the same shape, e.g. (n_images, height, width)
        Label masks of any type.
    ignore_label : object, optional
        Label of the pixels not to score (255 in Cityscapes); None scores every pixel.

    Returns
    -------
    labels : ndarray of shape (n_labels,)
        The sorted labels present in the scored pixels of ``y_true`` or ``y_pred``.
    ious : ndarray of shape (n_labels,)
        IoU of each, in [0, 1].

    Raises
    ------
    ValueError
        For masks of different shapes, or when every pixel is ignored.

    Examples
    --------
    >>> labels, ious = intersection_over_union([[0, 0, 1, 1]], [[0, 1, 1, 1]])
    >>> labels.tolist(), ious.tolist()
    ([0, 1], [0.5, 0.6666666666666666])
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"y_true and y_pred must have the same shape, got {y_true.shape} and {y_pred.shape}."
        )
    scored = ~ignored_pixels(y_true, ignore_label)
    true, predicted = y_true[scored], y_pred[scored]
    if not true.size:
        raise ValueError(f"every pixel of y_true is ignore_label={ignore_label!r}: nothing to score.")
    labels = np.union1d(true, predicted)
    n_labels = len(labels)
    pairs = np.searchsorted(labels, true) * n_labels + np.searchsorted(labels, predicted)
    confusion = np.bincount(pairs, minlength=n_labels * n_labels).reshape(n_labels, n_labels)
    intersection = np.diag(confusion).astype(np.float64)
    union = confusion.sum(axis=0) + confusion.sum(axis=1) - intersection
    return labels, intersection / union


def mean_intersection_over_union(y_true, y_pred, *, ignore_label=None):
    """Mean of :func:`intersection_over_union` over the classes present in either mask.

    The score of :class:`~skscale.ScaleEquivariantSegmenter`. A class that neither mask
    holds does not count (it has no union).

    Examples
    --------
    >>> mean_intersection_over_union([[0, 0, 1, 255]], [[0, 1, 1, 1]], ignore_label=255)
    0.5
    """
    return float(intersection_over_union(y_true, y_pred, ignore_label=ignore_label)[1].mean())

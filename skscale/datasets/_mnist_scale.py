"""MNIST-Scale (Kanazawa et al., 2014; SESN protocol): rescaled 28x28 digits."""

from __future__ import annotations

import numbers
import textwrap
import warnings

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from sklearn.utils import Bunch, check_random_state

from ..rescaling import rescale_about_centre
from ..utils.validation import Boolean, Integer, Options, Pair, Real
from ._fashion import load_fashion_mnist
from ._idx import N_CLASSES
from ._mnist import load_mnist

__all__ = ["DatasetSizeWarning", "make_mnist_scale"]

_SPLITS = ("train", "val", "test")
_LOADERS = {"mnist": load_mnist, "fashion": load_fashion_mnist}
_NAMES = {"mnist": "MNIST", "fashion": "Fashion-MNIST"}
_DATASET = Options(tuple(_LOADERS))
_SPLIT_SIZE = Integer(low=N_CLASSES)  # a stratified split needs one image per class
_SCALE_RANGE = Pair(Real(low=0, closed="neither"), allow_equal=True)
_EXTRA_SCALING = Real(low=0, closed="neither", allow_none=True)


class DatasetSizeWarning(UserWarning):
    """Fewer samples were available than requested, so the dataset is smaller.

    Raised by :func:`make_mnist_scale` with the bundled 5,000 digits, whose split sizes
    are scaled down proportionally from the requested ones.
    """


_DESCR_HEADER = "MNIST-Scale\n-----------\n\n"
_DESCR_PROTOCOL = (
    "Images of {name} (source: {source}) rescaled about their centre by a factor drawn "
    "uniformly from [{low:g}, {high:g}] per image, with bicubic interpolation{antialias}, and "
    "padded back to 28x28 pixels, following the protocol of SESN (Sosnovik et al., 2020) "
    "used in Table 5 of Basting et al. (2024). All available images are pooled and split "
    "with stratification into {n_train} training, {n_val} validation and {n_test} test "
    "images; random_state={random_state} selects the realisation (split and scales)."
)
_DESCR_KEYS = (
    "Keys: X_<split> (n, 28, 28) float32 images in [0, 1], y_<split> int64 labels and "
    "scales_<split> float64 scale factor of each image, for split in train, val, test."
)


def _split_sizes(requested, n_available, n_classes=N_CLASSES):
    """Scale the requested split sizes down proportionally to ``n_available``.

    Every non-empty split keeps at least ``n_classes`` images, which the stratified
    split needs: when the plain proportional shrink would leave a split smaller, each
    non-empty split gets ``n_classes`` images plus its proportional share of the rest.
    """
    total = sum(requested)
    if total <= n_available:
        return requested
    sizes = tuple(int(size * n_available / total) for size in requested)
    if all(size >= n_classes for size, wanted in zip(sizes, requested) if wanted):
        return sizes
    reserved = n_classes * sum(1 for size in requested if size)
    if n_available < reserved:
        raise ValueError(
            f"The source holds {n_available} images, too few for {reserved // n_classes} stratified "
            f"splits of at least {n_classes} images (one per class) each."
        )
    share = (n_available - reserved) / (total - reserved)
    return tuple(n_classes + int((size - n_classes) * share) if size else 0 for size in requested)


def make_mnist_scale(
    *,
    n_train=10000,
    n_val=2000,
    n_test=50000,
    scale_range=(0.3, 1.0),
    extra_scaling=None,
    antialias=False,
    random_state=0,
    source="auto",
    data_home=None,
    dataset="mnist",
):
    """Generate one realisation of MNIST-Scale (SESN protocol, paper Table 5).

    All digits of the source are pooled, split with stratification into
    train/validation/test, and each image is rescaled about its centre by a factor
    drawn uniformly from ``scale_range`` (bicubic interpolation, see
    :func:`rescale_images`) and padded back to 28x28. The scale of every image is kept,
    for :class:`~skscale.ToleranceModel` and per-scale evaluation
    (:func:`skscale.metrics.error_per_scale`).

    Parameters
    ----------
    n_train, n_val, n_test : int, default=10000, 2000, 50000
        Split sizes of the paper (the full MNIST pool holds 70,000 digits). When the
        source holds fewer digits than requested (the bundled 5,000), all three are
        scaled down proportionally, a :class:`DatasetSizeWarning` is issued and
        ``DESCR`` says so; every non-empty split keeps at least 10 images (one per
        class, as the stratified split needs). ``n_val`` may be 0; other sizes must be
        at least 10.
    scale_range : (float, float), default=(0.3, 1.0)
        Bounds ``0 < low <= high`` of the uniform distribution of scale factors.
    extra_scaling : float, default=None
        The "+" protocol of SESN: each *training* image is rescaled by a further factor
        drawn uniformly from ``[e, 1/e]`` (for ``e = extra_scaling``, or its inverse when
        it is above 1; ``0.5`` gives SESN's ``scale=(0.5, 2)``). Both factors are applied
        in a single resampling and ``scales_train`` records their product; digits grown
        beyond the 28x28 frame are cropped. This draws one fixed augmentation per
        image; for fresh draws every epoch, apply :func:`rescale_images` in a
        training transform instead. ``None`` disables it.
    antialias : bool, default=False
        Box-filter antialiasing when shrinking (see :func:`rescale_images`). ``False``
        matches SESN's data, which was resampled without it.
    random_state : int, RandomState instance or None, default=0
        Realisation: controls the split and the scale factors. The paper averages over
        six realisations (SESN used seeds 0 to 5).
    source : str, default="auto"
        Where the images come from: for MNIST ``"auto"``, ``"idx"``, ``"openml"`` or
        ``"bundled"`` (see :func:`load_mnist`); for Fashion-MNIST ``"auto"``,
        ``"debian"``, ``"idx"`` or ``"openml"`` (see :func:`load_fashion_mnist`).
    data_home : str or path-like, default=None
        See :func:`get_data_home`.
    dataset : {"mnist", "fashion"}, default="mnist"
        The images rescaled: MNIST digits or Fashion-MNIST articles. Fashion-MNIST's
        70,000 images give the full 10,000 / 2,000 / 50,000 protocol offline once
        Debian's ``dataset-fashion-mnist`` package is installed.

    Returns
    -------
    dataset : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the attributes

        X_train, X_val, X_test : ndarray of shape (n, 28, 28), dtype float32
            Rescaled images with values in [0, 1].
        y_train, y_val, y_test : ndarray of shape (n,), dtype int64
            Digit labels.
        scales_train, scales_val, scales_test : ndarray of shape (n,), dtype float64
            Scale factor of every image (relative to the original MNIST digit).
        source : str
            The source used.
        dataset : str
            ``"mnist"`` or ``"fashion"``.
        target_names : ndarray of shape (10,)
            The name of each class (the digits, or Fashion-MNIST's article names).
        reduced : bool
            Whether the split sizes were scaled down.
        DESCR : str
            Description of the realisation.

    Warns
    -----
    DatasetSizeWarning
        If the source holds fewer digits than ``n_train + n_val + n_test``.

    Examples
    --------
    >>> import warnings
    >>> from skscale.datasets import make_mnist_scale
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     data = make_mnist_scale(n_train=500, n_val=100, n_test=1000, source="bundled")
    >>> data.X_train.shape, data.y_val.shape, bool(data.scales_test.max() <= 1.0)
    ((500, 28, 28), (100,), True)
    """
    dataset = _DATASET.check(dataset, "dataset")
    n_val = Integer(low=0).check(n_val, "n_val")
    if n_val:
        n_val = _SPLIT_SIZE.check(n_val, "n_val")
    requested = (_SPLIT_SIZE.check(n_train, "n_train"), n_val, _SPLIT_SIZE.check(n_test, "n_test"))
    low, high = _SCALE_RANGE.check(scale_range, "scale_range")
    extra_scaling = _EXTRA_SCALING.check(extra_scaling, "extra_scaling")
    extra_range = None
    if extra_scaling is not None:
        extra_range = (min(extra_scaling, 1 / extra_scaling), max(extra_scaling, 1 / extra_scaling))
    antialias = Boolean().check(antialias, "antialias")
    rng = check_random_state(random_state)

    mnist = _LOADERS[dataset](source=source, data_home=data_home)
    images, labels = mnist.data, mnist.target
    sizes = _split_sizes(requested, len(labels))
    reduced = sizes != requested
    reduced_note = ""
    if reduced:
        reduced_note = (
            f"Source {mnist.source!r} holds only {len(labels)} digits, fewer than the "
            f"{sum(requested)} requested ({'/'.join(map(str, requested))}), so the "
            f"train/val/test sizes were scaled down proportionally to "
            f"{'/'.join(map(str, sizes))}. Results are not comparable with the paper's; "
            "see load_mnist for the full MNIST, or use dataset='fashion'."
        )
        warnings.warn(reduced_note, DatasetSizeWarning, stacklevel=2)
    n_train, n_val, n_test = sizes

    # Stratified split as in SESN: first (train + val) against test, then train against val.
    pool = np.arange(len(labels))
    train_val, test = train_test_split(
        pool, train_size=n_train + n_val, test_size=n_test, stratify=labels, random_state=rng
    )
    if n_val:
        train, val = train_test_split(
            train_val, train_size=n_train, test_size=n_val, stratify=labels[train_val], random_state=rng
        )
    else:
        train, val = train_val, train_val[:0]
    indices = {"train": train, "val": val, "test": test}
    scales = {split: rng.uniform(low, high, size=len(indices[split])) for split in _SPLITS}
    if extra_range is not None:
        scales["train"] = scales["train"] * rng.uniform(*extra_range, size=n_train)

    all_indices = np.concatenate([indices[split] for split in _SPLITS])
    all_scales = np.concatenate([scales[split] for split in _SPLITS])
    with torch.no_grad():
        rescaled = rescale_about_centre(
            torch.from_numpy(images[all_indices]),
            all_scales,
            output_size=images.shape[1:],
            antialias=antialias,
            clip=(0.0, 1.0),
        )
    rescaled = rescaled.numpy()

    result = Bunch(source=mnist.source, dataset=dataset, reduced=reduced, target_names=mnist.target_names)
    start = 0
    for split in _SPLITS:
        stop = start + len(indices[split])
        result[f"X_{split}"] = rescaled[start:stop]
        result[f"y_{split}"] = labels[indices[split]]
        result[f"scales_{split}"] = scales[split]
        start = stop
    extra_note = ""
    if extra_range is not None:
        extra_note = (
            f"Training images were rescaled once more by a factor uniform in "
            f"[{extra_range[0]:g}, {extra_range[1]:g}] (SESN's '+' protocol, one fixed draw "
            "per image); scales_train holds the product of both factors."
        )
    protocol = _DESCR_PROTOCOL.format(
        name=_NAMES[dataset],
        source=mnist.source,
        low=low,
        high=high,
        antialias=" and box-filter antialiasing" if antialias else "",
        n_train=n_train,
        n_val=n_val,
        n_test=n_test,
        random_state=repr(random_state)
        if isinstance(random_state, (numbers.Integral, type(None)))
        else "(instance)",
    )
    paragraphs = [protocol, extra_note, reduced_note, _DESCR_KEYS]
    result["DESCR"] = (
        _DESCR_HEADER + "\n\n".join(textwrap.fill(text, 88) for text in paragraphs if text) + "\n"
    )
    return result

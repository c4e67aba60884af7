"""One realisation of Dynamic Scale MNIST as train / test (/ grid) sets."""

from __future__ import annotations

import numpy as np
from sklearn.utils import Bunch, check_random_state

from ..utils.validation import Boolean, Integer
from ._dynamic import MNIST_OBJECT_FRACTION, DynamicScaleMNIST, check_images

__all__ = ["make_dynamic_split"]

_COUNT = Integer(low=1)


def make_dynamic_split(
    images,
    labels,
    *,
    n_train,
    n_test,
    scale_range,
    canvas_size=168,
    distribution="loguniform",
    min_scale=1.0,
    grid=None,
    n_grid=None,
    object_fraction=MNIST_OBJECT_FRACTION,
    as_arrays=True,
    random_state=0,
):
    """Split images into disjoint training and test pools at individually drawn scales.

    The protocol of the paper's Dynamic Scale MNIST experiments: ``n_train`` and
    ``n_test`` images are drawn without overlap; training images get scales from
    ``distribution`` over ``scale_range`` restricted to ``>= min_scale``, test images
    from the whole range. The test set (and the grid set) is normalised with the
    statistics of the training set. With ``grid``, the first ``n_grid`` test images are
    also rendered at every scale of ``grid`` (e.g. :func:`scale_grid`), for error-per-
    scale curves.

    Parameters
    ----------
    images : array-like of shape (n_images, side, side)
        Source images with values in [0, 1] (e.g. ``load_mnist().data``).
    labels : array-like of shape (n_images,)
        Integer labels.
    n_train, n_test : int
        Sizes of the two pools; ``n_train + n_test`` must not exceed ``n_images``.
    scale_range : (float, float)
        Bounds of the scales, as for :class:`DynamicScaleMNIST`.
    canvas_size : int, default=168
        Side of the rendered images.
    distribution : str or frozen scipy.stats distribution, default="loguniform"
        See :class:`DynamicScaleMNIST`.
    min_scale : float, default=1.0
        Smallest training scale.
    grid : array-like of shape (n_scales,), default=None
        Evaluation scales; ``None`` builds no grid set.
    n_grid : int, default=None
        Test images rendered at every grid scale; ``None`` takes all ``n_test``.
    object_fraction : float, default=20/28
        See :class:`DynamicScaleMNIST` (1.0 for Fashion-MNIST).
    as_arrays : bool, default=True
        Also render every set into arrays (``X_*``, ``y_*``, ``scales_*``); ``False``
        returns only the datasets, which render on access.
    random_state : int, RandomState instance or None, default=0
        Controls the pools and the scales.

    Returns
    -------
    split : :class:`~sklearn.utils.Bunch`
        ``train``, ``test`` (and ``grid``, else ``None``): :class:`DynamicScaleMNIST`
        sets; ``mean``, ``std``: the training statistics used for all of them;
        ``train_index``, ``test_index``: positions in ``images``. With ``as_arrays``
        also ``X_<set>`` of shape (n, 1, canvas, canvas), ``y_<set>`` and
        ``scales_<set>`` for each set.

    Examples
    --------
    >>> from skscale.datasets import load_mnist, make_dynamic_split, scale_grid
    >>> mnist = load_mnist(source="bundled")
    >>> split = make_dynamic_split(mnist.data, mnist.target, n_train=200, n_test=100,
    ...                            scale_range=(1.0, 2.0), canvas_size=56,
    ...                            grid=scale_grid(0, 1, per_octave=2), n_grid=20)
    >>> split.X_train.shape, split.X_test.shape, split.X_grid.shape
    ((200, 1, 56, 56), (100, 1, 56, 56), (40, 1, 56, 56))
    """
    images, labels = check_images(images, labels)
    n_train = _COUNT.check(n_train, "n_train")
    n_test = _COUNT.check(n_test, "n_test")
    if n_train + n_test > len(labels):
        raise ValueError(
            f"n_train + n_test = {n_train} + {n_test} exceeds the {len(labels)} images given; provide more "
            "images (e.g. the full MNIST, or load_fashion_mnist) or lower the sizes."
        )
    if grid is not None:
        n_grid = Integer(low=1, high=n_test, allow_none=True).check(n_grid, "n_grid")
    as_arrays = Boolean().check(as_arrays, "as_arrays")
    rng = check_random_state(random_state)
    order = rng.permutation(len(labels))
    train_index, test_index = order[:n_train], order[n_train : n_train + n_test]
    train_state, test_state = rng.randint(np.iinfo(np.int32).max, size=2)
    common = {"canvas_size": canvas_size, "object_fraction": object_fraction}
    drawn = {"distribution": distribution, "scale_range": scale_range, "min_scale": min_scale}
    train = DynamicScaleMNIST(
        images[train_index], labels[train_index], **drawn, **common, random_state=train_state
    )
    statistics = (train.mean, train.std)
    test = DynamicScaleMNIST(
        images[test_index],
        labels[test_index],
        **drawn,
        **common,
        train=False,
        normalize=statistics,
        random_state=test_state,
    )
    evaluation = None
    if grid is not None:
        grid_index = test_index[:n_grid]
        evaluation = DynamicScaleMNIST.at_scales(
            images[grid_index], labels[grid_index], grid, **common, normalize=statistics
        )
    split = Bunch(
        train=train,
        test=test,
        grid=evaluation,
        mean=train.mean,
        std=train.std,
        train_index=train_index,
        test_index=test_index,
    )
    if as_arrays:
        for name, dataset in (("train", train), ("test", test), ("grid", evaluation)):
            if dataset is not None:
                split[f"X_{name}"], split[f"y_{name}"], split[f"scales_{name}"] = dataset.to_arrays()
    return split

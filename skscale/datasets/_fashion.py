"""Fashion-MNIST: Debian's package, IDX files in data_home, or OpenML."""

from __future__ import annotations

import os

from ..utils.validation import Boolean, Options
from . import _idx
from ._idx import SUBSET, find_idx_files, find_in_folders, idx_folders, missing_files_error, read_idx_files
from ._mnist import DatasetCard, to_bunch
from ._openml import load_openml

__all__ = ["FASHION_MNIST_CLASSES", "load_fashion_mnist"]

#: Where :func:`load_fashion_mnist` can read Fashion-MNIST from, ``"auto"`` first.
FASHION_MNIST_SOURCES = ("auto", "debian", "idx", "openml")
_SOURCE = Options(FASHION_MNIST_SOURCES)
_OPENML_NAME = "Fashion-MNIST"

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

_HOW_TO_PROVIDE = (
    "Provide Fashion-MNIST in one of these ways: install Debian's package "
    "(apt-get install dataset-fashion-mnist, source='debian'); put the four IDX files "
    "(train-images-idx3-ubyte[.gz], ...) in data_home/fashion-mnist (source='idx'); or use "
    "source='openml' when online."
)

_DESCR = """\
Fashion-MNIST
-------------

Source: {source} ({location}).
Subset: {subset}. {n_samples} images, {counts}.

Images are (n_samples, {side}, {side}) float32 arrays with values in [0, 1] (the
original 8-bit intensities divided by 255); labels are int64 in 0..9, named in
target_names.

Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017) holds 60,000 training and 10,000 test
grey-scale images of Zalando articles in 10 classes, in MNIST's format and size. The
articles were trimmed and resized so that their longer side spans the whole 28 pixels,
unlike MNIST's digits, which fill a 20x20 box.
"""
_FASHION_MNIST = DatasetCard(target_names=FASHION_MNIST_CLASSES, descr=_DESCR)


def debian_files(subset):
    """The IDX files of ``subset`` in Debian's Fashion-MNIST folder, or None."""
    # Read at call time so that the folder can be pointed elsewhere (tests do).
    return find_in_folders([_idx.DEBIAN_FASHION_MNIST], subset)


def load_fashion_mnist(*, data_home=None, source="auto", subset="all", return_X_y=False):
    """Load Fashion-MNIST as (n, 28, 28) float32 images in [0, 1].

    A real data set at the size of MNIST (70,000 images) that works offline once
    Debian's ``dataset-fashion-mnist`` package is installed. The output is shaped like
    :func:`load_mnist`'s, so every MNIST tool (:func:`make_mnist_scale` with
    ``dataset="fashion"``, :class:`DynamicScaleMNIST`) takes it.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder of the data, see :func:`get_data_home`.
    source : {"auto", "debian", "idx", "openml"}, default="auto"
        - ``"debian"``: the IDX files that ``apt-get install dataset-fashion-mnist``
          puts in ``/usr/share/datasets/fashion-mnist``.
        - ``"idx"``: the four standard IDX files (the names of MNIST's, optionally
          gzipped) in ``data_home/fashion-mnist`` or ``data_home/FashionMNIST/raw``
          (torchvision's layout).
        - ``"openml"``: :func:`sklearn.datasets.fetch_openml` of ``"Fashion-MNIST"``,
          downloaded once and cached in ``data_home``.
        - ``"auto"``: the first of these three that is available; the network is
          touched only when neither folder holds the files.
    subset : {"all", "train", "test"}, default="all"
        The 60,000 training images, the 10,000 test images or both (training first).
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    fashion : :class:`~sklearn.utils.Bunch`
        With ``data`` (n, 28, 28) float32, ``target`` (n,) int64, ``target_names``
        (the 10 class names), ``source`` (the source used), ``location``, ``subset``
        and ``DESCR``, as :func:`load_mnist`.

    (data, target) : tuple if ``return_X_y`` is True

    Raises
    ------
    FileNotFoundError
        If ``source`` is ``"debian"`` or ``"idx"`` and the files are missing, or
        ``source="auto"`` finds neither folder nor OpenML.
    ConnectionError
        If ``source="openml"`` cannot reach OpenML.
    ValueError
        If a file is truncated or corrupt (the message names it).

    Examples
    --------
    >>> from skscale.datasets import load_fashion_mnist
    >>> fashion = load_fashion_mnist(subset="test")  # doctest: +SKIP
    >>> fashion.data.shape, fashion.target_names[0]  # doctest: +SKIP
    ((10000, 28, 28), 'T-shirt/top')
    """
    source = _SOURCE.check(source, "source")
    subset = SUBSET.check(subset, "subset")
    return_X_y = Boolean().check(return_X_y, "return_X_y")
    paths = None
    if source in ("auto", "debian"):
        paths = debian_files(subset)
        if paths is not None:
            source = "debian"
        elif source == "debian":
            raise missing_files_error("Fashion-MNIST", [_idx.DEBIAN_FASHION_MNIST], subset, _HOW_TO_PROVIDE)
    if source in ("auto", "idx"):
        paths = find_idx_files("fashion", data_home, subset=subset)
        if paths is not None:
            source = "idx"
        elif source == "idx":
            raise missing_files_error(
                "Fashion-MNIST", idx_folders("fashion", data_home), subset, _HOW_TO_PROVIDE
            )
    if source == "auto":
        try:
            images, labels, location = load_openml(_OPENML_NAME, data_home, subset, _HOW_TO_PROVIDE)
        except ConnectionError as exc:
            folders = [_idx.DEBIAN_FASHION_MNIST, *idx_folders("fashion", data_home)]
            raise FileNotFoundError(
                "source='auto' found Fashion-MNIST in none of "
                + ", ".join(repr(os.fspath(folder)) for folder in folders)
                + f" and could not reach OpenML ({exc.__cause__}). "
                + _HOW_TO_PROVIDE
            ) from exc
        source = "openml"
    elif source == "openml":
        images, labels, location = load_openml(_OPENML_NAME, data_home, subset, _HOW_TO_PROVIDE)
    else:
        images, labels = read_idx_files(paths, subset)
        location = os.fspath(next(iter(paths.values())).parent)
    return to_bunch(
        images, labels, _FASHION_MNIST, return_X_y=return_X_y, source=source, location=location, subset=subset
    )

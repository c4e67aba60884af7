"""IDX files (the format of MNIST and Fashion-MNIST): where they are and how to read them.

One reader serves both data sets; :func:`find_idx_files` and :func:`get_data_home` are
public so that the command line can describe the sources without loading them.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from ..utils.validation import Options

__all__ = ["find_idx_files", "get_data_home", "read_idx"]

_SUBSETS = ("all", "train", "test")
N_CLASSES = 10

# Standard file names of the MNIST distribution (Fashion-MNIST uses the same); the second
# spelling is what some archivers produce when unpacking. Each may carry a ".gz" suffix.
IDX_NAMES = {
    ("train", "images"): ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    ("train", "labels"): ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    ("test", "images"): ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    ("test", "labels"): ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}
_IDX_MAGIC = {"images": 0x00000803, "labels": 0x00000801}  # unsigned bytes, 3-D / 1-D
_GZIP_MAGIC = b"\x1f\x8b"

# Folders below data_home searched, in order ("MNIST/raw" and "FashionMNIST/raw" are the
# layouts torchvision downloads to). Fashion-MNIST is never looked for in data_home
# itself, where its files would be mistaken for MNIST's.
_DATA_HOME_FOLDERS = {
    "mnist": (".", "mnist", os.path.join("MNIST", "raw")),
    "fashion": ("fashion-mnist", os.path.join("FashionMNIST", "raw")),
}
# Where Debian's package dataset-fashion-mnist installs the four IDX files.
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

_DATASET = Options(tuple(_DATA_HOME_FOLDERS))
SUBSET = Options(_SUBSETS)


def get_data_home(data_home=None):
    """Folder that holds the data sets, by scikit-learn's rule.

    Unlike :func:`sklearn.datasets.get_data_home` the folder is not created: skscale
    only reads from it (OpenML downloads create it when needed).

    Parameters
    ----------
    data_home : str or path-like, default=None
        The folder; ``None`` means ``$SCIKIT_LEARN_DATA`` or ``~/scikit_learn_data``.
        A leading ``~`` is expanded.

    Returns
    -------
    path : pathlib.Path

    Examples
    --------
    >>> from skscale.datasets import get_data_home
    >>> get_data_home("/tmp/data").as_posix()
    '/tmp/data'
    """
    if data_home is None:
        data_home = os.environ.get("SCIKIT_LEARN_DATA", os.path.join("~", "scikit_learn_data"))
    return Path(os.path.expanduser(os.fspath(data_home)))


def _splits(subset):
    return ("train", "test") if subset == "all" else (subset,)


def idx_folders(dataset, data_home):
    """Folders searched for ``dataset``'s IDX files below ``data_home``, in order."""
    home = get_data_home(data_home)
    return [home / folder for folder in _DATA_HOME_FOLDERS[dataset]]


def find_in_folders(folders, subset):
    """The IDX files of ``subset`` in the first of ``folders`` that holds them all, or None."""
    keys = [(split, kind) for split in _splits(subset) for kind in ("images", "labels")]
    for directory in folders:
        paths = {}
        for key in keys:
            candidates = [directory / (name + suffix) for name in IDX_NAMES[key] for suffix in ("", ".gz")]
            found = next((path for path in candidates if path.is_file()), None)
            if found is None:
                break
            paths[key] = found
        else:
            return paths
    return None


def find_idx_files(dataset="mnist", data_home=None, *, subset="all"):
    """Locate the standard IDX files of MNIST or Fashion-MNIST in ``data_home``.

    MNIST is looked for in ``data_home``, ``data_home/mnist`` and ``data_home/MNIST/raw``
    (torchvision's layout); Fashion-MNIST in ``data_home/fashion-mnist`` and
    ``data_home/FashionMNIST/raw``. Each file may be gzipped (``.gz``). Nothing is read.
    Debian's Fashion-MNIST folder is not searched here (see :func:`load_fashion_mnist`).

    Parameters
    ----------
    dataset : {"mnist", "fashion"}, default="mnist"
    data_home : str or path-like, default=None
        See :func:`get_data_home`.
    subset : {"all", "train", "test"}, default="all"
        Which pairs of files (images and labels) must be present.

    Returns
    -------
    paths : dict or None
        Maps ``(split, kind)``, e.g. ``("train", "images")``, to the file, all from the
        first folder that holds every file of ``subset``; ``None`` if no folder does.

    Examples
    --------
    >>> from skscale.datasets import find_idx_files
    >>> find_idx_files("fashion", "/nonexistent") is None
    True
    """
    dataset = _DATASET.check(dataset, "dataset")
    subset = SUBSET.check(subset, "subset")
    return find_in_folders(idx_folders(dataset, data_home), subset)


def _expected_names(subset):
    return [IDX_NAMES[split, kind][0] + "[.gz]" for split in _splits(subset) for kind in ("images", "labels")]


def missing_files_error(name, folders, subset, how_to_provide, download=""):
    """The ``FileNotFoundError`` of a loader that found no IDX files of ``subset`` in ``folders``."""
    listed = ", ".join(repr(os.fspath(folder)) for folder in folders)
    return FileNotFoundError(
        f"{name} IDX files for subset={subset!r} not found in any of {listed}; expected "
        f"{', '.join(_expected_names(subset))}.{download} " + how_to_provide
    )


def read_idx(path, kind):
    """Read one IDX file of unsigned bytes, gzipped or not (detected from its content).

    Parameters
    ----------
    path : path-like
    kind : {"images", "labels"}
        The expected file type, checked against the magic number (images are 3-D,
        labels 1-D).

    Returns
    -------
    array : ndarray of uint8, shape (n, rows, cols) for images, (n,) for labels

    Raises
    ------
    ValueError
        If the file is not a valid IDX file of ``kind`` (truncated or corrupt gzip
        stream, wrong magic number, size not matching its header, no entries, labels
        outside 0..9); the message names the file.
    """
    name = os.fspath(path)
    with open(path, "rb") as file:
        content = file.read()
    if content[:2] == _GZIP_MAGIC:
        try:
            content = gzip.decompress(content)
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise ValueError(f"{name!r} is not a valid gzip file (truncated or corrupt): {exc}") from exc
    expected = _IDX_MAGIC[kind]
    if len(content) < 4:
        raise ValueError(f"{name!r} is too short to be an IDX file ({len(content)} bytes).")
    magic = int.from_bytes(content[:4], "big")
    if magic != expected:
        raise ValueError(
            f"{name!r} is not an IDX {kind} file: its magic number is 0x{magic:08X}, expected "
            f"0x{expected:08X} (unsigned bytes, {expected & 0xFF}-D)."
        )
    n_dims = magic & 0xFF
    header = 4 + 4 * n_dims
    if len(content) < header:
        raise ValueError(f"{name!r} is truncated: its header needs {header} bytes.")
    shape = tuple(int.from_bytes(content[4 + 4 * i : 8 + 4 * i], "big") for i in range(n_dims))
    n_values = int(np.prod(shape))
    if len(content) - header != n_values:
        raise ValueError(
            f"{name!r} is corrupt: its header announces shape {shape} ({n_values} bytes of data) "
            f"but it holds {len(content) - header} bytes."
        )
    if 0 in shape:
        raise ValueError(f"{name!r} holds no {kind}: its header announces shape {shape}.")
    array = np.frombuffer(content, dtype=np.uint8, offset=header).reshape(shape)
    if kind == "labels" and array.max() >= N_CLASSES:
        raise ValueError(
            f"{name!r} holds labels outside 0..{N_CLASSES - 1}, e.g. "
            f"{np.unique(array[array >= N_CLASSES])[:5].tolist()}."
        )
    return array


def read_idx_files(paths, subset):
    """Images and labels of ``subset`` from the files ``paths`` (as :func:`find_idx_files`)."""
    images, labels = [], []
    for split in _splits(subset):
        split_images = read_idx(paths[split, "images"], "images")
        split_labels = read_idx(paths[split, "labels"], "labels")
        if len(split_images) != len(split_labels):
            raise ValueError(
                f"{os.fspath(paths[split, 'images'])!r} holds {len(split_images)} images but "
                f"{os.fspath(paths[split, 'labels'])!r} holds {len(split_labels)} labels."
            )
        if images and split_images.shape[1:] != images[0].shape[1:]:
            raise ValueError(
                f"{os.fspath(paths[split, 'images'])!r} holds images of shape {split_images.shape[1:]}, "
                f"unlike the {images[0].shape[1:]} of the other split."
            )
        images.append(split_images)
        labels.append(split_labels)
    return np.concatenate(images), np.concatenate(labels)

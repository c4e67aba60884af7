"""Patch Camelyon (Veeling et al., 2018): 96 x 96 RGB patches of lymph node sections."""

from __future__ import annotations

import numpy as np
from sklearn.utils import Bunch

from ..utils.validation import Integer, Options
from ._idx import get_data_home

__all__ = ["load_pcam"]

_SPLIT = Options(("train", "valid", "test"))


def _file_name(split, part):
    return f"camelyonpatch_level_2_split_{split}_{part}.h5"


def _read_dataset(path, key, n_samples):
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            if key not in handle:
                raise ValueError(f"{path} holds no dataset {key!r} (it holds {sorted(handle.keys())!r}).")
            return np.asarray(handle[key][:n_samples])
    except OSError as error:
        raise ValueError(f"{path} is not a readable HDF5 file ({error}).") from None


def load_pcam(data_home=None, split="train", *, n_samples=None):
    """Load Patch Camelyon patches and their tumour labels from the official HDF5 files.

    Reads ``camelyonpatch_level_2_split_{split}_x.h5`` (dataset ``"x"``, uint8 patches
    ``(n, 96, 96, 3)``) and ``..._y.h5`` (dataset ``"y"``, labels ``(n, 1, 1, 1)``) from
    ``data_home`` or ``data_home/pcam``, with h5py (``pip install "skscale[pcam]"``).
    Decompress the downloaded ``.h5.gz`` files first (``gunzip``).

    Parameters
    ----------
    data_home : str or path-like, optional
        See :func:`get_data_home`.
    split : {"train", "valid", "test"}, default="train"
    n_samples : int, optional
        Read only the first patches (the training split is 262,144 patches, 29 GB as
        float32).

    Returns
    -------
    data : sklearn.utils.Bunch
        ``X`` (n, 3, 96, 96) float32 in [0, 1], ``y`` (n,) int64 (1: the centre holds
        tumour tissue), ``target_names``, ``DESCR``.

    Raises
    ------
    FileNotFoundError
        When either file is missing.
    ValueError
        For a file that is not HDF5, lacks its dataset, or whose shapes do not agree.
    ImportError
        Without h5py.
    """
    split = _SPLIT.check(split, "split")
    if n_samples is not None:
        n_samples = Integer(low=1).check(n_samples, "n_samples")
    try:
        import h5py  # noqa: F401
    except ImportError:
        raise ImportError('load_pcam reads HDF5 files with h5py: pip install "skscale[pcam]".') from None
    home = get_data_home(data_home)
    folders = [home, home / "pcam"]
    paths = {}
    for part in ("x", "y"):
        found = [
            folder / _file_name(split, part)
            for folder in folders
            if (folder / _file_name(split, part)).is_file()
        ]
        if not found:
            raise FileNotFoundError(
                f"{_file_name(split, part)} not found in {' or '.join(str(folder) for folder in folders)}; "
                "download the PCam files (https://github.com/basveeling/pcam) and gunzip them there."
            )
        paths[part] = found[0]
    patches = _read_dataset(paths["x"], "x", n_samples)
    labels = _read_dataset(paths["y"], "y", n_samples)
    if patches.ndim != 4 or patches.shape[-1] != 3:
        raise ValueError(
            f"{paths['x']}: 'x' must hold RGB patches (n, height, width, 3), got {patches.shape}."
        )
    labels = labels.reshape(len(labels), -1)
    if labels.shape[1] != 1 or len(labels) != len(patches):
        raise ValueError(
            f"{paths['y']}: 'y' must hold one label per patch of {paths['x']} ({len(patches)}), got shape "
            f"{labels.shape}."
        )
    return Bunch(
        X=patches.transpose(0, 3, 1, 2).astype(np.float32) / 255.0,
        y=labels[:, 0].astype(np.int64),
        target_names=np.asarray(["no tumour", "tumour"]),
        DESCR=f"Patch Camelyon {split} split: {len(patches)} patches from {paths['x'].parent}.",
    )

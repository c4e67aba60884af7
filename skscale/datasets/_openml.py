"""The OpenML copies of MNIST and Fashion-MNIST (70,000 images, standard order)."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import fetch_openml

_N_TRAIN = 60000
_N_ALL = 70000


def load_openml(name, data_home, subset, how_to_provide):
    """Images (n, side, side) and labels of the OpenML data set ``name``.

    Raises ``ConnectionError`` (ending with ``how_to_provide``) when OpenML cannot be
    reached.
    """
    try:
        bunch = fetch_openml(name, version=1, data_home=data_home, as_frame=False)
    except OSError as exc:  # urllib errors are OSErrors
        raise ConnectionError(f"Could not fetch {name!r} from OpenML ({exc}). " + how_to_provide) from exc
    data = np.asarray(bunch.data)
    side = round(np.sqrt(data.shape[1]))
    images = data.reshape(len(data), side, side)
    labels = np.asarray(bunch.target).astype(np.int64)
    if subset != "all":
        # OpenML keeps the standard order: 60,000 training images, then 10,000 test images.
        if len(images) != _N_ALL:
            raise ValueError(
                f"subset={subset!r} needs the {_N_ALL} images of {name!r} in their standard order, "
                f"but OpenML returned {len(images)}."
            )
        part = slice(None, _N_TRAIN) if subset == "train" else slice(_N_TRAIN, None)
        images, labels = images[part], labels[part]
    return images, labels, f"OpenML dataset {name!r}"

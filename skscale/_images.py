"""One conversion of user inputs into images and labels, for every estimator.

Arrays become float32 images ``(n, channels, height, width)``; a torch ``Dataset`` of
``(image, label)`` pairs is wrapped in :class:`ImageDataset`, which converts each sample
as it is read. Labels of any type become class indices with :func:`encode_labels`.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.utils.validation import check_array
from skorch.utils import to_numpy

from .utils.validation import Integer

__all__ = [
    "ImageDataset",
    "as_images",
    "check_image_shape",
    "dataset_labels",
    "dataset_targets",
    "encode_labels",
    "first_dataset_image",
    "parse_image_shape",
]

_SIDE = Integer(low=1)


def _as_label(value):
    """A label read from a sample: a 0-d tensor or numpy scalar as its Python value."""
    return value.item() if hasattr(value, "item") else value


class ImageDataset(torch.utils.data.Dataset):
    """A user's Dataset of ``(image, label)`` as ``(float32 (C, H, W) tensor, class index)``.

    Parameters
    ----------
    dataset : torch.utils.data.Dataset
        Yields ``(image, label)`` pairs, or bare images when ``classes`` is None.
    classes : array-like, optional
        The class labels; a sample's label becomes its position here. None (prediction)
        ignores the labels and yields class index 0.
    shape : tuple of int, optional
        ``(channels, height, width)`` every image must have; another is refused with the
        sample's index.
    """

    def __init__(self, dataset, classes=None, shape=None):
        self.dataset = dataset
        self.index = (
            None if classes is None else {label: i for i, label in enumerate(np.asarray(classes).tolist())}
        )
        self.shape = shape

    def __len__(self):
        return len(self.dataset)

    def _convert(self, item, position):
        image = torch.as_tensor(item[0] if isinstance(item, (tuple, list)) else item, dtype=torch.float32)
        if image.ndim == 2:
            image = image.unsqueeze(0)
        if self.shape is not None and tuple(image.shape) != self.shape:
            raise ValueError(
                f"sample {position} of the dataset is an image of shape {tuple(image.shape)} (channels, "
                f"height, width), but the network reads images of shape {self.shape}."
            )
        if self.index is None:
            return image, 0
        label = _as_label(item[1])
        try:
            return image, self.index[label]
        except (KeyError, TypeError):
            raise ValueError(
                f"sample {position} of the dataset has label {label!r}, which is not one of the classes "
                f"{list(self.index)!r}."
            ) from None

    def __getitem__(self, position):
        return self._convert(self.dataset[position], position)

    def __getitems__(self, positions):
        getitems = getattr(self.dataset, "__getitems__", None)
        items = getitems(positions) if getitems is not None else [self.dataset[i] for i in positions]
        return [self._convert(item, position) for item, position in zip(items, positions)]


def dataset_targets(dataset):
    """The labels of a Dataset from its ``targets`` attribute (through Subsets), or None."""
    if isinstance(dataset, torch.utils.data.Subset):
        targets = dataset_targets(dataset.dataset)
        return None if targets is None else targets[np.asarray(dataset.indices)]
    targets = getattr(dataset, "targets", None)
    if targets is None:
        return None
    return np.asarray(to_numpy(targets) if torch.is_tensor(targets) else targets)


def dataset_labels(dataset):
    """All labels of a Dataset: its ``targets``, else read sample by sample."""
    targets = dataset_targets(dataset)
    if targets is not None:
        return targets
    return np.asarray([_as_label(dataset[i][1]) for i in range(len(dataset))])


def first_dataset_image(dataset):
    """The first image of a training Dataset, checked to be a non-empty (C, H, W) image."""
    if len(dataset) == 0:
        raise ValueError("X is an empty Dataset; it must yield at least one (image, label) pair.")
    first = ImageDataset(dataset)[0][0]
    if first.ndim != 3 or min(first.shape) == 0:
        raise ValueError(
            "a Dataset must yield (image, label) with images of shape (height, width) or (channels, "
            f"height, width), none empty; sample 0 is an image of shape {tuple(first.shape)}."
        )
    return first


def parse_image_shape(image_shape):
    """``image_shape`` ((height, width) or (height, width, channels)) as ``(C, H, W)``, or None."""
    if image_shape is None:
        return None
    try:
        values = tuple(image_shape)
    except TypeError:
        values = ()
    if len(values) not in (2, 3) or not all(_SIDE.is_valid(value) for value in values):
        raise ValueError(
            "image_shape must be (height, width) or (height, width, channels) of positive "
            f"integers, got {image_shape!r}."
        )
    height, width = int(values[0]), int(values[1])
    channels = int(values[2]) if len(values) == 3 else 1
    return channels, height, width


def as_images(X, image_shape=None):
    """Validate the array ``X`` and return float32 images ``(n, C, H, W)``.

    Parameters
    ----------
    X : array-like
        ``(n, features)`` rows (read with ``image_shape``, channels-last), ``(n, H, W)``
        or ``(n, C, H, W)``.
    image_shape : tuple of int, optional
        ``(height, width)`` or ``(height, width, channels)``, see :func:`parse_image_shape`.
    """
    X = check_array(X, allow_nd=True, dtype=np.float32, ensure_all_finite=True, input_name="X")
    expected = parse_image_shape(image_shape)
    if X.ndim == 2:
        if expected is None:
            return X.reshape(X.shape[0], 1, 1, X.shape[1])
        channels, height, width = expected
        if X.shape[1] != channels * height * width:
            raise ValueError(
                f"X has {X.shape[1]} features per row, but image_shape={image_shape!r} "
                f"needs {channels * height * width}."
            )
        return np.ascontiguousarray(X.reshape(X.shape[0], height, width, channels).transpose(0, 3, 1, 2))
    if X.ndim == 3:
        images = X[:, None]
    elif X.ndim == 4:
        images = X
    else:
        raise ValueError(
            "X must be 2-D (n_samples, n_features), 3-D (n_samples, height, width) or 4-D "
            f"(n_samples, channels, height, width), got shape {X.shape}."
        )
    if min(images.shape[1:]) == 0:
        raise ValueError(
            f"X of shape {X.shape} holds empty images (channels, height, width) = "
            f"{tuple(images.shape[1:])}; every image needs at least one channel, row and column."
        )
    if expected is not None and tuple(images.shape[1:]) != expected:
        raise ValueError(
            f"image_shape={image_shape!r} does not match X of shape {X.shape} "
            f"(read as images of shape {tuple(images.shape[1:])} (channels, height, width))."
        )
    return images


def check_image_shape(shape, expected, estimator_name):
    """Refuse images of another ``(C, H, W)`` than the fitted ``expected``, as scikit-learn words it."""
    if tuple(shape) != tuple(expected):
        raise ValueError(
            f"X has {int(np.prod(shape))} features, but {estimator_name} is expecting "
            f"{int(np.prod(expected))} features as input (images of shape {tuple(shape)} "
            f"(channels, height, width) instead of {tuple(expected)})."
        )


def encode_labels(y, classes):
    """Class indices of the labels ``y``: their positions in ``classes``.

    Raises ``ValueError`` naming the labels that are not among ``classes``.
    """
    order = np.argsort(classes, kind="stable")
    positions = order[np.clip(np.searchsorted(classes, y, sorter=order), 0, len(classes) - 1)]
    unknown = classes[positions] != y
    if unknown.any():
        raise ValueError(
            f"y holds labels that are not among the classes {classes.tolist()!r}: "
            f"{np.unique(np.asarray(y)[unknown]).tolist()!r}."
        )
    return positions.astype(np.int64)

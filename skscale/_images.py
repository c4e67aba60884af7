"""One conversion of user inputs into images and labels, for every estimator.

Arrays become float32 images ``(n, channels, height, width)``; a torch ``Dataset`` of
``(image, label)`` pairs is wrapped in :class:`ImageDataset`, which converts each sample
as it is read. Labels of any type become class indices with :func:`encode_labels`.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch
from sklearn.utils.validation import check_array
from skorch.dataset import unpack_data
from skorch.utils import to_numpy, to_tensor

from .utils.validation import Integer, Options

__all__ = [
    "ImageDataset",
    "as_images",
    "check_image_shape",
    "dataset_labels",
    "dataset_targets",
    "encode_labels",
    "first_dataset_image",
    "image_batches",
    "parse_image_shape",
    "resolve_layout",
    "IMAGE_LAYOUTS",
    "MAX_PIXEL_MAGNITUDE",
]

_SIDE = Integer(low=1)

#: Class index of the targets the loss leaves out (``torch.nn.CrossEntropyLoss``'s default
#: ``ignore_index``): pixels of a segmentation mask labelled ``ignore_label``.
IGNORED_INDEX = -100


def _as_label(value):
    """A label read from a sample: a 0-d tensor or numpy scalar as its Python value."""
    return value.item() if hasattr(value, "item") else value


class ImageDataset(torch.utils.data.Dataset):
    """A user's Dataset of ``(image, label)`` as ``(float32 (C, H, W) tensor, class index)``.

    Parameters
    ----------
    dataset : torch.utils.data.Dataset
        Yields ``(image, label)`` pairs, or bare images when ``classes`` is None. Images
        are ``(H, W)``, ``(C, H, W)`` or ``(H, W, C)`` (read as ``image_layout`` says, see
        :func:`resolve_layout`); each is checked as it is read: finite pixels of a
        magnitude float32 can train on.
    classes : array-like, optional
        The class labels; a sample's label becomes its position here. None (prediction)
        ignores the labels and yields class index 0.
    shape : tuple of int, optional
        ``(channels, height, width)`` every image must have; another is refused with the
        sample's index.
    image_layout : {"auto", "channels_first", "channels_last"}, default="auto"
    """

    def __init__(self, dataset, classes=None, shape=None, image_layout="auto"):
        self.dataset = dataset
        self.index = (
            None if classes is None else {label: i for i, label in enumerate(np.asarray(classes).tolist())}
        )
        self.shape = shape
        self.image_layout = image_layout

    def __len__(self):
        return len(self.dataset)

    def _image(self, item, position):
        pair = isinstance(item, (tuple, list))
        if self.index is not None and not (pair and len(item) >= 2):
            raise ValueError(
                f"sample {position} of the dataset is not an (image, label) pair but a "
                f"{type(item).__name__}; training needs the labels (a Dataset of bare images can only "
                "be predicted)."
            )
        image = torch.as_tensor(item[0] if pair else item, dtype=torch.float32)
        if image.ndim == 2:
            image = image.unsqueeze(0)
        elif image.ndim == 3 and resolve_layout((1, *image.shape), self.image_layout) == "channels_last":
            image = image.permute(2, 0, 1)
        if not bool(torch.isfinite(image).all()):
            raise ValueError(
                f"sample {position} of the dataset holds non-finite pixel values (NaN or inf); the network "
                "cannot train on or predict them."
            )
        _check_magnitude(
            image.numpy() if image.device.type == "cpu" else image.cpu().numpy(), f"sample {position}"
        )
        if self.shape is not None and tuple(image.shape) != self.shape:
            raise ValueError(
                f"sample {position} of the dataset is an image of shape {tuple(image.shape)} (channels, "
                f"height, width), but the network reads images of shape {self.shape}."
            )
        return image

    def _convert(self, item, position):
        image = self._image(item, position)
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


def image_batches(net, dataset, n_batches=None):
    """The images of a skorch ``dataset``, batch by batch, on ``net.device`` (labels dropped).

    Read through ``net``'s prediction iterator (no shuffling, no augmentation); only the
    first ``n_batches`` batches when it is given.
    """
    for batch in itertools.islice(net.get_iterator(dataset, training=False), n_batches):
        yield to_tensor(unpack_data(batch)[0], device=net.device)


def first_dataset_image(dataset, image_layout="auto"):
    """The first image of a training Dataset, checked to be a non-empty (C, H, W) image.

    Returns
    -------
    image : torch.Tensor of shape (C, H, W)
    layout : {"grayscale", "channels_first", "channels_last"}
        How it was read (a 2-D image has no channel axis).
    """
    if len(dataset) == 0:
        raise ValueError("X is an empty Dataset; it must yield at least one (image, label) pair.")
    item = dataset[0]
    if not (isinstance(item, (tuple, list)) and len(item) >= 2):
        raise ValueError(
            f"a training Dataset must yield (image, label) pairs; sample 0 is a {type(item).__name__}. "
            "Wrap bare images with their labels (e.g. torch.utils.data.TensorDataset(images, labels))."
        )
    first = ImageDataset(dataset, image_layout=image_layout)._image(item, 0)
    raw_shape = tuple(torch.as_tensor(item[0]).shape)
    layout = "grayscale" if len(raw_shape) == 2 else resolve_layout((1, *raw_shape), image_layout)
    if first.ndim != 3 or min(first.shape) == 0:
        raise ValueError(
            "a Dataset must yield (image, label) with images of shape (height, width) or (channels, "
            f"height, width), none empty; sample 0 is an image of shape {tuple(first.shape)}."
        )
    return first, layout


#: How a 4-D array's axes are read: decided from its shape, or stated.
IMAGE_LAYOUTS = ("auto", "channels_first", "channels_last")
#: Channel counts a channels-last array may have (grey, RGB, RGBA): numpy's, PIL's and
#: scikit-image's convention.
CHANNEL_COUNTS = (1, 3, 4)
#: ``image_shape`` that reads every row of a 2-D array as one 1 x n_features image.
ROW_IMAGES = "row"

_LAYOUT = Options(IMAGE_LAYOUTS)

# Values beyond this overflow float32 in the networks' sums of squares (BatchNorm's
# variance of 1e20-pixel images is 1e40 > 3.4e38): refused rather than trained on.
MAX_PIXEL_MAGNITUDE = 1e15


def parse_image_shape(image_shape):
    """``image_shape`` ((height, width) or (height, width, channels)) as ``(C, H, W)``.

    None and ``"row"`` give None (the shape then comes from the data).
    """
    if image_shape is None or (isinstance(image_shape, str) and image_shape == ROW_IMAGES):
        return None
    try:
        values = tuple(image_shape)
    except TypeError:
        values = ()
    if len(values) not in (2, 3) or not all(_SIDE.is_valid(value) for value in values):
        raise ValueError(
            "image_shape must be (height, width) or (height, width, channels) of positive "
            f"integers, or 'row', got {image_shape!r}."
        )
    height, width = int(values[0]), int(values[1])
    channels = int(values[2]) if len(values) == 3 else 1
    return channels, height, width


def resolve_layout(shape, image_layout="auto"):
    """Whether a 4-D array of ``shape`` holds ``(n, C, H, W)`` or ``(n, H, W, C)`` images.

    With ``image_layout="auto"``: channels-last when the last axis has 1, 3 or 4 entries
    and axis 1 has not; channels-first when axis 1 has and the last has not (or neither
    has: many feature maps). When both could be channels (e.g. ``(n, 3, 32, 3)``) the
    layout is ambiguous and must be stated.

    Returns
    -------
    layout : {"channels_first", "channels_last"}
    """
    image_layout = _LAYOUT.check(image_layout, "image_layout")
    if image_layout != "auto":
        return image_layout
    first, middle, last = shape[1:]
    first_is_channels, last_is_channels = first in CHANNEL_COUNTS, last in CHANNEL_COUNTS
    if last_is_channels and not first_is_channels:
        return "channels_last"
    if not last_is_channels or (first == middle == last == 1):
        return "channels_first"
    raise ValueError(
        f"X of shape {tuple(shape)} could be (n, channels, height, width) or (n, height, width, "
        "channels); pass image_layout='channels_first' or 'channels_last'."
    )


def _check_magnitude(values, where):
    largest = float(np.max(np.abs(values))) if values.size else 0.0
    if largest > MAX_PIXEL_MAGNITUDE:
        raise ValueError(
            f"{where} holds pixel values up to {largest:.3g}; beyond {MAX_PIXEL_MAGNITUDE:.0e} they "
            "overflow float32 in the network. Rescale the images first (e.g. "
            "skscale.preprocessing.ImageStandardizer)."
        )


def as_images(X, image_shape=None, image_layout="auto", dtype=np.float32):
    """Validate the array ``X`` and return images ``(n, C, H, W)`` and the layout read.

    Parameters
    ----------
    X : array-like
        ``(n, features)`` rows, ``(n, H, W)``, ``(n, C, H, W)`` or ``(n, H, W, C)``.
    image_shape : tuple of int or "row", optional
        How 2-D rows are images: ``(height, width)`` or ``(height, width, channels)``
        (channels-last, C order, as images are usually flattened), ``"row"`` (each row a
        1 x n_features image: tabular data), or None: square single-channel images, and
        rows whose length is not a square number are refused. For 3-D and 4-D ``X`` it
        must agree with the images read.
    image_layout : {"auto", "channels_first", "channels_last"}, default="auto"
        How a 4-D ``X`` is read (see :func:`resolve_layout`).
    dtype : {np.float32, np.float64}, default=np.float32
        float32 for a network, which refuses pixels beyond ``MAX_PIXEL_MAGNITUDE`` (they
        overflow it); float64 for a measurement (:func:`skscale.estimate_scales`), which
        takes any finite value.

    Returns
    -------
    images : ndarray of shape (n, C, H, W), of ``dtype``
    layout : {"flattened", "grayscale", "channels_first", "channels_last"}
    """
    X = check_array(X, allow_nd=True, dtype=dtype, ensure_all_finite=True, input_name="X")
    if X.dtype == np.float32:
        _check_magnitude(X, "X")
    expected = parse_image_shape(image_shape)
    if X.ndim == 2:
        return _rows_as_images(X, image_shape, expected), "flattened"
    if X.ndim in (3, 4) and min(X.shape[1:]) == 0:
        raise ValueError(
            f"X of shape {X.shape} holds empty images; every image needs at least one channel, row "
            "and column."
        )
    if X.ndim == 3:
        images, layout = X[:, None], "grayscale"
    elif X.ndim == 4:
        layout = resolve_layout(X.shape, image_layout)
        images = X if layout == "channels_first" else np.ascontiguousarray(X.transpose(0, 3, 1, 2))
    else:
        raise ValueError(
            "X must be 2-D (n_samples, n_features), 3-D (n_samples, height, width) or 4-D "
            "(n_samples, channels, height, width) or (n_samples, height, width, channels), "
            f"got shape {X.shape}."
        )
    if expected is not None and tuple(images.shape[1:]) != expected:
        raise ValueError(
            f"image_shape={image_shape!r} does not match X of shape {X.shape} "
            f"(read as images of shape {tuple(images.shape[1:])} (channels, height, width))."
        )
    return images, layout


def _rows_as_images(X, image_shape, expected):
    n_samples, n_features = X.shape
    if expected is not None:
        channels, height, width = expected
        if n_features != channels * height * width:
            raise ValueError(
                f"X has {n_features} features per row, but image_shape={image_shape!r} "
                f"needs {channels * height * width}."
            )
        return np.ascontiguousarray(X.reshape(n_samples, height, width, channels).transpose(0, 3, 1, 2))
    if image_shape is not None:  # "row": tabular data, one 1 x n_features image per row
        return X.reshape(n_samples, 1, 1, n_features)
    side = math.isqrt(n_features)
    if side * side != n_features:
        raise ValueError(
            f"X has {n_features} features per row, which is not a square single-channel image; pass "
            "image_shape=(height, width) or (height, width, channels) to say how its rows are images, "
            f"or image_shape='row' to read each row as a 1 x {n_features} image."
        )
    return X.reshape(n_samples, 1, side, side)


def check_image_shape(shape, expected, estimator_name, given=None, layout=None):
    """Refuse images of another ``(C, H, W)`` than the fitted ``expected``, as scikit-learn words it.

    ``given`` (the shape of a 4-D ``X``) and ``layout`` (how it was read) let the message
    say when ``X`` holds the training images in the other channel layout.
    """
    if tuple(shape) == tuple(expected):
        return
    message = (
        f"X has {int(np.prod(shape))} features, but {estimator_name} is expecting "
        f"{int(np.prod(expected))} features as input (images of shape {tuple(shape)} "
        f"(channels, height, width) instead of {tuple(expected)})."
    )
    if given is not None and len(given) == 4 and layout in ("channels_first", "channels_last"):
        _, first, second, third = given
        other = (first, second, third) if layout == "channels_last" else (third, first, second)
        if other == tuple(expected):
            flip = "X.transpose(0, 2, 3, 1)" if layout == "channels_last" else "X.transpose(0, 3, 1, 2)"
            given_layout = "channels-first" if layout == "channels_last" else "channels-last"
            message = (
                f"X of shape {tuple(given)} holds its images {given_layout}, the training images were "
                f"{layout.replace('_', '-')}: {estimator_name} reads 4-D X as it did at fit "
                f"(image_layout_={layout!r}), which gives images of shape {tuple(shape)} instead of "
                f"{tuple(expected)} (channels, height, width). Pass {flip}."
            )
    raise ValueError(message)


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

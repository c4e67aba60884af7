"""Cityscapes (Cordts et al., 2016), read from its standard folder layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from ..utils.validation import Integer, Options, Pair

__all__ = ["CITYSCAPES_CLASSES", "load_cityscapes"]

#: The 19 training classes of the Cityscapes benchmark, in the order of their train ids.
CITYSCAPES_CLASSES = (
    "road",
    "sidewalk",
    "building",
    "wall",
    "fence",
    "pole",
    "traffic light",
    "traffic sign",
    "vegetation",
    "terrain",
    "sky",
    "person",
    "rider",
    "car",
    "truck",
    "bus",
    "train",
    "motorcycle",
    "bicycle",
)
# The label ids (gtFine *_labelIds.png) of the 19 training classes, in train-id order;
# every other label id is mapped to IGNORE_LABEL.
_TRAIN_LABEL_IDS = (7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33)
IGNORE_LABEL = 255
_SPLIT = Options(("train", "val", "test"))
_SIZE = Pair(Integer(low=1), allow_equal=True, allow_none=True)
_IMAGE_SUFFIX = "_leftImg8bit.png"
_LABEL_SUFFIX = "_gtFine_labelIds.png"


def _train_id_table():
    table = np.full(256, IGNORE_LABEL, dtype=np.uint8)
    table[list(_TRAIN_LABEL_IDS)] = np.arange(len(_TRAIN_LABEL_IDS), dtype=np.uint8)
    return table


def _read_png(path, mode, size, resample_name):
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:  # pragma: no cover - Pillow comes with matplotlib
        raise ImportError(
            'load_cityscapes reads PNG files with Pillow: pip install "skscale[cityscapes]".'
        ) from None
    try:
        with Image.open(path) as image:
            if mode == "RGB":
                image = image.convert("RGB")
            elif image.mode not in ("L", "P"):
                raise ValueError(
                    f"{path} must be an 8-bit single-channel PNG of label ids, got PIL mode {image.mode!r}."
                )
            if size is not None:
                resample = getattr(Image.Resampling, resample_name)
                image = image.resize((size[1], size[0]), resample)
            return np.asarray(image)
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"{path} is not a readable PNG image ({error}).") from None


def load_cityscapes(root, split="train", *, size=None, max_images=None):
    """Load Cityscapes images and fine masks mapped to the 19 training classes.

    Reads the standard layout under ``root``::

        leftImg8bit/{split}/{city}/{name}_leftImg8bit.png
        gtFine/{split}/{city}/{name}_gtFine_labelIds.png

    The label ids of the 19 training classes (:data:`CITYSCAPES_CLASSES`) become their
    train ids 0 .. 18, every other id 255, the ``ignore_label`` of
    :class:`~skscale.ScaleEquivariantSegmenter`. PNG files are read with Pillow.

    Parameters
    ----------
    root : str or path-like
        The folder holding ``leftImg8bit`` and ``gtFine``.
    split : {"train", "val", "test"}, default="train"
    size : (int, int), optional
        ``(height, width)`` to resize to (images bilinear, masks nearest): the full
        1024 x 2048 images take 25 MB each as float32.
    max_images : int, optional
        Read only the first images (sorted by path).

    Returns
    -------
    data : sklearn.utils.Bunch
        ``X`` (n, 3, height, width) float32 in [0, 1], ``y`` (n, height, width) uint8
        train ids (255 ignored), ``filenames`` (the image paths), ``target_names``,
        ``DESCR``.

    Raises
    ------
    FileNotFoundError
        When the split's folder holds no images, or an image has no mask.
    ValueError
        For a file that is not a PNG, a mask that is not single-channel or not of its
        image's size, or images of different sizes without ``size``.
    """
    split = _SPLIT.check(split, "split")
    size = _SIZE.check(size, "size")
    if max_images is not None:
        max_images = Integer(low=1).check(max_images, "max_images")
    root = Path(root).expanduser()
    image_folder = root / "leftImg8bit" / split
    image_paths = sorted(image_folder.glob(f"*/*{_IMAGE_SUFFIX}"))[:max_images]
    if not image_paths:
        raise FileNotFoundError(
            f"no Cityscapes images found in {image_folder}: expected "
            f"leftImg8bit/{split}/<city>/<name>{_IMAGE_SUFFIX} under root={str(root)!r} (and "
            f"gtFine/{split}/<city>/<name>{_LABEL_SUFFIX}); download leftImg8bit_trainvaltest.zip and "
            "gtFine_trainvaltest.zip from https://www.cityscapes-dataset.com and unpack both into root."
        )
    table = _train_id_table()
    images, masks = [], []
    for image_path in image_paths:
        name = image_path.name[: -len(_IMAGE_SUFFIX)]
        label_path = root / "gtFine" / split / image_path.parent.name / f"{name}{_LABEL_SUFFIX}"
        if not label_path.is_file():
            raise FileNotFoundError(f"the Cityscapes image {image_path} has no mask {label_path}.")
        image = _read_png(image_path, "RGB", size, "BILINEAR")
        label_ids = _read_png(label_path, "L", size, "NEAREST")
        if label_ids.shape != image.shape[:2]:
            raise ValueError(
                f"the mask {label_path} has shape {label_ids.shape}, but its image {image.shape[:2]}."
            )
        images.append(image)
        masks.append(table[label_ids])
    shapes = {image.shape for image in images}
    if len(shapes) > 1:
        raise ValueError(
            f"the Cityscapes images of split {split!r} have different sizes {sorted(shapes)}; "
            "pass size=(height, width)."
        )
    X = np.stack(images).transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    return Bunch(
        X=X,
        y=np.stack(masks),
        filenames=[str(path) for path in image_paths],
        target_names=np.asarray(CITYSCAPES_CLASSES),
        DESCR=(
            f"Cityscapes {split} split: {len(images)} images from {root}, fine masks mapped to the 19 "
            f"training classes (255 ignored){'' if size is None else f', resized to {size}'}."
        ),
    )

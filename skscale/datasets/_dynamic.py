"""Dynamic Scale MNIST (paper appendix): digits upsampled on access onto a large canvas."""

from __future__ import annotations

import operator

import numpy as np
import torch
from scipy import stats
from sklearn.utils import check_random_state
from torch.utils.data import Dataset

from ..rescaling import rescale_about_centre
from ..utils.validation import Boolean, Integer, Pair, Real

__all__ = ["DynamicScaleMNIST", "scale_grid"]

_DISTRIBUTIONS = ("loguniform", "lognormal")
# MNIST digits are size-normalised to fit a 20x20 box inside their 28x28 image.
MNIST_OBJECT_FRACTION = 20.0 / 28.0
_OCTAVE = Real()
_COUNT = Integer(low=1)
_SCALE_RANGE = Pair(Real(low=0, closed="neither"))
_POSITIVE = Real(low=0, closed="neither")
_OBJECT_FRACTION = Real(low=0, high=1, closed="right")
_MEAN = Real()
# Samples rendered (chosen by a fixed seed) to estimate the normalisation statistics.
_N_STATISTICS_SAMPLES = 1000
_STATISTICS_BATCH = 128


def scale_grid(low_octave, high_octave, per_octave=10, *, num=None):
    """Log-spaced evaluation scales between two powers of two (paper appendix).

    The paper evaluates every test digit at scales "rounded to the nearest half-octave
    of 2", their number being "the range of octaves times 10". Accordingly the bounds
    ``low_octave`` and ``high_octave`` (exponents of 2) are rounded to the nearest
    multiple of 0.5 (ties to even, as Python's :func:`round`), and
    ``round((high - low) * per_octave)`` scales are spaced evenly in ``log2`` from
    ``2**low`` to ``2**high``, both included, as in the authors' code.

    Note that the paper also says Fig. 4 uses "45 scales between 2^0.5 and 2^3.5",
    which contradicts the rule (3 octaves times 10 is 30): ``scale_grid(0.5, 3.5)``
    follows the rule and gives 30 scales; pass ``num=45`` to get the figure's count.

    Parameters
    ----------
    low_octave, high_octave : float
        ``log2`` of the smallest and largest scale, before rounding to half-octaves.
    per_octave : int, default=10
        Scales per octave.
    num : int, default=None
        Number of scales, overriding ``per_octave``.

    Returns
    -------
    scales : ndarray of shape (num,), dtype float64
        Increasing scales; a single scale when both bounds round to the same value.

    Examples
    --------
    >>> from skscale.datasets import scale_grid
    >>> grid = scale_grid(0.5, 3.5)
    >>> len(grid), float(grid[0]) == 2**0.5, float(grid[-1]) == 2**3.5
    (30, True, True)
    >>> len(scale_grid(0.5, 3.5, num=45))
    45
    """
    low, high = (
        round(_OCTAVE.check(octave, name) * 2) / 2
        for name, octave in (("low_octave", low_octave), ("high_octave", high_octave))
    )
    if high < low:
        raise ValueError(
            f"high_octave must not be below low_octave after rounding to half-octaves, got "
            f"low_octave={low_octave!r} -> {low}, high_octave={high_octave!r} -> {high}."
        )
    if num is None:
        num = max(1, round((high - low) * _COUNT.check(per_octave, "per_octave")))
    else:
        num = _COUNT.check(num, "num")
    if high == low:
        return np.full(1, 2.0**low)
    return 2.0 ** np.linspace(low, high, num)


def check_images(images, labels):
    """``images`` as C-contiguous float32 (n, side, side) in [0, 1] and ``labels`` checked."""
    images = np.require(np.asarray(images, dtype=np.float32), requirements=["C", "W"])
    if images.ndim != 3 or images.shape[1] != images.shape[2] or not len(images):
        raise ValueError(
            f"images must have shape (n_images, side, side) with n_images > 0, got {images.shape}."
        )
    if not np.isfinite(images).all() or images.min() < 0 or images.max() > 1:
        raise ValueError("images must hold finite values in [0, 1], as load_mnist returns.")
    labels = np.asarray(labels)
    if labels.shape != (len(images),):
        raise ValueError(f"labels must have shape ({len(images)},) to match images, got {labels.shape}.")
    if not np.issubdtype(labels.dtype, np.integer) and (
        not np.issubdtype(labels.dtype, np.number) or not np.all(labels == np.round(labels))
    ):
        raise ValueError(f"labels must be integers, got dtype {labels.dtype}.")
    return images, labels.astype(np.int64)


def _check_fits(largest, object_size, canvas_size, name):
    """Refuse scales at which an object of ``object_size`` pixels outgrows the canvas."""
    limit = canvas_size / object_size
    if largest > limit * (1 + 1e-12):
        raise ValueError(
            f"{name} reaches scale {largest:g}, too large for canvas_size={canvas_size}: an object at "
            f"scale s spans about {object_size:g}*s pixels, so scales up to "
            f"{limit:g} fit. Increase canvas_size or lower the scales."
        )


def _check_geometry(images, canvas_size, object_fraction):
    """Checked ``canvas_size`` and the object's size in pixels."""
    canvas_size = Integer(low=images.shape[-1]).check(canvas_size, "canvas_size")
    object_fraction = _OBJECT_FRACTION.check(object_fraction, "object_fraction")
    return canvas_size, images.shape[-1] * object_fraction


def _frozen_distribution(distribution, low, high):
    if isinstance(distribution, str):
        if distribution == "loguniform":
            return stats.loguniform(low, high)
        if distribution == "lognormal":
            # Median at the geometric centre of the range, which spans +-2 sigma in log space.
            return stats.lognorm(s=np.log(high / low) / 4, scale=np.sqrt(low * high))
    elif callable(getattr(distribution, "cdf", None)) and callable(getattr(distribution, "ppf", None)):
        return distribution
    raise ValueError(
        f"distribution must be one of {_DISTRIBUTIONS} or a frozen scipy.stats distribution, "
        f"got {distribution!r}."
    )


def _sample_truncated(distribution, low, high, size, rng):
    """Draw from ``distribution`` conditioned on [low, high] by inverse-CDF sampling."""
    lower, upper = float(distribution.cdf(low)), float(distribution.cdf(high))
    if not upper > lower:
        raise ValueError(f"distribution puts no probability on the scales [{low:g}, {high:g}].")
    return np.clip(distribution.ppf(rng.uniform(lower, upper, size=size)), low, high)


class DynamicScaleMNIST(Dataset):
    """Digits at individual scales on a large canvas, rendered on access (paper appendix).

    The 28x28 digits are placed at the centre of a ``canvas_size`` canvas (168x168 in
    the paper). On creation an independent scale is drawn for every digit from the
    chosen distribution; each access upsamples the digit by its scale about the canvas
    centre with bicubic interpolation (see :func:`rescale_images`), so no rescaled copy
    is stored and memory stays that of the 28x28 source images. A digit at scale ``s``
    spans about ``20 * s`` pixels (MNIST digits fill a 20x20 box of their 28x28 image),
    so scales up to ``canvas_size / 20`` fit; larger ones raise a ``ValueError``. Any
    square images work the same way (Fashion-MNIST's, from :func:`load_fashion_mnist`,
    with ``object_fraction=1.0``).

    Training sets draw only scales ``>= min_scale`` (1 in the paper), i.e. the chosen
    distribution is conditioned on ``[max(low, min_scale), high]``, to avoid the
    information loss of downsampling. Evaluation sets with every digit at each scale of
    a grid are built with :meth:`at_scales`.

    The samples are normalised: with ``normalize=True`` the pixel mean and standard
    deviation are estimated once, at construction, from 1,000 samples (all, if fewer)
    chosen with a fixed seed and rendered at their own scales, and every rendered image
    is mapped to ``(x - mean) / std``.

    Parameters
    ----------
    images : array-like of shape (n_images, side, side)
        Source digits with values in [0, 1], e.g. ``load_mnist().data``. Stored without
        copy when float32 and C-contiguous.
    labels : array-like of shape (n_images,)
        Integer class labels.
    canvas_size : int, default=168
        Side of the square output images; at least the image side. Smaller canvases
        (56, 84) give CPU-sized experiments with the same code.
    distribution : {"loguniform", "lognormal"} or frozen scipy.stats distribution, \
default="loguniform"
        Distribution of the scales, always restricted to ``scale_range``.
        ``"loguniform"`` is log-uniform over ``scale_range``; ``"lognormal"`` is a
        log-normal distribution with median ``sqrt(low * high)`` and log standard
        deviation ``log(high / low) / 4``, truncated to the range. A frozen
        distribution (e.g. ``scipy.stats.lognorm(0.5, scale=2)``) is truncated to
        ``scale_range`` as well.
    scale_range : (float, float), default=(1.0, 8.0)
        Bounds ``0 < low < high`` of the scales. The paper uses (1, 2.83), (1, 4.76)
        and (1, 8).
    min_scale : float, default=1.0
        Smallest scale drawn when ``train`` is True.
    train : bool, default=True
        Whether this is a training set (applies ``min_scale``).
    normalize : bool or (float, float), default=True
        ``True``: estimate the mean and standard deviation as described above.
        ``(mean, std)``: use these, e.g. a training set's ``(mean, std)`` for its
        validation and test sets. ``False``: return raw intensities in [0, 1].
    random_state : int, RandomState instance or None, default=0
        Controls the scales drawn.
    object_fraction : float, default=20/28
        Fraction of the image side the object spans, for the check that the largest
        scale fits the canvas: MNIST digits fill a 20x20 box of their 28x28 image; pass
        1.0 for Fashion-MNIST, whose articles span the whole image.

    Attributes
    ----------
    images : torch.Tensor of shape (n_images, side, side)
        The source digits (shares memory with ``images`` when possible).
    scales : ndarray of shape (n_samples,)
        Scale of every sample.
    targets : ndarray of shape (n_samples,)
        Label of every sample.
    source_index : ndarray of shape (n_samples,)
        Index into ``images`` of every sample.
    mean, std : float
        Normalisation statistics (0 and 1 when ``normalize=False``).
    distribution : frozen scipy.stats distribution or None
        The untruncated scale distribution; ``None`` for :meth:`at_scales` sets.
    scale_range : (float, float)
        Interval the scales were drawn from (after ``min_scale``), or the smallest and
        largest grid scale.
    grid : ndarray or None
        The scales of an :meth:`at_scales` set, else ``None``.

    See Also
    --------
    scale_grid : The paper's evaluation scales.
    make_mnist_scale : MNIST-Scale, with downscaled digits on 28x28 images.

    Examples
    --------
    >>> from scipy import stats
    >>> from skscale.datasets import DynamicScaleMNIST, load_mnist
    >>> mnist = load_mnist(source="bundled")
    >>> train = DynamicScaleMNIST(mnist.data[:500], mnist.target[:500], canvas_size=56,
    ...                           scale_range=(1.0, 2.5))
    >>> image, label = train[0]
    >>> tuple(image.shape), image.dtype, bool(train.scales.min() >= 1.0)
    ((1, 56, 56), torch.float32, True)
    >>> X, y, scales = train.to_arrays()
    >>> X.shape, y.shape, scales.shape
    ((500, 1, 56, 56), (500,), (500,))
    """

    def __init__(
        self,
        images,
        labels,
        *,
        canvas_size=168,
        distribution="loguniform",
        scale_range=(1.0, 8.0),
        min_scale=1.0,
        train=True,
        normalize=True,
        random_state=0,
        object_fraction=MNIST_OBJECT_FRACTION,
    ):
        images, labels = check_images(images, labels)
        canvas_size, object_size = _check_geometry(images, canvas_size, object_fraction)
        low, high = _SCALE_RANGE.check(scale_range, "scale_range")
        _check_fits(high, object_size, canvas_size, "scale_range")
        frozen = _frozen_distribution(distribution, low, high)
        if Boolean().check(train, "train"):
            min_scale = _POSITIVE.check(min_scale, "min_scale")
            if min_scale >= high:
                raise ValueError(
                    f"min_scale={min_scale!r} leaves no training scales in scale_range={scale_range!r}."
                )
            low = max(low, min_scale)
        scales = _sample_truncated(frozen, low, high, len(labels), check_random_state(random_state))
        self.distribution = frozen
        self.scale_range = (low, high)
        self.grid = None
        self._setup(images, labels, np.arange(len(labels)), scales, canvas_size, normalize)

    @classmethod
    def at_scales(
        cls, images, labels, scales, *, canvas_size=168, normalize=True, object_fraction=MNIST_OBJECT_FRACTION
    ):
        """Evaluation set with every digit at every scale of ``scales``.

        Sample ``i`` is digit ``i % n_images`` at scale ``scales[i // n_images]``: all
        digits at the first scale, then all at the second, and so on.

        Parameters
        ----------
        images, labels : array-like
            As for the constructor.
        scales : array-like of shape (n_scales,)
            Positive scales, e.g. ``scale_grid(0.5, 3.5)``.
        canvas_size : int, default=168
            Side of the output images.
        normalize : bool or (float, float), default=True
            As for the constructor; pass the training set's ``(mean, std)`` to
            normalise test data like the training data.
        object_fraction : float, default=20/28
            As for the constructor.

        Returns
        -------
        dataset : DynamicScaleMNIST
            ``n_images * n_scales`` samples; ``grid`` holds ``scales``.

        Examples
        --------
        >>> from skscale.datasets import DynamicScaleMNIST, load_mnist, scale_grid
        >>> mnist = load_mnist(source="bundled")
        >>> test = DynamicScaleMNIST.at_scales(mnist.data[:10], mnist.target[:10],
        ...                                    scale_grid(0, 1, per_octave=4), canvas_size=56)
        >>> len(test), test.grid.round(2).tolist()
        (40, [1.0, 1.26, 1.59, 2.0])
        """
        images, labels = check_images(images, labels)
        canvas_size, object_size = _check_geometry(images, canvas_size, object_fraction)
        grid = np.asarray(scales, dtype=np.float64)
        if grid.ndim != 1 or not len(grid) or not (np.isfinite(grid).all() and (grid > 0).all()):
            raise ValueError(f"scales must be a non-empty 1-D array of positive numbers, got {scales!r}.")
        _check_fits(grid.max(), object_size, canvas_size, "scales")
        dataset = cls.__new__(cls)
        dataset.distribution = None
        dataset.scale_range = (float(grid.min()), float(grid.max()))
        dataset.grid = grid.copy()
        n_images = len(labels)
        dataset._setup(
            images,
            labels,
            np.tile(np.arange(n_images), len(grid)),
            np.repeat(grid, n_images),
            canvas_size,
            normalize,
        )
        return dataset

    def _setup(self, images, labels, source_index, scales, canvas_size, normalize):
        self.images = torch.from_numpy(images)
        self.source_index = source_index
        self.scales = np.asarray(scales, dtype=np.float64)
        self.targets = labels[source_index]
        self.canvas_size = canvas_size
        self.mean, self.std = 0.0, 1.0
        if normalize is True:
            self.mean, self.std = self._estimate_statistics()
        elif normalize is not False:
            if isinstance(normalize, (str, bytes)) or np.ndim(normalize) != 1 or len(normalize) != 2:
                raise ValueError(f"normalize must be a bool or a pair (mean, std), got {normalize!r}.")
            self.mean = _MEAN.check(normalize[0], "normalize[0] (the mean)")
            self.std = _POSITIVE.check(normalize[1], "normalize[1] (the std)")

    def _render(self, indices):
        """Images of the samples ``indices``, shape (B, 1, canvas, canvas), normalised."""
        with torch.no_grad():
            images = rescale_about_centre(
                self.images[torch.from_numpy(np.asarray(self.source_index[indices]))],
                self.scales[indices],
                output_size=self.canvas_size,
                clip=(0.0, 1.0),
            )
        if self.mean != 0.0 or self.std != 1.0:
            images = images.sub_(self.mean).div_(self.std)
        return images.unsqueeze(1)

    def _estimate_statistics(self):
        n_samples = len(self)
        chosen = np.random.RandomState(0).permutation(n_samples)[:_N_STATISTICS_SAMPLES]
        chosen.sort()
        total, total_squares, count = 0.0, 0.0, 0
        for start in range(0, len(chosen), _STATISTICS_BATCH):
            batch = self._render(chosen[start : start + _STATISTICS_BATCH]).double()
            total += float(batch.sum())
            total_squares += float((batch**2).sum())
            count += batch.numel()
        mean = total / count
        std = np.sqrt(max(total_squares / count - mean**2, 0.0))
        if not std > 0:
            raise ValueError(
                "The rendered images are constant; they cannot be normalised (use normalize=False)."
            )
        return mean, float(std)

    def __len__(self):
        return len(self.scales)

    def _check_index(self, index):
        try:
            position = operator.index(index)
        except TypeError:
            raise TypeError(
                f"DynamicScaleMNIST indices must be integers, got {type(index).__name__}."
            ) from None
        if position < 0:
            position += len(self)
        if not 0 <= position < len(self):
            raise IndexError(f"index {index} is out of range for {len(self)} samples.")
        return position

    def __getitem__(self, index):
        """Return ``(image, label)``: a float32 tensor (1, canvas, canvas) and an int."""
        position = self._check_index(index)
        return self._render(np.array([position]))[0], int(self.targets[position])

    def __getitems__(self, indices):
        """Render a batch at once (used by :class:`torch.utils.data.DataLoader`)."""
        positions = np.array([self._check_index(index) for index in indices], dtype=np.int64)
        images = self._render(positions)
        return [(image, int(label)) for image, label in zip(images, self.targets[positions])]

    def to_arrays(self, indices=None, *, add_channel_axis=True, batch_size=256):
        """Materialise (part of) the dataset as numpy arrays for the estimator API.

        Parameters
        ----------
        indices : array-like of int, default=None
            Samples to render; ``None`` renders all. Mind the memory: a 168x168
            float32 image takes 110 kB.
        add_channel_axis : bool, default=True
            Return images of shape (n, 1, canvas, canvas) rather than (n, canvas, canvas).
        batch_size : int, default=256
            Images rendered per call.

        Returns
        -------
        X : ndarray of shape (n, 1, canvas, canvas) or (n, canvas, canvas), float32
            Images, normalised like the samples.
        y : ndarray of shape (n,), int64
            Labels.
        scales : ndarray of shape (n,), float64
            Scale of every image.
        """
        if indices is None:
            positions = np.arange(len(self))
        else:
            positions = np.array(
                [self._check_index(index) for index in np.asarray(indices).ravel()], dtype=np.int64
            )
        batch_size = _COUNT.check(batch_size, "batch_size")
        X = np.empty((len(positions), 1, self.canvas_size, self.canvas_size), dtype=np.float32)
        for start in range(0, len(positions), batch_size):
            batch = positions[start : start + batch_size]
            X[start : start + len(batch)] = self._render(batch).numpy()
        if not add_channel_axis:
            X = X[:, 0]
        return X, self.targets[positions].copy(), self.scales[positions].copy()

    def __repr__(self):
        low, high = self.scale_range
        kind = f"grid of {len(self.grid)} scales" if self.grid is not None else "sampled scales"
        return (
            f"{type(self).__name__}(n_samples={len(self)}, canvas_size={self.canvas_size}, "
            f"{kind} in [{low:.3g}, {high:.3g}], mean={self.mean:.4f}, std={self.std:.4f})"
        )

"""ScaleEquivariantClassifier: a scikit-learn classifier built on skorch's hooks.

skorch does the training (``fit`` -> ``initialize`` -> ``partial_fit`` -> ``fit_loop``);
this class adds what the network needs from the data and the scikit-learn contract:

- ``fit`` / ``partial_fit`` read the images (arrays or a torch ``Dataset``), learn
  ``input_shape_`` and the classes (skorch's ``classes`` / ``classes_inferred_``), then
  hand over to skorch;
- ``get_dataset`` gives the network class indices, ``predict`` returns the original
  labels, and the scorers' default ``target_extractor`` maps indices back to labels;
- ``initialize_module`` builds the network (a registered ``architecture`` or ``module``)
  and refuses kernels that cannot fit the memory before any of it is allocated;
- ``evaluation_step`` splits prediction batches so that one forward pass stays within
  ``working_memory``; ``train_step_single`` applies ``scale_augmentation``.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import numbers
import os
import warnings
import weakref

import numpy as np
import sklearn
import torch
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d
from skorch import NeuralNetClassifier
from skorch.callbacks import EarlyStopping, EpochScoring, ProgressBar
from skorch.dataset import ValidSplit, unpack_data
from skorch.utils import is_dataset, to_numpy, to_tensor

from .augmentation import augmentation_generator, log_uniform_factors, rescale_batch
from .callbacks import SCALE_PARAM_GROUP, ScaleLRWarmup, ScaleTrajectory
from .nn import build_module, find_internal_scales
from .nn.scales import PARAMETERISATIONS
from .scale_estimation import estimate_scales
from .tolerance import ToleranceModel
from .utils.validation import AnyOf, Boolean, Integer, Options, Pair, Real, check_params

__all__ = ["ScaleEquivariantClassifier", "LargeKernelWarning"]

# Bytes of a float32 value and of a complex64 value (the FFT path's spectra).
_FLOAT_BYTES = 4
_COMPLEX_BYTES = 8

# init_isr="auto": the scales are estimated on at most this many training images (evenly
# spaced through the training set), and the recommended ISR is raised to at least
# _AUTO_ISR_FLOOR: at ISR = 1 + gamma**2 (Eq. 5) close to 1 the gradient 2 gamma of the ISR
# vanishes, and the learned ISR could hardly move away.
_AUTO_MAX_IMAGES = 500
_AUTO_ISR_FLOOR = 1.25


# Formats of ScaleEquivariantClassifier.export.
_EXPORT_FORMATS = ("torch", "torchscript", "onnx")


# Estimated activation bytes per image of a network, by (image shape, kernel sizes); kept
# outside the estimator, whose state prediction must not change.
_BYTES_PER_IMAGE = weakref.WeakKeyDictionary()


class LargeKernelWarning(UserWarning):
    """The initial kernels are far larger than the images (e.g. tabular rows read as 1 x F images)."""


class _LabelsFromIndices:
    """``target_extractor`` of skorch's scorers: batches hold class indices, ``predict`` labels."""

    def __init__(self, classes=None):
        self.classes = classes

    def __call__(self, y):
        y = to_numpy(y)
        return y if self.classes is None else self.classes[y]


class _ImageDataset(torch.utils.data.Dataset):
    """A user's Dataset of ``(image, label)`` as ``(float32 (C, H, W) tensor, class index)``.

    ``classes=None`` (prediction) ignores the labels. Images of another ``shape`` than
    the network reads are refused with the sample's index.
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
        label = item[1]
        label = label.item() if hasattr(label, "item") else label
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


def _dataset_targets(dataset):
    """The labels of a Dataset from its ``targets`` attribute (through Subsets), or None."""
    if isinstance(dataset, torch.utils.data.Subset):
        targets = _dataset_targets(dataset.dataset)
        return None if targets is None else targets[np.asarray(dataset.indices)]
    targets = getattr(dataset, "targets", None)
    if targets is None:
        return None
    return np.asarray(to_numpy(targets) if torch.is_tensor(targets) else targets)


def _dataset_labels(dataset):
    """All labels of a Dataset: its ``targets``, else read sample by sample."""
    targets = _dataset_targets(dataset)
    if targets is not None:
        return targets
    labels = [dataset[i][1] for i in range(len(dataset))]
    return np.asarray([label.item() if hasattr(label, "item") else label for label in labels])


def _device_memory(device):
    """Total memory of ``device`` in bytes (GPU memory, or the machine's RAM), or None if unknown."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return None


def _scale_convolutions(module):
    """Layers whose kernels follow the internal scales (they expose ``kernel_sizes()``)."""
    return [m for m in module.modules() if callable(getattr(m, "kernel_sizes", None))]


def _nbytes(output):
    if torch.is_tensor(output):
        return output.numel() * output.element_size()
    if isinstance(output, (tuple, list)):
        return sum(_nbytes(item) for item in output)
    return 0


def _gib(n_bytes):
    return f"{n_bytes / 2**30:.3g} GiB"


class ScaleEquivariantClassifier(NeuralNetClassifier):
    """Scale-equivariant CNN classifier with learnable internal scales.

    A skorch :class:`~skorch.NeuralNetClassifier` whose network is built from the
    hyper-parameters below and the shape of the training images, so it can be used like
    any scikit-learn classifier: ``fit``/``predict``/``score``, ``clone``, ``Pipeline``,
    ``GridSearchCV`` over ``parameterisation`` and ``init_isr``, pickling. It also trains
    on any torch ``Dataset`` of ``(image, label)`` pairs (``fit(dataset)``), streamed
    through skorch's iterators (``iterator_train__num_workers`` works).

    Parameters
    ----------
    architecture : str, default="table1"
        A network of :data:`skscale.nn.ARCHITECTURES`: ``"table1"`` (the paper's Table 1:
        one lifting scale convolution, 2,780 parameters for 10 classes), ``"sesn"`` (the
        SESN MNIST network, 494,551 parameters) or ``"cnn"`` (a plain CNN of the same size,
        no internal scales). Register more with :func:`skscale.nn.register_architecture`.
        Ignored when ``module`` is given.
    n_scales : int, default=3
        Number of internal scales ``N_S``.
    parameterisation : {"isr", "authors", "log", "ratios", "spacing", "direct", "fixed"}, default="isr"
        How the internal scales are learned (see :class:`skscale.nn.InternalScales`);
        ``"fixed"`` is the SESN baseline with hand-picked scales.
    init_sigma_basis : float, default=2.0
        Initial smallest internal scale, in pixels.
    init_isr : float or "auto", default=3.0
        Initial internal scale range (> 1). :class:`skscale.ToleranceModel` recommends
        one for a known data scale distribution. ``"auto"`` finds it from the training
        images: ``fit`` estimates their object scales with
        :func:`skscale.estimate_scales` (with the labels; on at most 500 images, evenly
        spaced through the training set; images without an object are left out), fits
        ``ToleranceModel(n_scales)`` to them and starts from its ``isr_[0]``, raised to at
        least 1.25 so that a learned ISR can still move (the gradient of ``ISR = 1 +
        gamma**2`` vanishes at 1). Each fit estimates anew, so inside ``GridSearchCV``
        every fold uses only its own training images. ``initialize()`` before ``fit``
        needs a number.
    kernel_extent : float, default=2.0
        ``k`` of Eq. 6: kernels span ``2 ceil(k sigma) + 1`` pixels. When the scales
        are learned, prefer ``kernel_extent=4`` (the paper authors' setting): at ``k=2``
        the kernel window cuts off part of the higher-order Hermite functions, which
        biases the learned scales downwards (``benchmarks/results/kernel_extent-cpu.md``).
    n_filters : int, default=16
        Filters of the ``"table1"`` network (other architectures have fixed widths).
    image_shape : tuple of int, optional
        ``(height, width)`` or ``(height, width, channels)``: how to read 2-D input rows
        (channels-last, C order, as images are usually flattened). Without it, 2-D input
        rows are read as ``1 x n_features`` single-channel images. 3-D input is
        ``(n_samples, height, width)`` and 4-D input ``(n_samples, channels, height,
        width)``; if ``image_shape`` is also given it must agree with them. With
        ``image_shape`` and ``classes``, ``initialize()`` builds the network before any
        data is seen (e.g. to ``load_params`` a saved network).
    scale_lr : float, optional
        Learning rate of the scale parameters (the paper schedules them apart from the
        weights); defaults to ``lr``.
    scale_warmup_epochs : int, default=0
        Linear warm-up of the scale learning rate from 0 over this many epochs, step by
        step (:class:`skscale.callbacks.ScaleLRWarmup`): a multiplier on the rate, which
        a skorch ``LRScheduler`` in ``callbacks`` keeps scheduling.
    scale_augmentation : (float, float), optional
        ``(low, high)``: every training batch is rescaled about the image centre, each
        image by its own factor drawn log-uniformly from ``[low, high]`` and redrawn in
        every epoch (the paper's "+" setting). Reproducible with ``random_state``; off
        for prediction and for the internal validation split.
    early_stopping : bool, default=False
        Hold out a seeded, stratified ``validation_fraction`` of the training data and stop
        when the validation loss has not improved for ``n_iter_no_change`` epochs,
        restoring the best weights (as :class:`~sklearn.neural_network.MLPClassifier`).
    validation_fraction : float, default=0.1
        Used only with ``early_stopping=True``.
    n_iter_no_change : int, default=10
        Used only with ``early_stopping=True``.
    working_memory : float, optional
        Memory budget, in MiB, of one forward pass at prediction: ``predict``,
        ``predict_proba`` and the validation scores split their batches so that the
        estimated activations of one call stay below it (at least one image per call).
        The estimate per image sums the outputs of every layer of the built network plus
        the zero-padded spectra of every scale convolution. Defaults to scikit-learn's
        ``working_memory`` setting (1024 MiB unless changed with
        :func:`sklearn.set_config`).
    random_state : int, RandomState instance or None, default=None
        Seeds the weight initialisation, the batch order, dropout, the scale augmentation
        and the validation split: two fits with the same integer give identical
        predictions on the CPU. The global torch random state is left as it was.
    module : torch.nn.Module class or instance, or callable, optional
        Your own network instead of ``architecture``, with skorch's semantics: a class
        (or any builder) is called like a registered architecture, ``module(n_classes,
        in_channels, **module__kwargs)`` plus those of ``n_scales``, ``init_isr``, ...
        that its signature names; an instance is used as it is (with ``module__*``
        arguments it is rebuilt from its class).
    classes : array-like, optional
        All class labels, in the order of the ``predict_proba`` columns. Needed when a
        ``Dataset`` without a ``targets`` attribute is fitted; inferred from ``y`` (or
        ``targets``) otherwise.
    criterion, optimizer, lr, max_epochs, batch_size, train_split, callbacks, verbose, device, **kwargs
        skorch arguments (see :class:`skorch.NeuralNet`), with defaults suited to
        MNIST-sized data: cross-entropy loss, Adam, ``lr=1e-3``, 10 epochs, batch size 64,
        no internal validation split, silent. ``verbose=1`` prints skorch's per-epoch
        table, ``verbose=2`` adds a progress bar. Prefixed arguments (``module__``,
        ``optimizer__``, ``callbacks__``, ``iterator_train__`` ...) are routed by skorch;
        ``module__*`` arguments reach the network's builder. Inside skorch's training loop
        the targets are class indices; scorers keeping skorch's default
        ``target_extractor`` see the original labels.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels, of the type given in ``y``.
    n_features_in_ : int
        Number of values per sample (``channels * height * width``).
    input_shape_ : tuple of int
        ``(channels, height, width)`` of the images the network reads.
    init_isr_ : float
        The initial ISR the network started from: ``init_isr``, or the estimated one
        for ``init_isr="auto"``.
    tolerance_ : ToleranceModel or None
        With ``init_isr="auto"``, the tolerance model fitted to the estimated scales of
        the training images (``tolerance_.isr_[0]`` before the floor of 1.25); None
        for a numeric ``init_isr``, and when the estimated scales do not spread at all
        (a warning says so, and the fit starts from 1.25).
    scales_ : ndarray of shape (n_scales,) or None
        Current internal scales (None for networks without them); read from the network,
        so ``load_params`` and checkpoints update it.
    sigma_basis_ : float or None
        Smallest internal scale.
    isr_ : float or None
        Internal scale range.
    module_ : torch.nn.Module
        The trained network.
    history : skorch.History
        Per-epoch record, including ``sigma_basis``, ``isr`` and ``scales``.

    Examples
    --------
    >>> import numpy as np
    >>> from skscale import ScaleEquivariantClassifier
    >>> rng = np.random.RandomState(0)
    >>> X = rng.rand(40, 12, 12).astype("float32")
    >>> y = np.where(X[:, 4:8, 4:8].mean(axis=(1, 2)) > 0.5, "bright", "dark")
    >>> clf = ScaleEquivariantClassifier(n_filters=4, init_sigma_basis=1.0, init_isr=2.0,
    ...                                  max_epochs=2, random_state=0).fit(X, y)
    >>> clf.predict(X[:3]).dtype.kind
    'U'
    >>> clf.scales_.shape
    (3,)
    """

    _parameter_constraints = {
        "n_scales": Integer(low=1),
        "parameterisation": Options(PARAMETERISATIONS),
        "init_sigma_basis": Real(low=0, closed="neither"),
        "init_isr": AnyOf(Real(low=1, closed="neither"), Options(("auto",))),
        "kernel_extent": Real(low=0, closed="neither"),
        "n_filters": Integer(low=1),
        "scale_lr": Real(low=0, allow_none=True),
        "scale_warmup_epochs": Integer(low=0),
        "scale_augmentation": Pair(Real(low=0, closed="neither"), allow_equal=True, allow_none=True),
        "early_stopping": Boolean(),
        "validation_fraction": Real(low=0, high=1, closed="neither"),
        "n_iter_no_change": Integer(low=1),
        "working_memory": Real(low=0, closed="neither", allow_none=True),
        "lr": Real(low=0, closed="neither"),
        "max_epochs": Integer(low=1),
        "batch_size": Integer(low=1),
    }

    # Set by fit while skorch's fit calls partial_fit (the data is validated by then).
    _in_fit_ = False

    def __init__(
        self,
        architecture="table1",
        n_scales=3,
        parameterisation="isr",
        init_sigma_basis=2.0,
        init_isr=3.0,
        kernel_extent=2.0,
        n_filters=16,
        image_shape=None,
        scale_lr=None,
        scale_warmup_epochs=0,
        scale_augmentation=None,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        working_memory=None,
        random_state=None,
        *,
        module=None,
        classes=None,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=1e-3,
        max_epochs=10,
        batch_size=64,
        train_split=None,
        callbacks=None,
        verbose=0,
        device="cpu",
        **kwargs,
    ):
        super().__init__(
            module,
            criterion=criterion,
            optimizer=optimizer,
            lr=lr,
            max_epochs=max_epochs,
            batch_size=batch_size,
            train_split=train_split,
            callbacks=callbacks,
            verbose=verbose,
            device=device,
            classes=classes,
            **kwargs,
        )
        self.architecture = architecture
        self.n_scales = n_scales
        self.parameterisation = parameterisation
        self.init_sigma_basis = init_sigma_basis
        self.init_isr = init_isr
        self.kernel_extent = kernel_extent
        self.n_filters = n_filters
        self.image_shape = image_shape
        self.scale_lr = scale_lr
        self.scale_warmup_epochs = scale_warmup_epochs
        self.scale_augmentation = scale_augmentation
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.working_memory = working_memory
        self.random_state = random_state

    # ------------------------------------------------------------------ validation
    def _check_params(self):
        check_params(
            {name: getattr(self, name) for name in self._parameter_constraints}, self._parameter_constraints
        )
        module = self.module
        if not (module is None or isinstance(module, torch.nn.Module) or callable(module)):
            raise ValueError(
                "module must be None, a torch.nn.Module class or instance, or a callable that builds one, "
                f"got {module!r}."
            )
        check_random_state(self.random_state)
        self._validate_device()

    def _validate_device(self):
        device = self.device
        if device is None:  # skorch: leave the modules where they are
            return
        try:
            parsed = torch.device(device)
        except (RuntimeError, TypeError):
            raise ValueError(
                f"device must name a torch device such as 'cpu' or 'cuda', got {device!r}."
            ) from None
        if parsed.type == "cuda":
            if not torch.cuda.is_available():
                raise ValueError(
                    f"device={device!r} asks for a GPU, but CUDA is not available to this torch "
                    f"({torch.__version__}); use device='cpu'."
                )
            if parsed.index is not None and parsed.index >= torch.cuda.device_count():
                raise ValueError(
                    f"device={device!r} names GPU {parsed.index}, but only "
                    f"{torch.cuda.device_count()} are visible."
                )
        elif parsed.type == "mps" and not torch.backends.mps.is_available():
            raise ValueError(
                f"device={device!r} asks for Apple's MPS, which is not available; use device='cpu'."
            )

    def _image_shape_tuple(self):
        """``image_shape`` as ``(channels, height, width)``, or None."""
        shape = self.image_shape
        if shape is None:
            return None
        try:
            values = tuple(shape)
        except TypeError:
            values = ()
        side = Integer(low=1)
        if len(values) not in (2, 3) or not all(side.is_valid(value) for value in values):
            raise ValueError(
                "image_shape must be (height, width) or (height, width, channels) of positive "
                f"integers, got {shape!r}."
            )
        height, width = int(values[0]), int(values[1])
        channels = int(values[2]) if len(values) == 3 else 1
        return channels, height, width

    def _as_images(self, X):
        """Validate X and return float32 images (N, C, H, W)."""
        X = check_array(X, allow_nd=True, dtype=np.float32, ensure_all_finite=True, input_name="X")
        expected = self._image_shape_tuple()
        if X.ndim == 2:
            if expected is None:
                return X.reshape(X.shape[0], 1, 1, X.shape[1])
            channels, height, width = expected
            if X.shape[1] != channels * height * width:
                raise ValueError(
                    f"X has {X.shape[1]} features per row, but image_shape={self.image_shape!r} "
                    f"needs {channels * height * width}."
                )
            images = X.reshape(X.shape[0], height, width, channels).transpose(0, 3, 1, 2)
            return np.ascontiguousarray(images)
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
                f"{tuple(images.shape[1:])}; "
                "every image needs at least one channel, row and column."
            )
        if expected is not None and tuple(images.shape[1:]) != expected:
            raise ValueError(
                f"image_shape={self.image_shape!r} does not match X of shape {X.shape} "
                f"(read as images of shape {tuple(images.shape[1:])} (channels, height, width))."
            )
        return images

    def _check_input_shape(self, shape):
        if tuple(shape) != self.input_shape_:
            raise ValueError(
                f"X has {int(np.prod(shape))} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input (images of shape {tuple(shape)} "
                f"(channels, height, width) instead of {self.input_shape_})."
            )

    def _set_input_shape(self, shape):
        self.input_shape_ = tuple(int(v) for v in shape)
        self.n_features_in_ = int(np.prod(self.input_shape_))

    def _learn_classes(self, X, y, classes):
        """Fix ``classes_`` at the first fit: skorch's ``classes``, the ``classes`` of
        ``partial_fit``, the labels ``y`` or a Dataset's ``targets``."""
        if self.classes is None:
            if classes is not None:
                self.classes_inferred_ = np.unique(np.asarray(classes))
            elif y is not None:
                super().check_data(X, y)  # skorch's inference: np.unique(y)
            else:
                targets = _dataset_targets(X)
                if targets is None:
                    raise ValueError(
                        f"X is a {type(X).__name__} without a 'targets' attribute, so its classes are "
                        "unknown "
                        "before training; pass classes=[...] (all labels it yields)."
                    )
                self.classes_inferred_ = np.unique(targets)
        if len(self.classes_) < 2:
            raise ValueError(
                f"y must hold at least two classes, got {len(self.classes_)} class: "
                f"{self.classes_.tolist()!r}."
            )

    def _validate_training_data(self, X, y, reset, classes=None):
        """Images and labels for skorch; with ``reset`` the input shape and classes are learned."""
        if is_dataset(X):
            if y is not None:
                raise ValueError(
                    f"y must be None when X is a Dataset (the dataset yields the labels), got {y!r}."
                )
            if len(X) == 0:
                raise ValueError("X is an empty Dataset; it must yield at least one (image, label) pair.")
            first = _ImageDataset(X)[0][0]
            if first.ndim != 3 or min(first.shape) == 0:
                raise ValueError(
                    "a Dataset must yield (image, label) with images of shape (height, width) or (channels, "
                    f"height, width), none empty; sample 0 is an image of shape {tuple(first.shape)}."
                )
            if reset:
                self._set_input_shape(first.shape)
                self._learn_classes(X, None, classes)
            dataset = _ImageDataset(X, self.classes_, self.input_shape_)
            if reset and self._auto_init_isr():
                self._check_params()
                self._estimate_init_isr(dataset, None)
            return dataset, None
        images = self._as_images(X)
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None.")
        y = column_or_1d(y, warn=True)
        if len(y) != len(images):
            raise ValueError(f"X and y have different numbers of samples: {len(images)} and {len(y)}.")
        check_classification_targets(y)
        if reset:
            self._set_input_shape(images.shape[1:])
            self._learn_classes(images, y, classes)
            if self._auto_init_isr():
                self._check_params()
                self._estimate_init_isr(images, y)
        return images, y

    def _encode(self, y):
        """Class indices of the labels ``y`` (their positions in ``classes_``)."""
        classes = self.classes_
        order = np.argsort(classes, kind="stable")
        positions = order[np.clip(np.searchsorted(classes, y, sorter=order), 0, len(classes) - 1)]
        unknown = classes[positions] != y
        if unknown.any():
            raise ValueError(
                f"y holds labels that are not among the classes {classes.tolist()!r}: "
                f"{np.unique(np.asarray(y)[unknown]).tolist()!r}."
            )
        return positions.astype(np.int64)

    # ------------------------------------------------------------------ skorch hooks
    def __sklearn_is_fitted__(self):
        return hasattr(self, "input_shape_") and getattr(self, "initialized_", False)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags

    def _get_param_names(self):
        # skorch lists every attribute not ending in "_", its private _params_to_validate
        # included; that one is bookkeeping, not a hyper-parameter (clone rebuilds it).
        return [name for name in super()._get_param_names() if not name.startswith("_")]

    def set_params(self, **kwargs):
        """Set parameters (see :meth:`skorch.NeuralNet.set_params`).

        Before the first fit a new ``callbacks`` list is only stored, as scikit-learn's
        ``set_params`` must (skorch would build the callbacks at once); ``initialize()``
        builds them with every other component.
        """
        if "callbacks" in kwargs and not self.initialized_:
            self.callbacks = kwargs.pop("callbacks")
        return super().set_params(**kwargs)

    def check_data(self, X, y):
        """skorch's check at the start of every training loop: images of the fitted shape.

        ``fit`` and ``partial_fit`` fixed the classes before; unlike skorch's default,
        they are not inferred again here (a ``partial_fit`` batch may hold a few classes).
        """
        if not is_dataset(X):
            self._check_input_shape(X.shape[1:])

    def get_dataset(self, X, y=None):
        """skorch's dataset of the images, with the labels as class indices."""
        if y is not None and not is_dataset(X):
            y = self._encode(y)
        return super().get_dataset(X, y)

    def initialize(self):
        """Validate the hyper-parameters, then build the network, criterion and optimiser.

        Before ``fit`` the network needs the image channels and the classes: give
        ``image_shape`` and ``classes`` (e.g. to ``load_params`` a saved network).
        """
        self._check_params()
        if not hasattr(self, "input_shape_"):
            shape = self._image_shape_tuple()
            if shape is None or self.classes is None:
                raise ValueError(
                    f"{type(self).__name__}.initialize() before fit needs image_shape and classes to build "
                    f"the network, got image_shape={self.image_shape!r} and classes={self.classes!r}; "
                    "pass both, or call fit."
                )
            self._set_input_shape(shape)
        return super().initialize()

    def initialize_module(self):
        """Build the network: ``module`` (skorch's semantics) or the registered ``architecture``."""
        arguments = self.get_params_for("module")
        builder = self.architecture if self.module is None else self.module
        self._set_init_isr()
        if isinstance(builder, torch.nn.Module):
            if not arguments:
                self._check_kernels(builder)
                self.module_ = builder
                return self
            builder = type(builder)
        defaults = dict(
            n_scales=self.n_scales,
            parameterisation=self.parameterisation,
            init_sigma_basis=float(self.init_sigma_basis),
            init_isr=self.init_isr_,
            kernel_extent=float(self.kernel_extent),
            n_filters=self.n_filters,
        )
        module = build_module(
            builder,
            n_classes=len(self.classes_),
            in_channels=self.input_shape_[0],
            defaults=defaults,
            **arguments,
        )
        if not isinstance(module, torch.nn.Module):
            raise ValueError(
                f"module must build a torch.nn.Module, but {builder!r} returned {type(module).__name__}."
            )
        self._check_kernels(module)
        self.module_ = module
        return self

    def _auto_init_isr(self):
        return isinstance(self.init_isr, str) and self.init_isr == "auto"

    def _set_init_isr(self):
        """``init_isr_`` (and ``tolerance_``) for a numeric ``init_isr``; "auto" needs a fit first."""
        if not self._auto_init_isr():
            self.init_isr_, self.tolerance_ = float(self.init_isr), None
        elif not hasattr(self, "init_isr_"):
            raise ValueError(
                "init_isr='auto' estimates the initial ISR from the training images, so "
                f"{type(self).__name__}.initialize() before fit needs a number; pass e.g. init_isr=3.0, "
                "or call fit."
            )

    def _estimate_init_isr(self, X, y):
        """``init_isr="auto"``: estimate the training images' scales and fit the tolerance model.

        ``X`` is an array of images (n, C, H, W) with its labels ``y``, or an
        ``_ImageDataset`` yielding ``(image, class index)``.
        """
        n_samples = len(X)
        chosen = np.linspace(0, n_samples - 1, min(n_samples, _AUTO_MAX_IMAGES)).round().astype(int)
        if is_dataset(X):
            items = [X[int(i)] for i in chosen]
            images = torch.stack([image for image, _ in items]).numpy()
            labels = np.asarray([label for _, label in items])
        else:
            images, labels = X[chosen], np.asarray(y)[chosen]
        scales = estimate_scales(images, labels)
        scales = scales[np.isfinite(scales)]
        if not len(scales):
            raise ValueError(
                f"init_isr='auto' found no object in the {len(chosen)} training images it read (all blank "
                "or constant), so it cannot estimate their scales; pass a number as init_isr."
            )
        if np.unique(scales).size < 2:
            warnings.warn(
                f"init_isr='auto': the estimated scales of the {len(scales)} training images do not spread "
                f"(estimation noise explains all of their variance); starting from ISR {_AUTO_ISR_FLOOR}.",
                UserWarning,
                stacklevel=4,
            )
            self.tolerance_, self.init_isr_ = None, _AUTO_ISR_FLOOR
            return
        self.tolerance_ = ToleranceModel(n_scales=self.n_scales).fit(scales)
        self.init_isr_ = max(float(self.tolerance_.isr_[0]), _AUTO_ISR_FLOOR)

    def _check_kernels(self, module):
        """Refuse kernels that cannot fit the memory; warn when they dwarf the images.

        The estimate (Eq. 6 sizes of the current scales, the image size) is a lower bound
        of what one training batch allocates: every scale convolution's basis and
        kernels, and per image its zero-padded input and output spectra.
        """
        _, height, width = self.input_shape_
        fixed, per_image, largest = 0, 0, 0
        for layer in _scale_convolutions(module):
            sizes = [int(size) for size in layer.kernel_sizes()]
            area = sum(size * size for size in sizes)
            size = max(sizes)
            largest = max(largest, size)
            channels = getattr(layer, "in_channels", 1) * getattr(layer, "scale_size", 1)
            filters = getattr(layer, "n_functions", 1) + channels * getattr(layer, "out_channels", 1)
            fixed += _FLOAT_BYTES * filters * area
            padded = (height + size - 1) * (width + size - 1)
            per_image += _COMPLEX_BYTES * (channels + getattr(layer, "out_channels", 1)) * len(sizes) * padded
        if not largest:
            return
        needed = fixed + self.batch_size * per_image
        available = _device_memory(self.device or "cpu")
        if available is not None and needed > available:
            raise ValueError(
                f"The largest initial kernel spans {largest} x {largest} pixels (Eq. 6 with init_sigma_basis="
                f"{self.init_sigma_basis!r}, init_isr={self.init_isr_!r}, "
                f"kernel_extent={self.kernel_extent!r}) on {height} x {width} images: one batch of "
                f"{self.batch_size} needs at least {_gib(needed)}, "
                f"more than the {_gib(available)} of device {str(self.device)!r}. Lower init_isr, "
                "init_sigma_basis or kernel_extent (or batch_size)."
            )
        if largest > 4 * max(height, width):
            warnings.warn(
                f"The largest initial kernel spans {largest} pixels but the images are {height} x {width}; "
                "pass image_shape for flattened images, or lower init_sigma_basis / init_isr.",
                LargeKernelWarning,
                stacklevel=2,
            )

    def initialize_optimizer(self, triggered_directly=None):
        """Adam (by default) with the scale parameters in a group of their own (``scale_lr``)."""
        scale_ids = {id(p) for scales in find_internal_scales(self.module_) for p in scales.parameters()}
        named = list(self.get_all_learnable_params())
        weights = [(name, p) for name, p in named if id(p) not in scale_ids]
        args, kwargs = self.get_params_for_optimizer("optimizer", weights)
        groups = list(args[0])
        scale_params = [p for _, p in named if id(p) in scale_ids]
        if scale_params:
            scale_lr = kwargs["lr"] if self.scale_lr is None else self.scale_lr
            groups.append({"params": scale_params, "lr": scale_lr, "name": SCALE_PARAM_GROUP})
        self.optimizer_ = self.optimizer(groups, **kwargs)
        return self

    @property
    def _default_callbacks(self):
        callbacks = super()._default_callbacks
        # The per-epoch list of scales stays in the history but out of the printed table.
        dict(callbacks)["print_log"].set_params(keys_ignored=["scales", "scale_lr"])
        callbacks.append(("scale_trajectory", ScaleTrajectory()))
        callbacks.append(("scale_lr_warmup", ScaleLRWarmup(self.scale_warmup_epochs)))
        if self.early_stopping is True or self.early_stopping is np.True_:
            stopping = EarlyStopping(
                monitor="valid_loss", patience=self.n_iter_no_change, load_best=True, sink=lambda *args: None
            )
            callbacks.append(("early_stopping", stopping))
        if isinstance(self.verbose, numbers.Real) and self.verbose >= 2:
            callbacks.append(("progress_bar", ProgressBar()))
        return callbacks

    def initialize_callbacks(self):
        """skorch's callbacks; scorers with the default ``target_extractor`` compare labels."""
        super().initialize_callbacks()
        classes = getattr(self, "classes_", None)
        for _, callback in self.callbacks_:
            if isinstance(callback, EpochScoring) and (
                callback.target_extractor is to_numpy
                or isinstance(callback.target_extractor, _LabelsFromIndices)
            ):
                callback.target_extractor = _LabelsFromIndices(classes)
        return self

    def get_split_datasets(self, X, y=None, **fit_params):
        if not (self.early_stopping is True or self.early_stopping is np.True_):
            return super().get_split_datasets(X, y, **fit_params)
        dataset = self.get_dataset(X, y)
        if y is None:
            y = _dataset_targets(getattr(dataset, "dataset", dataset))
        split = ValidSplit(self.validation_fraction, stratified=y is not None, random_state=self._seed_ or 0)
        return split(dataset, y, **fit_params) if y is not None else split(dataset, **fit_params)

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        """Seed the scale augmentation for this training call (after ``len(history)`` epochs)."""
        super().on_train_begin(net, X=X, y=y, **kwargs)
        if self.scale_augmentation is not None:
            self._augmentation_rng_ = augmentation_generator(self._seed_, len(self.history))

    def train_step_single(self, batch, **fit_params):
        """skorch's training step, on images rescaled by ``scale_augmentation`` if set."""
        if self.scale_augmentation is None:
            return super().train_step_single(batch, **fit_params)
        images, targets = unpack_data(batch)
        low, high = self.scale_augmentation
        factors = log_uniform_factors(len(images), low, high, self._augmentation_rng_)
        return super().train_step_single((rescale_batch(images, factors), targets), **fit_params)

    def evaluation_step(self, batch, training=False):
        """skorch's inference step, in pieces of at most ``working_memory`` of activations."""
        images, _ = unpack_data(batch)
        if training or not torch.is_tensor(images) or len(images) <= 1:
            return super().evaluation_step(batch, training)
        limit = self.inference_batch_size(tuple(images.shape[1:]))
        if len(images) <= limit:
            return super().evaluation_step(batch, training)
        step = super().evaluation_step
        outputs = [step((piece, None), training) for piece in images.split(limit)]
        if isinstance(outputs[0], tuple):
            return tuple(torch.cat(parts) for parts in zip(*outputs))
        return torch.cat(outputs)

    def inference_batch_size(self, image_shape=None):
        """Images per forward pass at prediction, so that one pass stays within ``working_memory``.

        Parameters
        ----------
        image_shape : tuple of int, optional
            ``(channels, height, width)``; defaults to ``input_shape_``.

        Returns
        -------
        n_images : int
            ``working_memory`` (MiB) divided by the estimated activation bytes of one
            image, at least 1.
        """
        check_is_fitted(self)
        shape = self.input_shape_ if image_shape is None else tuple(image_shape)
        budget = (
            self.working_memory if self.working_memory is not None else sklearn.get_config()["working_memory"]
        )
        return max(1, int(budget * 2**20 // self._bytes_per_image(shape)))

    def _bytes_per_image(self, shape):
        """Activation bytes of one image: every layer's output, plus each scale convolution's
        zero-padded input and output spectra (complex64 on the FFT path), from one probe pass."""
        convolutions = _scale_convolutions(self.module_)
        key = (shape, tuple(tuple(layer.kernel_sizes()) for layer in convolutions))
        cache = _BYTES_PER_IMAGE.setdefault(self.module_, {})
        if key in cache:
            return cache[key]
        total = [_FLOAT_BYTES * int(np.prod(shape))]

        def record_output(layer, inputs, output):
            total.append(_nbytes(output))

        def record_spectra(layer, inputs):
            x = inputs[0]
            size = max(layer.kernel_sizes())
            padded = (x.shape[-2] + size - 1) * (x.shape[-1] + size - 1)
            channels = int(np.prod(x.shape[1:-2]))
            total.append(_COMPLEX_BYTES * (channels + layer.out_channels * layer.n_scales) * padded)

        hooks = [
            layer.register_forward_hook(record_output)
            for layer in self.module_.modules()
            if layer is not self.module_ and (not list(layer.children()) or layer in convolutions)
        ]
        hooks += [layer.register_forward_pre_hook(record_spectra) for layer in convolutions]
        training = self.module_.training
        try:
            self.module_.eval()
            with torch.no_grad():
                self.module_(torch.zeros((1, *shape), device=self.device or "cpu"))
        finally:
            self.module_.train(training)
            for hook in hooks:
                hook.remove()
        cache[key] = sum(total)
        return cache[key]

    @contextlib.contextmanager
    def _seeded(self):
        if self.random_state is None:
            self._seed_ = None
            yield
            return
        self._seed_ = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        devices = (
            [torch.cuda.current_device()]
            if torch.cuda.is_available() and str(self.device).startswith("cuda")
            else []
        )
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self._seed_)
            yield

    def _internal_scales(self):
        if not getattr(self, "initialized_", False) or not hasattr(self, "module_"):
            raise AttributeError(
                f"{type(self).__name__} has no internal scales before it is initialized or fitted."
            )
        found = find_internal_scales(self.module_)
        return found[0] if found else None

    @property
    def scales_(self):
        scales = self._internal_scales()
        return None if scales is None else scales().detach().cpu().double().numpy().copy()

    @property
    def sigma_basis_(self):
        scales = self._internal_scales()
        return None if scales is None else scales.sigma_basis

    @property
    def isr_(self):
        scales = self._internal_scales()
        return None if scales is None else scales.isr

    # ------------------------------------------------------------------ public API
    def fit(self, X, y=None, **fit_params):
        """Build the network for the images in ``X`` and train it.

        Parameters
        ----------
        X : array-like or torch Dataset
            Training images of shape (n_samples, height, width), (n_samples, channels,
            height, width) or (n_samples, n_features) (see ``image_shape``), any numeric
            dtype (cast to float32); or a ``Dataset`` yielding ``(image, label)`` pairs,
            streamed through skorch's iterators.
        y : array-like of shape (n_samples,), optional
            Class labels of any type; ``None`` when ``X`` is a Dataset.
        **fit_params
            Passed to skorch.

        Returns
        -------
        self : ScaleEquivariantClassifier
        """
        X, y = self._validate_training_data(X, y, reset=not (self.warm_start and self.initialized_))
        with self._seeded():
            self._in_fit_ = True
            try:
                super().fit(X, y, **fit_params)
            finally:
                del self._in_fit_
        return self

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        """Train for ``max_epochs`` more epochs without re-initialising the network.

        The first call builds the network like ``fit``; ``classes`` (all labels that will
        ever be seen) is needed then if the first batch does not hold every class.
        """
        if self._in_fit_:  # called by skorch's fit: the data is validated and the generators seeded
            return super().partial_fit(X, y, **fit_params)
        X, y = self._validate_training_data(X, y, reset=not self.initialized_, classes=classes)
        with self._seeded():
            super().partial_fit(X, y, **fit_params)
        return self

    def _prediction_input(self, X):
        check_is_fitted(self)
        if is_dataset(X):
            return _ImageDataset(X, shape=self.input_shape_)
        images = self._as_images(X)
        self._check_input_shape(images.shape[1:])
        return images

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes), columns ordered as ``classes_``.

        ``X`` is validated like the training data; a torch ``Dataset`` yielding
        ``(image, label)`` pairs (labels are ignored) is streamed through skorch's iterator.
        """
        return super().predict_proba(self._prediction_input(X))

    def predict(self, X):
        """Predicted class labels, of the type given to ``fit``."""
        probabilities = self.predict_proba(X)
        return self.classes_[np.argmax(probabilities, axis=1)]

    def score(self, X, y=None, sample_weight=None):
        """Mean accuracy; ``y`` may be omitted for a Dataset (its labels are used)."""
        if y is None and is_dataset(X):
            y = _dataset_labels(X)
        return super().score(X, y, sample_weight=sample_weight)

    def export(self, X, *, format="torch", path=None):
        """Record the fitted network for deployment without skscale, skorch or scikit-learn.

        A copy of ``module_`` is put in eval mode, where the internal scales are fixed and
        their basis is a constant, and recorded on the device it lives on while it
        predicts the example images ``X``. The estimator itself is left as it was (its
        later ``fit`` does not change the recording).

        Parameters
        ----------
        X : array-like or torch Dataset
            Example images, in any form :meth:`predict` accepts (validated and converted
            the same way), e.g. ``X[:1]``. The recording reads batches of any size of
            images of their shape: the batch dimension is dynamic (named ``"batch"``).
        format : {"torch", "torchscript", "onnx"}, default="torch"
            ``"torch"``: :func:`torch.export.export`; ``"torchscript"``:
            :func:`torch.jit.trace` (which torch 2.13 deprecates in favour of
            ``torch.export``); ``"onnx"``: :func:`torch.onnx.export` with
            ``dynamo=True`` (needs ``pip install "skscale[export]"``; the input is named
            ``"images"``, the output ``"logits"``). torch's ONNX exporter cannot translate
            the FFT correlation (``conv_impl``; its spectra are complex tensors), so the
            ONNX recording runs every scale convolution directly (``F.conv2d``): the same
            outputs up to float rounding, slower for large kernels.
        path : str or path-like, optional
            Also save the recording there: :func:`torch.export.save` (a ``.pt2`` file;
            load it with :func:`torch.export.load`), ``ScriptModule.save``
            (:func:`torch.jit.load`) or ``ONNXProgram.save`` (e.g.
            ``onnxruntime.InferenceSession(path)``).

        Returns
        -------
        program : torch.export.ExportedProgram, torch.jit.ScriptModule or torch.onnx.ONNXProgram
            Maps images ``(n_images, channels, height, width)`` (float32) to class logits
            ``(n_images, n_classes)``: the scores before the softmax of
            :meth:`predict_proba`; their argmax indexes ``classes_``. Run it with
            ``program.module()(images)``, ``program(images)`` or
            ``program(images)[0]`` respectively.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit`` (or ``initialize``).
        ValueError
            For another ``format``, or images that :meth:`predict` refuses.
        ImportError
            For ``format="onnx"`` without the ``onnx`` and ``onnxscript`` packages.

        Examples
        --------
        >>> import numpy as np
        >>> import torch
        >>> from skscale import ScaleEquivariantClassifier
        >>> rng = np.random.RandomState(0)
        >>> X = rng.rand(40, 12, 12).astype("float32")
        >>> y = np.where(X[:, 4:8, 4:8].mean(axis=(1, 2)) > 0.5, "bright", "dark")
        >>> clf = ScaleEquivariantClassifier(n_filters=4, init_sigma_basis=1.0, init_isr=2.0,
        ...                                  max_epochs=2, random_state=0).fit(X, y)
        >>> program = clf.export(X[:5])
        >>> logits = program.module()(torch.as_tensor(X[:5, None]))
        >>> bool((clf.classes_[logits.argmax(dim=1).numpy()] == clf.predict(X[:5])).all())
        True
        """
        format = Options(_EXPORT_FORMATS).check(format, "format")
        inputs = self._prediction_input(X)
        if is_dataset(inputs):
            if len(inputs) == 0:
                raise ValueError("X is an empty Dataset; export needs at least one example image.")
            inputs = torch.stack([inputs[position][0] for position in range(len(inputs))])
        images = to_tensor(inputs, device=self.device)
        # torch.export fixes a batch of one (its 0/1 specialisation): record two copies instead.
        if len(images) == 1:
            images = images.expand(2, *images.shape[1:])
        dynamic_shapes = ({0: torch.export.Dim("batch", min=1)},)
        # A copy: a recording shares the parameters of the module it records, which a later
        # fit would change in place.
        module = copy.deepcopy(self.module_).eval()
        if format == "torch":
            program = torch.export.export(module, (images,), dynamic_shapes=dynamic_shapes)
            if path is not None:
                torch.export.save(program, os.fspath(path))
        elif format == "torchscript":
            with warnings.catch_warnings():
                # trace notes every size read as a Python int: the recording is for one input shape.
                warnings.simplefilter("ignore", torch.jit.TracerWarning)
                program = torch.jit.trace(module, images)
            if path is not None:
                program.save(os.fspath(path))
        else:
            missing = [name for name in ("onnx", "onnxscript") if importlib.util.find_spec(name) is None]
            if missing:
                raise ImportError(
                    f"export(format='onnx') needs the packages {' and '.join(missing)}: "
                    "pip install 'skscale[export]'."
                )
            for layer in _scale_convolutions(module):
                if hasattr(layer, "conv_impl"):
                    layer.conv_impl = "direct"
            program = torch.onnx.export(
                module,
                (images,),
                dynamo=True,
                dynamic_shapes=dynamic_shapes,
                input_names=["images"],
                output_names=["logits"],
                verbose=False,
            )
            if path is not None:
                program.save(os.fspath(path))
        return program

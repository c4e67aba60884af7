"""ScaleEquivariantClassifier: a scikit-learn classifier built on skorch."""

from __future__ import annotations

import contextlib
import math
import numbers
import warnings

import numpy as np
import torch
from skorch import NeuralNet, NeuralNetClassifier
from skorch.callbacks import EarlyStopping, EpochScoring, PrintLog, ProgressBar
from skorch.dataset import ValidSplit
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d

from .basis import kernel_size
from .callbacks import SCALE_PARAM_GROUP, ScaleLRWarmup, ScaleTrajectory, find_internal_scales
from .nn import ARCHITECTURES, build_module
from ._scales import log_uniform_scales
from .nn.scales import PARAMETERISATIONS

__all__ = ["ScaleEquivariantClassifier", "LargeKernelWarning"]


class LargeKernelWarning(UserWarning):
    """The initial kernels are far larger than the images (e.g. tabular rows read as 1 x F images)."""


def _encoded_accuracy(net, X, y):
    """Accuracy on skorch's internal validation split, whose targets are label-encoded."""
    probabilities = net.predict_proba(X)
    return float(np.mean(np.argmax(probabilities, axis=1) == np.asarray(y)))


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


class ScaleEquivariantClassifier(NeuralNetClassifier):
    """Scale-equivariant CNN classifier with learnable internal scales.

    A skorch :class:`~skorch.NeuralNetClassifier` whose network is built from the
    hyper-parameters below and the shape of the training images, so it can be used like
    any scikit-learn classifier: ``fit``/``predict``/``score``, ``clone``, ``Pipeline``,
    ``GridSearchCV`` over ``parameterisation`` and ``init_isr``, pickling.

    Parameters
    ----------
    architecture : str, default="table1"
        A network of :data:`skscale.nn.ARCHITECTURES`: ``"table1"`` (the paper's Table 1:
        one lifting scale convolution, 2,780 parameters for 10 classes), ``"sesn"`` (the
        SESN MNIST network, 494,551 parameters) or ``"cnn"`` (a plain CNN of the same size,
        no internal scales). Register more with :func:`skscale.nn.register_architecture`.
    n_scales : int, default=3
        Number of internal scales ``N_S``.
    parameterisation : {"fixed", "isr", "spacing", "direct"}, default="isr"
        How the internal scales are learned (see :class:`skscale.nn.InternalScales`);
        ``"fixed"`` is the SESN baseline with hand-picked scales.
    init_sigma_basis : float, default=2.0
        Initial smallest internal scale, in pixels.
    init_isr : float, default=3.0
        Initial internal scale range (> 1). :class:`skscale.ToleranceModel` recommends
        one for a known data scale distribution.
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
        width)``; if ``image_shape`` is also given it must agree with them.
    scale_lr : float, optional
        Learning rate of the scale parameters (the paper schedules them apart from the
        weights); defaults to ``lr``.
    scale_warmup_epochs : int, default=0
        Linear warm-up of the scale learning rate from 0 over this many epochs
        (:class:`skscale.callbacks.ScaleLRWarmup`).
    early_stopping : bool, default=False
        Hold out a seeded, stratified ``validation_fraction`` of the training data and stop
        when the validation loss has not improved for ``n_iter_no_change`` epochs,
        restoring the best weights (as :class:`~sklearn.neural_network.MLPClassifier`).
    validation_fraction : float, default=0.1
        Used only with ``early_stopping=True``.
    n_iter_no_change : int, default=10
        Used only with ``early_stopping=True``.
    random_state : int, RandomState instance or None, default=None
        Seeds the weight initialisation, the batch order, dropout and the validation
        split: two fits with the same integer give identical predictions on the CPU.
        The global torch random state is left as it was.
    criterion, optimizer, lr, max_epochs, batch_size, train_split, callbacks, verbose, device, **kwargs
        skorch arguments (see :class:`skorch.NeuralNet`), with defaults suited to
        MNIST-sized data: cross-entropy loss, Adam, ``lr=1e-3``, 10 epochs, batch size 64,
        no internal validation split, silent. ``verbose=1`` prints skorch's per-epoch
        table, ``verbose=2`` adds a progress bar. Prefixed arguments (``module__``,
        ``optimizer__``, ``callbacks__``, ``iterator_train__`` ...) are routed by skorch;
        ``module__*`` arguments reach the architecture's builder.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels, of the type given in ``y``.
    n_features_in_ : int
        Number of values per sample (``channels * height * width``).
    input_shape_ : tuple of int
        ``(channels, height, width)`` of the images the network reads.
    scales_ : ndarray of shape (n_scales,) or None
        Internal scales after training (None for architectures without them).
    sigma_basis_ : float or None
        Smallest internal scale after training.
    isr_ : float or None
        Internal scale range after training.
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
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        random_state=None,
        *,
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
        kwargs.setdefault("module", None)  # built from the hyper-parameters in initialize_module
        super().__init__(
            criterion=criterion,
            optimizer=optimizer,
            lr=lr,
            max_epochs=max_epochs,
            batch_size=batch_size,
            train_split=train_split,
            callbacks=callbacks,
            verbose=verbose,
            device=device,
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
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state

    # ------------------------------------------------------------------ validation
    def _validate_hyper_parameters(self):
        if not (isinstance(self.architecture, str) and self.architecture in ARCHITECTURES):
            raise ValueError(
                f"architecture must be one of {sorted(ARCHITECTURES)}, got {self.architecture!r}."
            )
        if self.parameterisation not in PARAMETERISATIONS:
            raise ValueError(
                f"parameterisation must be one of {PARAMETERISATIONS}, got {self.parameterisation!r}."
            )
        for name in ("n_scales", "n_filters", "n_iter_no_change", "max_epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        for name in ("init_sigma_basis", "kernel_extent", "lr"):
            value = getattr(self, name)
            if not _is_number(value) or value <= 0:
                raise ValueError(f"{name} must be a positive finite number, got {value!r}.")
        if not _is_number(self.init_isr) or (self.init_isr <= 1 and self.n_scales > 1):
            raise ValueError(f"init_isr must be a finite number > 1, got {self.init_isr!r}.")
        if self.scale_lr is not None and (not _is_number(self.scale_lr) or self.scale_lr < 0):
            raise ValueError(f"scale_lr must be None or a non-negative finite number, got {self.scale_lr!r}.")
        warmup = self.scale_warmup_epochs
        if isinstance(warmup, bool) or not isinstance(warmup, numbers.Integral) or warmup < 0:
            raise ValueError(f"scale_warmup_epochs must be a non-negative integer, got {warmup!r}.")
        if not isinstance(self.early_stopping, (bool, np.bool_)):
            raise ValueError(f"early_stopping must be True or False, got {self.early_stopping!r}.")
        if not _is_number(self.validation_fraction) or not 0 < self.validation_fraction < 1:
            raise ValueError(
                f"validation_fraction must be in the open interval (0, 1), got {self.validation_fraction!r}."
            )
        check_random_state(self.random_state)

    def _image_shape_tuple(self):
        shape = self.image_shape
        if shape is None:
            return None
        try:
            shape = tuple(shape)
        except TypeError:
            shape = ()
        if len(shape) not in (2, 3) or not all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0 for v in shape
        ):
            raise ValueError(
                "image_shape must be (height, width) or (height, width, channels) of positive "
                f"integers, got {self.image_shape!r}."
            )
        height, width = shape[:2]
        channels = shape[2] if len(shape) == 3 else 1
        return int(channels), int(height), int(width)

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
        if expected is not None and tuple(images.shape[1:]) != expected:
            raise ValueError(
                f"image_shape={self.image_shape!r} does not match X of shape {X.shape} "
                f"(read as images of shape {tuple(images.shape[1:])} (channels, height, width))."
            )
        return images

    def _check_images_for_predict(self, X):
        check_is_fitted(self)
        images = self._as_images(X)
        self._check_input_shape(images)
        return images

    def _check_input_shape(self, images):
        if tuple(images.shape[1:]) != self.input_shape_:
            n_features = int(np.prod(images.shape[1:]))
            raise ValueError(
                f"X has {n_features} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input (images of shape {tuple(images.shape[1:])} "
                f"(channels, height, width) instead of {self.input_shape_})."
            )

    def _prepare_training_data(self, X, y, reset):
        self._validate_hyper_parameters()
        images = self._as_images(X)
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        y = column_or_1d(y, warn=True)
        if len(y) != len(images):
            raise ValueError(f"X and y have different numbers of samples: {len(images)} and {len(y)}.")
        check_classification_targets(y)
        if reset:
            encoder = LabelEncoder().fit(self.classes if self.classes is not None else y)
            if len(encoder.classes_) < 2:
                raise ValueError(
                    f"y must hold at least two classes, got 1 class: {encoder.classes_.tolist()!r}."
                )
            self.label_encoder_ = encoder
            self.input_shape_ = tuple(int(v) for v in images.shape[1:])
            self.n_features_in_ = int(np.prod(self.input_shape_))
            self._warn_if_kernels_dwarf_images()
        else:
            self._check_input_shape(images)
        unknown = np.setdiff1d(np.unique(y), self.label_encoder_.classes_)
        if unknown.size:
            raise ValueError(f"y holds labels not seen in the first fit: {unknown.tolist()!r}.")
        return images, self.label_encoder_.transform(y).astype(np.int64)

    def _warn_if_kernels_dwarf_images(self):
        if self.architecture in ("cnn", "dss", "siconvnet"):  # kernels independent of the scales
            return
        largest = log_uniform_scales(self.n_scales, self.init_sigma_basis, self.init_isr)[-1]
        size = kernel_size(largest, self.kernel_extent)
        _, height, width = self.input_shape_
        if size > 4 * max(height, width):
            warnings.warn(
                f"The largest initial kernel spans {size} pixels but the images are {height} x {width}; "
                "pass image_shape for flattened images, or lower init_sigma_basis / init_isr.",
                LargeKernelWarning,
                stacklevel=3,
            )

    # ------------------------------------------------------------------ skorch hooks
    @property
    def classes_(self):
        try:
            return self.label_encoder_.classes_
        except AttributeError:
            raise AttributeError(
                f"{type(self).__name__} has no attribute 'classes_' before it is fitted."
            ) from None

    def __sklearn_is_fitted__(self):
        return hasattr(self, "input_shape_") and getattr(self, "initialized_", False)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags

    def _get_param_names(self):
        # skorch lists every public-looking attribute; private bookkeeping such as
        # ``_params_to_validate`` is not a hyper-parameter (clone rebuilds it).
        return [name for name in super()._get_param_names() if not name.startswith("_")]

    def set_params(self, **kwargs):
        """Set parameters (see :meth:`skorch.NeuralNet.set_params`).

        A new ``callbacks`` list given before the first fit is only stored: like every
        other component it is built by ``initialize()`` at fit time.
        """
        if "callbacks" in kwargs and not self.initialized_:
            self.callbacks = kwargs.pop("callbacks")
        return super().set_params(**kwargs)

    def initialize_module(self):
        """Build the network from the hyper-parameters and the fitted input shape."""
        channels = self.input_shape_[0]
        defaults = dict(
            n_scales=self.n_scales,
            parameterisation=self.parameterisation,
            init_sigma_basis=float(self.init_sigma_basis),
            init_isr=float(self.init_isr),
            kernel_extent=float(self.kernel_extent),
            n_filters=self.n_filters,
        )
        self.module_ = build_module(
            self.architecture,
            n_classes=len(self.classes_),
            in_channels=channels,
            defaults=defaults,
            **self.get_params_for("module"),
        )
        return self

    def initialize_optimizer(self, triggered_directly=None):
        """Adam (by default) with the scale parameters in a group of their own (``scale_lr``)."""
        scale_ids = {
            id(p) for scales in find_internal_scales(self.module_) for p in scales.parameters()
        }
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
        # The per-epoch list of scales stays in the history but out of the printed table.
        replacements = {
            "print_log": PrintLog(keys_ignored=["scales", "scale_lr"]),
            # skorch scores the validation split with the encoded targets.
            "valid_acc": EpochScoring(_encoded_accuracy, name="valid_acc", lower_is_better=False),
        }
        callbacks = [(name, replacements.get(name, callback)) for name, callback in super()._default_callbacks]
        callbacks.append(("scale_trajectory", ScaleTrajectory()))
        scale_lr = self.lr if self.scale_lr is None else self.scale_lr
        callbacks.append(("scale_lr_warmup", ScaleLRWarmup(scale_lr, self.scale_warmup_epochs)))
        if self.early_stopping is True or self.early_stopping is np.True_:
            callbacks.append(
                ("early_stopping", EarlyStopping(monitor="valid_loss", patience=self.n_iter_no_change,
                                                 load_best=True, sink=lambda *args: None))
            )
        if _is_number(self.verbose) and self.verbose >= 2:
            callbacks.append(("progress_bar", ProgressBar()))
        return callbacks

    def get_split_datasets(self, X, y=None, **fit_params):
        if not (self.early_stopping is True or self.early_stopping is np.True_):
            return super().get_split_datasets(X, y, **fit_params)
        dataset = self.get_dataset(X, y)
        split = ValidSplit(self.validation_fraction, stratified=True, random_state=self._seed_ or 0)
        return split(dataset, y, **fit_params)

    @contextlib.contextmanager
    def _seeded(self):
        if self.random_state is None:
            self._seed_ = None
            yield
            return
        self._seed_ = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        devices = [torch.cuda.current_device()] if str(self.device).startswith("cuda") else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self._seed_)
            yield

    def _store_scales(self):
        found = find_internal_scales(self.module_)
        if not found:
            self.scales_ = self.sigma_basis_ = self.isr_ = None
            return
        scales = found[0]
        self.scales_ = scales().detach().cpu().double().numpy().copy()
        self.sigma_basis_ = scales.sigma_basis
        self.isr_ = scales.isr

    # ------------------------------------------------------------------ public API
    def fit(self, X, y, **fit_params):
        """Build the network for the images in ``X`` and train it.

        Parameters
        ----------
        X : array-like of shape (n_samples, height, width), (n_samples, channels, height, width) or (n_samples, n_features)
            Training images (any numeric dtype; cast to float32). See ``image_shape``.
        y : array-like of shape (n_samples,)
            Class labels of any type.
        **fit_params
            Passed to skorch.

        Returns
        -------
        self : ScaleEquivariantClassifier
        """
        images, targets = self._prepare_training_data(X, y, reset=not (self.warm_start and self.initialized_))
        with self._seeded():
            if not self.warm_start or not self.initialized_:
                self.initialize()
            NeuralNet.partial_fit(self, images, targets, _routing_method="fit", **fit_params)
        self._store_scales()
        return self

    def partial_fit(self, X, y, classes=None, **fit_params):
        """Train for ``max_epochs`` more epochs without re-initialising the network.

        The first call builds the network like ``fit``; ``classes`` (all labels that will
        ever be seen) is needed then if the first batch does not hold every class.
        """
        if classes is not None and not self.initialized_:
            self.classes = classes
        images, targets = self._prepare_training_data(X, y, reset=not self.initialized_)
        with self._seeded():
            NeuralNet.partial_fit(self, images, targets, **fit_params)
        self._store_scales()
        return self

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes), columns ordered as ``classes_``.

        ``X`` is validated like the training data; a ``torch.utils.data.Dataset`` (such as
        skorch's internal validation split or a :class:`~skscale.datasets.DynamicScaleMNIST`)
        is passed to the network unchanged and must yield images of ``input_shape_``.
        """
        if isinstance(X, torch.utils.data.Dataset):
            check_is_fitted(self)
            return super().predict_proba(X)
        return super().predict_proba(self._check_images_for_predict(X))

    def predict(self, X):
        """Predicted class labels, of the type given to ``fit``."""
        probabilities = self.predict_proba(X)
        return self.classes_[np.argmax(probabilities, axis=1)]

    def score(self, X, y, sample_weight=None):
        """Mean accuracy on ``X`` and ``y`` (see :meth:`sklearn.base.ClassifierMixin.score`)."""
        from sklearn.metrics import accuracy_score

        return accuracy_score(y, self.predict(X), sample_weight=sample_weight)

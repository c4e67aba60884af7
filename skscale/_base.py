"""What every skscale estimator adds to skorch: images in, a scale network built, scales out.

:class:`ScaleNetworkMixin` goes before a skorch net class (``NeuralNetClassifier`` for
the classifier). It reads the images (:mod:`skscale._images`), builds the network from
the architecture's scale defaults and the arguments given (:class:`skscale.nn.ScaleSpec`),
refuses kernels that cannot fit the memory (:mod:`skscale.nn.memory`), keeps the scale
parameters in an optimiser group of their own, seeds training with ``random_state``,
applies ``scale_augmentation``, splits prediction batches to ``working_memory`` and
exports the network (:mod:`skscale.export`). The subclass adds its targets: how labels
are checked (``_validate_targets``), encoded and scored (``predict`` here returns the most
probable of its ``classes_``).
"""

from __future__ import annotations

import contextlib
import inspect
import numbers

import numpy as np
import sklearn
import torch
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import EarlyStopping, ProgressBar
from skorch.dataset import ValidSplit, unpack_data
from skorch.utils import is_dataset, to_tensor

from ._images import (
    IMAGE_LAYOUTS,
    ImageDataset,
    as_images,
    check_image_shape,
    dataset_targets,
    first_dataset_image,
    image_batches,
    parse_image_shape,
)
from ._init_isr import estimate_init_isr
from .augmentation import augmentation_generator, draw_factors, rescale_batch
from .callbacks import SCALE_PARAM_GROUP, ScaleLRWarmup, ScaleTrajectory
from .export import export_module
from .nn import ScaleSpec, build_module, find_internal_scales
from .nn.batchnorm import batchnorm_layers, recalibrate_batchnorm
from .nn.checkpoints import state_differences
from .nn.memory import activation_bytes_per_image, check_kernel_memory, check_parameter_memory
from .nn.registry import builder_arguments, get_builder, scale_defaults
from .search_backends import torch_threads_in_this_process
from .selection import read_winning_scales, selection_callback
from .utils.validation import AnyOf, Boolean, Integer, Options, Real, check_device, check_params

__all__ = ["ScaleNetworkMixin", "scale_constraints"]


def scale_constraints():
    """The estimators' scale hyper-parameters: ScaleSpec's table, None ("the architecture's")
    allowed, and ``init_isr="auto"``."""
    constraints = {name: constraint.or_none() for name, constraint in ScaleSpec.CONSTRAINTS.items()}
    constraints["init_isr"] = AnyOf(ScaleSpec.CONSTRAINTS["init_isr"], Options(("auto",)), allow_none=True)
    return constraints


def _random_state(random_state):
    """``check_random_state`` with an error that names the argument."""
    try:
        return check_random_state(random_state)
    except ValueError as error:
        raise ValueError(
            f"random_state must be None, an int or a numpy RandomState, got {random_state!r} ({error})."
        ) from None


class ScaleNetworkMixin:
    """skorch hooks shared by the skscale estimators (see the module docstring)."""

    # The hyper-parameters of every skscale estimator: the scale ones, this mixin's training
    # options and the skorch ones it checks. An estimator adds its own to this table.
    _parameter_constraints = {
        **scale_constraints(),
        "n_filters": Integer(low=1),
        "scale_lr": Real(low=0, allow_none=True),
        "scale_warmup_epochs": Integer(low=0),
        "validation_fraction": Real(low=0, high=1, closed="neither"),
        "working_memory": Real(low=0, closed="neither", allow_none=True),
        "image_layout": Options(IMAGE_LAYOUTS),
        "recalibrate_batchnorm": Boolean(),
        "torch_threads": Integer(low=1, allow_none=True),
        "lr": Real(low=0, closed="neither"),
        "max_epochs": Integer(low=1),
        "batch_size": Integer(low=1),
    }

    # Set by fit while skorch's fit calls partial_fit (the data is validated by then).
    _in_fit_ = False

    def _store_parameters(self, arguments):
        """``__init__`` of a subclass: ``arguments`` (its ``locals()``) stored as given.

        skorch's own arguments (those its ``__init__`` names, plus ``**kwargs``) go to the
        next skorch class in the MRO; every other one becomes an attribute of the same name
        (scikit-learn's rule: ``__init__`` only stores).
        """
        arguments = {name: value for name, value in arguments.items() if name not in ("self", "__class__")}
        extra = arguments.pop("kwargs", {})
        skorch_init = super().__init__
        accepted = inspect.signature(skorch_init).parameters
        skorch_init(**{name: arguments.pop(name) for name in list(arguments) if name in accepted}, **extra)
        for name, value in arguments.items():
            setattr(self, name, value)

    def __repr__(self):
        head, _, rest = super().__repr__().partition("\n")
        shown = [] if self.module is not None else [f"  architecture={self.architecture!r},"]
        if getattr(self, "scale_spec_", None) is not None:
            shown.append(f"  scale_spec_={self.scale_spec_!r},")
        return "\n".join([head, *shown, rest])

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
        _random_state(self.random_state)
        for name in ("criterion", "optimizer"):
            value = getattr(self, name)
            if not callable(value):
                raise ValueError(
                    f"{name} must be a class or callable that builds the torch {name} (e.g. "
                    f"{'torch.nn.CrossEntropyLoss' if name == 'criterion' else 'torch.optim.Adam'}), "
                    f"got {value!r}."
                )
        callbacks = self.callbacks
        if not (callbacks is None or callbacks == "disable" or isinstance(callbacks, (list, tuple))):
            raise ValueError(
                f"callbacks must be None, 'disable' or a list of callbacks or (name, callback) pairs, "
                f"got {callbacks!r}."
            )
        check_device(self.device)
        if self.classes is not None:
            classes = np.asarray(self.classes)
            if classes.ndim != 1 or len(np.unique(classes)) != len(classes):
                raise ValueError(
                    f"classes must list every class label once, got {self.classes!r}"
                    + (" (it repeats labels)." if classes.ndim == 1 else ".")
                )

    def _builder(self):
        return get_builder(self.architecture) if self.module is None else self.module

    def _given_scale_settings(self):
        """The scale hyper-parameters given as arguments (None: the architecture's own)."""
        given = {name: getattr(self, name) for name in ScaleSpec.names()}
        if self._auto_init_isr():
            given["init_isr"] = getattr(self, "init_isr_", None)
        return given

    def _builder_class(self):
        builder = self._builder()
        return type(builder) if isinstance(builder, torch.nn.Module) else builder

    def _scale_spec(self):
        """The architecture's scale defaults, updated by the arguments given."""
        return scale_defaults(self._builder_class()).replace(**self._given_scale_settings())

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
                targets = dataset_targets(X)
                if targets is None:
                    raise ValueError(
                        f"X is a {type(X).__name__} without a 'targets' attribute, so its classes are "
                        "unknown before training; pass classes=[...] (all labels it yields)."
                    )
                self.classes_inferred_ = np.unique(targets)
        if len(self.classes_) < 2:
            raise ValueError(
                f"y must hold at least two classes, got {len(self.classes_)} class: "
                f"{self.classes_.tolist()!r}."
            )

    def _validate_training_data(self, X, y, reset, classes=None):
        """Images and targets for skorch; with ``reset`` the input shape and classes are learned."""
        if is_dataset(X):
            if y is not None:
                raise ValueError(
                    f"y must be None when X is a Dataset (the dataset yields the labels), got {y!r}."
                )
            first, layout = first_dataset_image(X, self.image_layout)
            if reset:
                self._training_size = len(X)
                self._set_input_shape(first.shape)
                self._learn_classes(X, None, classes)
                self.image_layout_ = layout
            images, y = ImageDataset(X, self.classes_, self.input_shape_, self._fitted_layout()), None
        else:
            if y is None:
                raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None.")
            if reset:
                images, self.image_layout_ = as_images(X, self.image_shape, self.image_layout)
            else:
                images = self._images_as_fitted(X)
            y = self._validate_targets(y, images)
            if reset:
                self._training_size = len(images)
                self._set_input_shape(images.shape[1:])
                self._learn_classes(images, y, classes)
        if reset and self._auto_init_isr():
            self._check_params()
            for name in ("init_isr_", "tolerance_"):
                self.__dict__.pop(name, None)
            spec = scale_defaults(self._builder_class()).replace(
                **{name: value for name, value in self._given_scale_settings().items() if name != "init_isr"}
            )
            self.init_isr_, self.tolerance_ = estimate_init_isr(
                images,
                self._scale_estimation_labels(y),
                spec.n_scales,
                sigma_basis=spec.init_sigma_basis,
                kernel_extent=spec.kernel_extent,
            )
        return images, y

    def _scale_estimation_labels(self, y):
        """One label per training image for ``init_isr="auto"`` (:func:`skscale.estimate_scales`
        compares scales within a class); a subclass whose targets are not per image overrides it."""
        return y

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
            check_image_shape(X.shape[1:], self.input_shape_, type(self).__name__)

    def initialize(self):
        """Validate the hyper-parameters, then build the network, criterion and optimiser.

        Before ``fit`` the network needs the image channels and the classes: give
        ``image_shape`` and ``classes`` (e.g. to ``load_params`` a saved network).
        """
        self._check_ready_to_build()
        return super().initialize()

    def _check_ready_to_build(self):
        """What ``initialize`` checks before skorch builds the components."""
        self._check_params()
        if not hasattr(self, "input_shape_"):
            shape = parse_image_shape(self.image_shape)
            if shape is None or self.classes is None:
                raise ValueError(
                    f"{type(self).__name__}.initialize() before fit needs image_shape and classes to build "
                    f"the network, got image_shape={self.image_shape!r} and classes={self.classes!r}; "
                    "pass both, or call fit."
                )
            self._set_input_shape(shape)

    def initialize_module(self):
        """Build the network: ``module`` (skorch's semantics) or the registered ``architecture``.

        The builder receives ``scale_spec`` (its own ``scale_defaults`` updated by the scale
        arguments given) if its signature names it, and the scale arguments given by name
        where its signature names them.
        """
        if self._auto_init_isr() and not hasattr(self, "init_isr_"):
            raise ValueError(
                "init_isr='auto' estimates the initial ISR from the training images, so "
                f"{type(self).__name__}.initialize() before fit needs a number; pass e.g. init_isr=3.0, "
                "or call fit."
            )
        builder = self._builder()
        if isinstance(builder, torch.nn.Module) and not self.get_params_for("module"):
            module = builder
        else:
            module = self._build_module(type(builder) if isinstance(builder, torch.nn.Module) else builder)
        # What the network was built with: networks that take a scale_spec keep it.
        spec = getattr(module, "scale_spec", None)
        self.scale_spec_ = spec if isinstance(spec, ScaleSpec) else None
        self.init_isr_ = (self.scale_spec_ or self._scale_spec()).init_isr
        if not self._auto_init_isr():
            self.tolerance_ = None
        self._check_kernels(module)
        self.module_ = module
        return self

    def _build_module(self, builder):
        arguments = self.get_params_for("module")
        given = {name: value for name, value in self._given_scale_settings().items() if value is not None}
        defaults = {"scale_spec": self._scale_spec(), **given, "n_filters": self.n_filters}

        def build():
            return build_module(
                builder,
                n_classes=len(self.classes_),
                in_channels=self.input_shape_[0],
                defaults=defaults,
                **arguments,
            )

        accepted = builder_arguments(builder)
        width = (
            ("n_filters", self.n_filters)
            if accepted is None or "n_filters" in accepted
            else ("architecture", builder)
        )
        check_parameter_memory(build, self.device or "cpu", *width)
        module = build()
        if not isinstance(module, torch.nn.Module):
            raise ValueError(
                f"module must build a torch.nn.Module, but {builder!r} returned {type(module).__name__}."
            )
        return module

    def _auto_init_isr(self):
        return isinstance(self.init_isr, str) and self.init_isr == "auto"

    def _check_kernels(self, module):
        spec = self.scale_spec_ or self._scale_spec()
        settings = (
            f"init_sigma_basis={spec.init_sigma_basis!r}, init_isr={spec.init_isr!r}, "
            f"kernel_extent={spec.kernel_extent!r}"
        )
        # A batch holds at most the training images (the whole set when batch_size exceeds it).
        batch_size = min(self.batch_size, getattr(self, "_training_size", self.batch_size))
        check_kernel_memory(module, self.input_shape_, batch_size, self._compute_device(), settings)

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
            if self._scale_selection() != "gradient":  # the selection callback moves the scales
                scale_lr = 0.0
            groups.append({"params": scale_params, "lr": scale_lr, "name": SCALE_PARAM_GROUP})
        self.optimizer_ = self.optimizer(groups, **kwargs)
        return self

    @property
    def _default_callbacks(self):
        callbacks = super()._default_callbacks
        # The per-epoch list of scales stays in the history but out of the printed table.
        dict(callbacks)["print_log"].set_params(keys_ignored=["scales", "scale_lr"])
        selection = selection_callback(self._scale_selection())
        if selection is not None:  # before the trajectory, which then records the moved scales
            callbacks.append(("scale_selection", selection))
        callbacks.append(("scale_trajectory", ScaleTrajectory()))
        callbacks.append(("scale_lr_warmup", ScaleLRWarmup(self.scale_warmup_epochs)))
        if self.early_stopping is True or self.early_stopping is np.True_:
            # A sweep's earlier epochs ran at random ISRs: it keeps its last, fine-tuned epoch.
            restore = self._scale_selection() != "sweep"
            stopping = EarlyStopping(
                monitor="valid_loss",
                patience=self.n_iter_no_change,
                load_best=restore,
                sink=lambda *args: None,
            )
            callbacks.append(("early_stopping", stopping))
        if isinstance(self.verbose, numbers.Real) and self.verbose >= 2:
            callbacks.append(("progress_bar", ProgressBar()))
        return callbacks

    def _scale_selection(self):
        """``scale_selection`` if it is a string (validated at ``initialize``), else "gradient"."""
        selection = getattr(self, "scale_selection", "gradient")
        return selection if isinstance(selection, str) else "gradient"

    def get_split_datasets(self, X, y=None, **fit_params):
        stopping = self.early_stopping is True or self.early_stopping is np.True_
        # The sweep validates its candidate ISRs on a split of its own unless given one.
        sweep = self._scale_selection() == "sweep" and self.train_split is None
        if not (stopping or sweep):
            return super().get_split_datasets(X, y, **fit_params)
        dataset = self.get_dataset(X, y)
        if y is None:
            y = dataset_targets(getattr(dataset, "dataset", dataset))
        # Stratified by label for one label per image (not for segmentation masks).
        stratified = y is not None and np.ndim(y) == 1
        split = ValidSplit(self.validation_fraction, stratified=stratified, random_state=self._seed_ or 0)
        return split(dataset, y, **fit_params) if stratified else split(dataset, **fit_params)

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        """Seed the scale augmentation for this training call (after ``len(history)`` epochs)."""
        super().on_train_begin(net, X=X, y=y, **kwargs)
        if self.scale_augmentation is not None:
            self._augmentation_rng_ = augmentation_generator(self._seed_, len(self.history))

    def train_step(self, batch, **fit_params):
        """skorch's training step, ended with a clear error once the loss or the internal
        scales stop being finite: the fit has diverged."""
        step = super().train_step(batch, **fit_params)
        # One check (one device synchronisation) of the loss and every internal scale parameter.
        values = [step["loss"].detach().reshape(-1)]
        values += [
            p.detach().reshape(-1)
            for scales in find_internal_scales(self.module_)
            for p in scales.parameters()
        ]
        if not bool(torch.isfinite(torch.cat(values)).all()):
            raise ValueError(
                f"Training diverged in epoch {len(self.history)}: the loss or the internal scales are no "
                f"longer finite at lr={self.lr!r}, scale_lr={self.scale_lr!r}. Lower lr (or scale_lr, "
                "the internal scales' learning rate)."
            )
        return step

    def train_step_single(self, batch, **fit_params):
        """skorch's training step, on images rescaled by ``scale_augmentation`` if set."""
        return super().train_step_single(self._augmented(batch), **fit_params)

    def _augmented(self, batch):
        """The training batch with its images rescaled by ``scale_augmentation`` (if set)."""
        if self.scale_augmentation is None:
            return batch
        images, targets = unpack_data(batch)
        low, high = self.scale_augmentation
        draw, interpolation = self.scale_augmentation_draw, self.scale_augmentation_interpolation
        factors = draw_factors(len(images), low, high, self._augmentation_rng_, draw)
        return rescale_batch(images, factors, mode=interpolation), targets

    def infer(self, x, **fit_params):
        """skorch's forward pass. In training, a batch of one image (e.g. the last of an
        epoch) cannot give BatchNorm statistics: it is normalised with the running ones."""
        if not (self.module_.training and torch.is_tensor(x) and len(x) == 1):
            return super().infer(x, **fit_params)
        layers = [layer for layer in batchnorm_layers(self.module_) if layer.training]
        try:
            for layer in layers:
                layer.eval()
            return super().infer(x, **fit_params)
        finally:
            for layer in layers:
                layer.train()

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
            image (every layer's output plus the scale convolutions' padded spectra, from
            one probe pass), at least 1.
        """
        check_is_fitted(self)
        shape = self.input_shape_ if image_shape is None else tuple(image_shape)
        budget = (
            self.working_memory if self.working_memory is not None else sklearn.get_config()["working_memory"]
        )
        per_image = activation_bytes_per_image(self.module_, shape, self._compute_device())
        return max(1, int(budget * 2**20 // per_image))

    def _torch_threads(self):
        """``torch_threads`` intra-op threads while this estimator computes (None: torch's own)."""
        threads = self._parameter_constraints["torch_threads"].check(self.torch_threads, "torch_threads")
        return contextlib.nullcontext() if threads is None else torch_threads_in_this_process(threads)

    def forward_iter(self, X, training=False, device="cpu"):
        """skorch's batched forward passes (prediction, scoring), with ``torch_threads`` threads."""
        with self._torch_threads():
            yield from super().forward_iter(X, training=training, device=device)

    @contextlib.contextmanager
    def _seeded(self):
        if self.random_state is None:
            self._seed_ = None
            yield
            return
        self._seed_ = int(_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        devices = (
            [torch.cuda.current_device()]
            if torch.cuda.is_available() and str(self._compute_device()).startswith("cuda")
            else []
        )
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self._seed_)
            yield

    def _compute_device(self):
        """Where the network computes: ``device`` (None: the CPU, skorch leaves the module there)."""
        return self.device or "cpu"

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

    def _sweep(self):
        callback = dict(getattr(self, "callbacks_", [])).get("scale_selection")
        if not hasattr(callback, "candidates_"):
            raise AttributeError(
                f"{type(self).__name__} has isr_candidates_ and isr_validation_errors_ only after a fit "
                f"with scale_selection='sweep', got scale_selection={self._scale_selection()!r}."
            )
        return callback

    @property
    def isr_candidates_(self):
        return self._sweep().candidates_.copy()

    @property
    def isr_validation_errors_(self):
        return self._sweep().validation_errors_.copy()

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
        self._check_fit_params(fit_params)
        X, y = self._validate_training_data(X, y, reset=not (self.warm_start and self.initialized_))
        with self._seeded(), self._torch_threads():
            self._in_fit_ = True
            try:
                super().fit(X, y, **fit_params)
            finally:
                del self._in_fit_
            self._recalibrate_batchnorm(X, y)
        return self

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        """Train for ``max_epochs`` more epochs without re-initialising the network.

        The first call builds the network like ``fit``; ``classes`` (all labels that will
        ever be seen) is needed then if the first batch does not hold every class.
        """
        if self._in_fit_:  # called by skorch's fit: the data is validated and the generators seeded
            return super().partial_fit(X, y, **fit_params)
        self._check_fit_params(fit_params)
        X, y = self._validate_training_data(X, y, reset=not self.initialized_, classes=classes)
        with self._seeded(), self._torch_threads():
            super().partial_fit(X, y, **fit_params)
            self._recalibrate_batchnorm(X, y)
        return self

    def load_params(self, f_params=None, *args, **kwargs):
        """skorch's ``load_params``; a saved network that does not fit this one is refused
        with the hyper-parameter that differs (instead of torch's lists of keys)."""
        seen = {}
        module = getattr(self, "module_", None)
        handle = None
        if isinstance(module, torch.nn.Module):
            handle = module.register_load_state_dict_pre_hook(
                lambda _module, state, prefix, *rest: seen.setdefault("state", dict(state))
            )
        try:
            return super().load_params(f_params, *args, **kwargs)
        except RuntimeError as error:
            if "state" not in seen:
                raise
            raise ValueError(self._describe_state_mismatch(seen["state"])) from error
        finally:
            if handle is not None:
                handle.remove()

    def _describe_state_mismatch(self, state):
        differences = state_differences(self.module_, state)
        suspects = []
        if differences["scale_count"]:
            saved, own = differences["scale_count"]
            suspects.append(f"n_scales (saved {saved}, this network {own})")
        elif differences["scales"]:
            suspects.append("parameterisation (the internal scales' parameters differ)")
        if differences["outputs"]:
            saved, own = differences["outputs"]
            suspects.append(f"classes (saved {saved} outputs, this network has {own})")
        if differences["missing"] or differences["unexpected"] or (differences["shapes"] and not suspects):
            suspects.append("n_filters, architecture or module__ arguments (the layers differ)")
        details = [f"{key}: saved {saved}, here {own}" for key, saved, own in differences["shapes"][:3]]
        details += [f"missing {key}" for key in differences["missing"][:3]]
        details += [f"unexpected {key}" for key in differences["unexpected"][:3]]
        return (
            f"The saved parameters do not fit this {type(self).__name__}'s network: it was saved with "
            f"another {' and another '.join(suspects)}. Build the estimator with the hyper-parameters of "
            f"the one that saved it. Differences: {'; '.join(details)}."
        )

    def set_fit_request(self, **kwargs):
        """skorch's metadata requests of ``fit`` (routed to the module), ``sample_weight`` refused."""
        if "sample_weight" in kwargs:
            self._check_fit_params(kwargs)
        return super().set_fit_request(**kwargs)

    def _check_fit_params(self, fit_params):
        """Refuse ``sample_weight`` at once: the loss does not weigh samples."""
        if "sample_weight" in fit_params:
            raise ValueError(
                f"{type(self).__name__}.fit does not support sample_weight (its loss weighs every image "
                "the same); resample the training images instead, or pass class weights to the loss "
                "with criterion__weight=torch.tensor([...])."
            )

    def _fitted_layout(self):
        """How 4-D input is read at prediction: as in training when that was stated or decided."""
        layout = getattr(self, "image_layout_", None)
        return layout if layout in ("channels_first", "channels_last") else self.image_layout

    def estimate_scales(self, X, y=None):
        """Per-image relative scale, read from the trained network's own scale response.

        The internal scale, in pixels, at which each image's response in the network's
        max scale projection peaks (:func:`skscale.selection.read_winning_scales`: one
        probe scale beyond each end of the learned range, positions and channels weighted
        by the head's use of them, the peak interpolated between neighbouring scales in
        log-scale). It grows with the object's size but is not an object size, and
        larger objects are not read in proportion (the reading is compressed toward the
        learned range): use it to rank or compare images (Spearman rho >= 0.8 with the
        true scale of rescaled digits, in the tests).

        Parameters
        ----------
        X : array-like or torch Dataset
            Images in any form :meth:`predict` accepts.
        y : None
            Ignored.

        Returns
        -------
        scales : ndarray of shape (n_images,)
            Relative scale per image, in pixels of internal scale.
        """
        inputs = self._prediction_input(X)
        if is_dataset(inputs):
            inputs = [inputs[position][0] for position in range(len(inputs))]
            inputs = torch.stack([torch.as_tensor(image) for image in inputs])
        images = to_tensor(inputs, device=self.device)
        read = read_winning_scales(self.module_, images, batch_size=self.inference_batch_size())
        return np.exp(read.log_scales)

    def predict(self, X):
        """Predicted labels, of the type given to ``fit``: the most probable class of each image
        (``(n_images,)``) or, for a segmenter, of each pixel (masks ``(n_images, height, width)``)."""
        probabilities = self.predict_proba(X)  # before classes_: an unfitted estimator says so
        return self.classes_[np.argmax(probabilities, axis=1)]

    def _prediction_input(self, X):
        check_is_fitted(self)
        if is_dataset(X):
            return ImageDataset(X, shape=self.input_shape_, image_layout=self._fitted_layout())
        return self._images_as_fitted(X)

    def _images_as_fitted(self, X):
        """The array ``X`` read as the training images were; refused when their shape differs
        (naming a channel layout other than the training images')."""
        images, read = as_images(X, self.image_shape, self._fitted_layout())
        given = getattr(X, "shape", None)  # arrays and tensors; the hint is skipped for others
        check_image_shape(images.shape[1:], self.input_shape_, type(self).__name__, given, read)
        return images

    def _recalibrate_batchnorm(self, X, y):
        """Precise BN after training: the running statistics recomputed on the final weights
        over the training part of the data, without augmentation (see
        :func:`skscale.nn.batchnorm.recalibrate_batchnorm`)."""
        if not (self.recalibrate_batchnorm is True or self.recalibrate_batchnorm is np.True_):
            return
        dataset_train, _ = self.get_split_datasets(X, y)
        recalibrate_batchnorm(self.module_, image_batches(self, dataset_train))

    def export(self, X, *, format="torch", path=None):
        """Record the fitted network for deployment without skscale, skorch or scikit-learn.

        A copy of ``module_`` in eval mode (the internal scales fixed, their basis a
        constant) is recorded on its device while it predicts the example images ``X``;
        the estimator is left as it was. See :func:`skscale.export.export_module`.

        Parameters
        ----------
        X : array-like or torch Dataset
            Example images in any form :meth:`predict` accepts, e.g. ``X[:1]``. The
            recording reads batches of any size (a dynamic dimension named ``"batch"``).
        format : {"torch", "torchscript", "onnx"}, default="torch"
            :func:`torch.export.export`, :func:`torch.jit.trace`, or
            :func:`torch.onnx.export` with ``dynamo=True`` (``pip install
            "skscale[export]"``; input ``"images"``, output ``"logits"``; every scale
            convolution then runs directly, since ONNX has no complex spectra).
        path : str or path-like, optional
            Also save the recording there (``.pt2`` for ``torch.export.load``,
            ``torch.jit.load``, or ``onnxruntime.InferenceSession``).

        Returns
        -------
        program : torch.export.ExportedProgram, torch.jit.ScriptModule or torch.onnx.ONNXProgram
            Maps float32 images ``(n_images, channels, height, width)`` to class logits
            ``(n_images, n_classes)``, whose argmax indexes ``classes_``. Run it with
            ``program.module()(images)``, ``program(images)`` or ``program(images)[0]``.

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
        >>> X = np.random.RandomState(1).rand(30, 10, 10).astype("float32")
        >>> clf = ScaleEquivariantClassifier(n_filters=2, init_sigma_basis=1.0, max_epochs=1, random_state=0)
        >>> clf = clf.fit(X, X.mean(axis=(1, 2)) > 0.5)
        >>> program = clf.export(X[:5])
        >>> logits = program.module()(torch.as_tensor(X[:5, None]))
        >>> bool((clf.classes_[logits.argmax(dim=1).numpy()] == clf.predict(X[:5])).all())
        True
        """
        inputs = self._prediction_input(X)
        if is_dataset(inputs):
            if len(inputs) == 0:
                raise ValueError("X is an empty Dataset; export needs at least one example image.")
            inputs = torch.stack([inputs[position][0] for position in range(len(inputs))])
        return export_module(
            self.module_, to_tensor(inputs, device=self._compute_device()), format=format, path=path
        )

"""ScaleEquivariantClassifier: a scikit-learn classifier built on skorch's hooks.

skorch does the training (``fit`` -> ``initialize`` -> ``partial_fit`` -> ``fit_loop``);
:class:`skscale._base.ScaleNetworkMixin` reads the images and builds the scale network;
this class adds the classification contract: labels of any type are checked, become
class indices for the network (``get_dataset``), and come back as labels from
``predict``, ``score`` and the scorers' default ``target_extractor``.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import column_or_1d
from skorch import NeuralNetClassifier
from skorch.callbacks import EpochScoring
from skorch.utils import is_dataset, to_numpy

from ._base import ScaleNetworkMixin
from ._images import dataset_labels, encode_labels
from .augmentation import FACTOR_DRAWS, INTERPOLATIONS
from .nn.memory import LargeKernelWarning
from .selection import SCALE_SELECTIONS
from .utils.validation import Boolean, Integer, Options, Pair, Real

__all__ = ["ScaleEquivariantClassifier", "LargeKernelWarning"]


class _LabelsFromIndices:
    """``target_extractor`` of skorch's scorers: batches hold class indices, ``predict`` labels."""

    def __init__(self, classes=None):
        self.classes = classes

    def __call__(self, y):
        y = to_numpy(y)
        return y if self.classes is None else self.classes[y]


class ScaleEquivariantClassifier(ScaleNetworkMixin, NeuralNetClassifier):
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
    n_scales : int, optional
        Number of internal scales ``N_S``. This and the four scale hyper-parameters below
        (declared once, in :class:`skscale.nn.ScaleSpec`) default to None: the
        architecture's own setting (its ``scale_defaults``; ``"table1"``: 3 scales from
        ``init_sigma_basis=1.0``, ``init_isr=3.0``, ``"isr"``, ``kernel_extent=4.0``, with
        ``lr=1e-3`` the combination of lowest validation error in
        ``benchmarks/results/defaults-cpu.md``;
        ``"sesn"``: SESN's 4 scales from 1.5 and 2.0). A value you give wins.
        ``scale_spec_`` records what the network was built with.
    parameterisation : {"isr", "authors", "log", "ratios", "spacing", "direct", "fixed"}, optional
        How the internal scales are learned (see :class:`skscale.nn.InternalScales`);
        ``"fixed"`` is the SESN baseline with hand-picked scales.
    init_sigma_basis : float, optional
        Initial smallest internal scale, in pixels.
    init_isr : float or "auto", optional
        Initial internal scale range (> 1). :class:`skscale.ToleranceModel` recommends
        one for a known data scale distribution. ``"auto"`` finds it from the training
        images: ``fit`` estimates their object scales with
        :func:`skscale.estimate_scales` (with the labels; on at most 500 images, evenly
        spaced through the training set; images without an object are left out), fits
        ``ToleranceModel(n_scales)`` to them and starts from its ``isr_[0]``, raised to at
        least 1.25 so that a learned ISR can still move (the gradient of ``ISR = 1 +
        gamma**2`` vanishes at 1). Each fit estimates anew, so inside ``GridSearchCV``
        every fold uses only its own training images. ``initialize()`` before ``fit``
        needs a number (or None).
    kernel_extent : float, optional
        ``k`` of Eq. 6: kernels span ``2 ceil(k sigma) + 1`` pixels. When the scales
        are learned, prefer ``kernel_extent=4`` (the paper authors' setting): at ``k=2``
        the kernel window cuts off part of the higher-order Hermite functions, which
        biases the learned scales downwards (``benchmarks/results/kernel_extent-cpu.md``).
    n_filters : int, default=16
        Filters of the ``"table1"`` network (other architectures have fixed widths).
    image_shape : tuple of int or "row", optional
        ``(height, width)`` or ``(height, width, channels)``: how to read 2-D input rows
        (channels-last, C order, as images are usually flattened). Without it, 2-D rows
        are read as square single-channel images, and rows whose length is not a square
        number are refused; ``"row"`` reads each row as a ``1 x n_features`` image
        (tabular data). 3-D input is ``(n_samples, height, width)``; for 4-D input see
        ``image_layout``. If ``image_shape`` is also given it must agree with the images
        read. With ``image_shape`` and ``classes``, ``initialize()`` builds the network
        before any data is seen (e.g. to ``load_params`` a saved network).
    image_layout : {"auto", "channels_first", "channels_last"}, default="auto"
        How 4-D input is read: ``(n_samples, channels, height, width)`` (torch's layout)
        or ``(n_samples, height, width, channels)`` (numpy's, PIL's and scikit-image's).
        ``"auto"`` reads channels-last when the last axis has 1, 3 or 4 entries and the
        second has not, channels-first otherwise, and refuses shapes where both axes could
        be channels (e.g. ``(n, 3, 32, 3)``). The same rule reads the images a Dataset
        yields. ``image_layout_`` records what was read; prediction reads 4-D input the
        same way.
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
        for prediction and for the internal validation split. Factors lie in [0.1, 10]:
        beyond them an object shrinks below a pixel or fills the image with one pixel.
    scale_augmentation_draw : {"log-uniform", "uniform"}, default="log-uniform"
        How the factors of ``scale_augmentation`` are drawn from ``[low, high]``:
        log-uniformly (as many shrink as magnify) or uniformly (torchvision's
        ``RandomAffine(scale=(low, high))``, the SESN authors' "+" transform).
    scale_augmentation_interpolation : {"bilinear", "bicubic"}, default="bilinear"
        Resampling of the rescaled images (the SESN authors': bicubic).
    early_stopping : bool, default=False
        Hold out a seeded, stratified ``validation_fraction`` of the training data and stop
        when the validation loss has not improved for ``n_iter_no_change`` epochs,
        restoring the best weights (as :class:`~sklearn.neural_network.MLPClassifier`).
    validation_fraction : float, default=0.1
        Used only with ``early_stopping=True``.
    n_iter_no_change : int, default=10
        Used only with ``early_stopping=True``.
    recalibrate_batchnorm : bool, default=True
        At the end of ``fit`` and ``partial_fit`` (after early stopping restored the best
        weights), recompute every BatchNorm layer's running statistics on the final
        weights: one pass over the training images without augmentation, with the
        weights frozen ("precise BN", :func:`skscale.nn.batchnorm.recalibrate_batchnorm`).
        The running averages of training lag behind the weights, which after a short fit
        can make eval-mode predictions collapse onto one class.
    torch_threads : int, optional
        Intra-op threads of torch while the estimator fits and predicts (restored
        afterwards); None leaves torch's setting. Float sums depend on how a computation
        is split between threads, so fits with different thread counts differ in the last
        digits: scikit-learn's ``n_jobs`` workers run torch on fewer threads than the
        parent (``cpu_count // n_jobs``), and ``cross_val_score(..., n_jobs=1)`` and
        ``n_jobs=2`` then differ in the fourth decimal. ``torch_threads=1`` gives the same
        results for any ``n_jobs`` (and is often as fast for small networks).
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
    scale_selection : {"gradient", "response", "sweep"}, default="gradient"
        How the internal scales are chosen while the weights train (keyword only;
        :mod:`skscale.selection`):

        - ``"gradient"``: the paper's method: the scale parameters are trained by the
          optimiser (``scale_lr``, ``scale_warmup_epochs``).
        - ``"response"``: after every epoch the network reads which internal scale wins
          its max scale projection on up to 256 training (or validation) images, with a
          probe scale beyond each end of the range; ``sigma_basis`` and the ISR move half
          way toward the 10 % and 90 % quantiles of those winning scales, and widen
          when an end probe wins most images
          (:class:`~skscale.selection.ResponseSelection`).
        - ``"sweep"``: every training batch draws ``log ISR`` uniformly over [1.25, 12];
          two epochs before the end, the BatchNorm statistics are recomputed at each of 8
          ISRs, the one with the lowest error on a validation split (``validation_fraction``
          of the training data, held out unless ``train_split`` or ``early_stopping`` gives
          one) is kept and the last epochs fine-tune there
          (:class:`~skscale.selection.SweepSelection`; ``isr_candidates_``,
          ``isr_validation_errors_``). With ``early_stopping`` the last epoch is kept,
          not the best one (earlier epochs ran at random ISRs).

        With ``"response"`` and ``"sweep"`` the optimiser does not move the scales (their
        rate is 0), whatever the ``parameterisation``; they start from ``init_isr``
        (``"auto"`` included). Tune a mechanism with ``callbacks__scale_selection__*``
        (e.g. ``callbacks__scale_selection__damping=0.3``).
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
    image_layout_ : {"flattened", "grayscale", "channels_first", "channels_last"}
        How the training images were read: 2-D rows, 3-D ``(n, H, W)``, or 4-D (or a
        Dataset's images) with the channel axis first or last.
    init_isr_ : float
        The initial ISR the network started from: ``init_isr``, the estimated one for
        ``init_isr="auto"``, or the architecture's own for None.
    scale_spec_ : skscale.nn.ScaleSpec or None
        The scale hyper-parameters the network was built with (the architecture's
        defaults updated by the arguments given); None for a network that takes no
        ``scale_spec`` (e.g. ``"cnn"``).
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
    isr_candidates_ : ndarray of shape (n_candidates,)
        With ``scale_selection="sweep"``: the ISRs validated.
    isr_validation_errors_ : ndarray of shape (n_candidates,)
        With ``scale_selection="sweep"``: the validation error rate at each, after the
        BatchNorm statistics were recomputed at that ISR.
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
        **ScaleNetworkMixin._parameter_constraints,
        "scale_selection": Options(SCALE_SELECTIONS),
        "scale_augmentation": Pair(Real(low=0.1, high=10), allow_equal=True, allow_none=True),
        "scale_augmentation_draw": Options(tuple(FACTOR_DRAWS)),
        "scale_augmentation_interpolation": Options(INTERPOLATIONS),
        "early_stopping": Boolean(),
        "n_iter_no_change": Integer(low=1),
    }

    def __init__(
        self,
        architecture="table1",
        n_scales=None,
        parameterisation=None,
        init_sigma_basis=None,
        init_isr=None,
        kernel_extent=None,
        n_filters=16,
        image_shape=None,
        image_layout="auto",
        scale_lr=None,
        scale_warmup_epochs=0,
        scale_augmentation=None,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        working_memory=None,
        recalibrate_batchnorm=True,
        torch_threads=None,
        random_state=None,
        *,
        scale_selection="gradient",
        scale_augmentation_draw="log-uniform",
        scale_augmentation_interpolation="bilinear",
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
        self._store_parameters(locals())

    def _validate_targets(self, y, images):
        """Class labels of any type, one per image."""
        n_samples = len(images)
        y = column_or_1d(y, warn=True)
        if len(y) != n_samples:
            raise ValueError(f"X and y have different numbers of samples: {n_samples} and {len(y)}.")
        if y.dtype.kind == "f" and np.isnan(y).any():
            raise ValueError(
                f"y holds NaN labels (at samples {np.flatnonzero(np.isnan(y))[:5].tolist()} ...)."
            )
        if type_of_target(y, input_name="y") == "continuous":
            raise ValueError(
                "y holds non-integer float labels, which scikit-learn reads as continuous values (a "
                "regression target); if they are classes, pass them as strings, e.g. y.astype(str)."
            )
        check_classification_targets(y)
        return y

    def get_dataset(self, X, y=None):
        """skorch's dataset of the images, with the labels as class indices."""
        if y is not None and not is_dataset(X):
            y = encode_labels(y, self.classes_)
        return super().get_dataset(X, y)

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

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes), columns ordered as ``classes_``.

        ``X`` is validated like the training data; a torch ``Dataset`` yielding
        ``(image, label)`` pairs (labels are ignored) is streamed through skorch's iterator.
        """
        return super().predict_proba(self._prediction_input(X))

    def score(self, X, y=None, sample_weight=None):
        """Mean accuracy; ``y`` may be omitted for a Dataset (its labels are used)."""
        if y is None and is_dataset(X):
            y = dataset_labels(X)
        return super().score(X, y, sample_weight=sample_weight)

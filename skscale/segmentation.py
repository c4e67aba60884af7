"""ScaleEquivariantSegmenter: per-pixel classification with scale networks, on skorch.

skorch does the training; :class:`skscale._base.ScaleNetworkMixin` reads the images and
builds the network, here from :data:`skscale.nn.SEGMENTATION_ARCHITECTURES`; this class
adds the segmentation contract: masks ``(n, H, W)`` of labels of any type, a label that
is ignored (never a class, left out of the loss and the score), class indices for the
network (``get_dataset``), masks back from ``predict`` and the mean intersection over
union from ``score``.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.utils.validation import check_array, check_is_fitted
from skorch import NeuralNet
from skorch.utils import is_dataset

from ._base import ScaleNetworkMixin
from ._images import IGNORED_INDEX, as_images, encode_labels
from .metrics import ignored_pixels, mean_intersection_over_union
from .nn.segmentation import get_segmentation_builder
from .utils.validation import Options

__all__ = ["ScaleEquivariantSegmenter", "class_probabilities", "DEFAULT_SEGMENTATION_ARCHITECTURE"]

#: The default ``architecture``: the best mean IoU of ``benchmarks/results/segmentation-cpu.json``.
DEFAULT_SEGMENTATION_ARCHITECTURE = "dss"
#: The scale selections of the segmenter (those of the classifier that read no class score).
SEGMENTATION_SCALE_SELECTIONS = ("gradient", "sweep")


def class_probabilities(logits):
    """Softmax over the class axis of per-pixel logits ``(B, n_classes, H, W)``."""
    return torch.softmax(logits, dim=1)


class ScaleEquivariantSegmenter(ScaleNetworkMixin, NeuralNet):
    """Semantic segmentation with scale-equivariant, fully convolutional networks.

    A skorch :class:`~skorch.NeuralNet` that labels every pixel, used like a scikit-learn
    estimator: ``fit(X, y)`` with images and label masks, ``predict`` masks, ``score``
    the mean intersection over union; ``clone``, ``GridSearchCV`` (over ``architecture``,
    ``init_isr``, ...) and pickling work. The networks are fully convolutional, so
    ``predict`` reads images of any height and width (with the training channels).

    Parameters
    ----------
    architecture : str or callable, default="dss"
        A network of :data:`skscale.nn.SEGMENTATION_ARCHITECTURES`: ``"dss"`` (Deep
        Scale-spaces S-ResNet with multiscale interaction), ``"dss_independent"``
        (without it), ``"sesn"`` (encoder-decoder on scale convolutions with learnable
        internal scales), ``"resnet"`` and ``"resnet_wide"`` (plain ResNets matched in
        parameters and in channels), or a builder ``builder(n_classes, in_channels,
        **arguments)`` returning a module of per-pixel logits ``(B, n_classes, H, W)``.
        The default had the best mean IoU on the offline scaled-digit set
        (``benchmarks/results/segmentation-cpu.md``).
    n_scales, parameterisation, init_sigma_basis, init_isr, kernel_extent : optional
        The scale hyper-parameters of :class:`~skscale.ScaleEquivariantClassifier`, None
        meaning the architecture's own. ``"sesn"`` reads all of them (it starts from 3
        scales, ``init_sigma_basis=1.0``, ``init_isr=2.0``); the S-ResNets and
        ``"resnet_wide"`` read ``n_scales`` (levels of the scale-space, and the width
        factor of ``"resnet_wide"``). ``init_isr="auto"`` estimates the ISR from the
        training images, each image one sample (the masks play no part).
    n_filters : int, default=16
        Channels of the networks' layers (``"sesn"``: of its full-resolution layers).
    ignore_label : object, default=255
        Mask label of pixels without a class (Cityscapes' 255): never a class, not in the
        loss, not in the score; ``predict`` never returns it. None: every label is a class.
    image_shape : tuple of int, optional
        ``(height, width)`` or ``(height, width, channels)`` of flattened 2-D input rows
        (whose masks may then be flattened rows too), as in the classifier.
    image_layout : {"auto", "channels_first", "channels_last"}, default="auto"
        How 4-D input is read, as in the classifier (``image_layout_`` records it).
    scale_lr : float, optional
        Learning rate of the scale parameters; defaults to ``lr``.
    scale_warmup_epochs : int, default=0
        Linear warm-up of the scale learning rate (:class:`skscale.callbacks.ScaleLRWarmup`).
    working_memory : float, optional
        Memory budget, in MiB, of one forward pass at prediction (see the classifier).
    recalibrate_batchnorm : bool, default=True
        BatchNorm statistics recomputed on the final weights at the end of ``fit``, as in
        the classifier.
    torch_threads : int, optional
        Torch's intra-op threads while fitting and predicting, as in the classifier.
    scale_selection : {"gradient", "sweep"}, default="gradient"
        How the internal scales are chosen, as in the classifier: by gradient descent, or
        by a sweep over ISRs validated on a held-out ``validation_fraction`` of the images
        (error per pixel; ``isr_candidates_``, ``isr_validation_errors_``). The
        classifier's ``"response"`` reads one class score per image and is not offered.
    validation_fraction : float, default=0.1
        Images held out to validate the sweep's candidate ISRs.
    random_state : int, RandomState instance or None, default=None
        Seeds the weights, the batch order and everything random in training.
    module : torch.nn.Module class or instance, or callable, optional
        Your own network instead of ``architecture`` (skorch's semantics).
    classes : array-like, optional
        All class labels, in the order of the ``predict_proba`` channels; inferred from
        the masks (all labels but ``ignore_label``) otherwise.
    criterion, optimizer, lr, max_epochs, batch_size, train_split, callbacks, \
predict_nonlinearity, verbose, device, **kwargs
        skorch arguments: per-pixel cross-entropy (ignored pixels reach it as -100, its
        default ``ignore_index``), Adam, ``lr=1e-2``, 10 epochs, batch size 16, no
        internal validation split, softmax over the class axis for ``predict_proba``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels, of the type given in ``y``.
    n_features_in_ : int
        Values per training image (``channels * height * width``).
    input_shape_ : tuple of int
        ``(channels, height, width)`` of the training images.
    init_isr_, scale_spec_, tolerance_, scales_, sigma_basis_, isr_, module_, history
        As for :class:`~skscale.ScaleEquivariantClassifier`.

    Examples
    --------
    >>> import numpy as np
    >>> from skscale import ScaleEquivariantSegmenter
    >>> rng = np.random.RandomState(0)
    >>> X = rng.rand(8, 16, 16).astype("float32")
    >>> y = np.where(X > 0.5, "bright", "dark")
    >>> seg = ScaleEquivariantSegmenter(n_filters=4, max_epochs=2, random_state=0).fit(X, y)
    >>> seg.predict(X[:2]).shape, seg.predict_proba(rng.rand(1, 20, 24)).shape
    ((2, 16, 16), (1, 2, 20, 24))
    """

    _parameter_constraints = {
        **ScaleNetworkMixin._parameter_constraints,
        "scale_selection": Options(SEGMENTATION_SCALE_SELECTIONS),
    }

    # Training options of the shared mixin that segmentation does not offer yet: a scale
    # augmentation would have to rescale the masks too, and a stratified validation split
    # has no single label per image.
    scale_augmentation = None
    early_stopping = False

    def __init__(
        self,
        architecture=DEFAULT_SEGMENTATION_ARCHITECTURE,
        n_scales=None,
        parameterisation=None,
        init_sigma_basis=None,
        init_isr=None,
        kernel_extent=None,
        n_filters=16,
        ignore_label=255,
        image_shape=None,
        image_layout="auto",
        scale_lr=None,
        scale_warmup_epochs=0,
        working_memory=None,
        recalibrate_batchnorm=True,
        torch_threads=None,
        random_state=None,
        *,
        scale_selection="gradient",
        validation_fraction=0.1,
        module=None,
        classes=None,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=1e-2,
        max_epochs=10,
        batch_size=16,
        train_split=None,
        callbacks=None,
        predict_nonlinearity=class_probabilities,
        verbose=0,
        device="cpu",
        **kwargs,
    ):
        self._store_parameters(locals())

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags

    # ------------------------------------------------------------------ masks and classes
    @property
    def classes_(self):
        if self.classes is not None:
            return np.asarray(self.classes)
        try:
            return self.classes_inferred_
        except AttributeError:
            raise AttributeError(
                f"{type(self).__name__} has no classes_ before fit (or classes=[...])."
            ) from None

    def _builder(self):
        return get_segmentation_builder(self.architecture) if self.module is None else self.module

    def _check_masks(self, y, images_shape):
        """Masks ``(n, H, W)`` (or flattened ``(n, H * W)``) of the images' height and width."""
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None.")
        y = check_array(y, allow_nd=True, ensure_2d=False, dtype=None, input_name="y")
        n_images, _, height, width = images_shape
        if y.ndim == 2 and y.shape == (n_images, height * width):
            y = y.reshape(n_images, height, width)
        if y.shape != (n_images, height, width):
            raise ValueError(
                f"y must hold one mask of shape (height, width) = {(height, width)} per image, i.e. have "
                f"shape {(n_images, height, width)}, got {y.shape}."
            )
        return y

    def _validate_training_data(self, X, y, reset, classes=None):
        if is_dataset(X):
            raise ValueError(
                f"{type(self).__name__} trains on arrays of images and masks; got a "
                f"{type(X).__name__}. Pass X (n, [channels,] height, width) and y (n, height, width)."
            )
        return super()._validate_training_data(X, y, reset, classes)

    def _validate_targets(self, y, images):
        """Masks of the images' height and width."""
        return self._check_masks(y, images.shape)

    def _scale_estimation_labels(self, y):
        return np.zeros(len(y), dtype=np.int64)  # every image one sample of one "class"

    def _learn_classes(self, X, y, classes):
        if self.classes is None:
            if classes is not None:
                self.classes_inferred_ = np.unique(np.asarray(classes))
            else:
                self.classes_inferred_ = np.unique(y[~ignored_pixels(y, self.ignore_label)])
        found = self.classes_
        if ignored_pixels(found, self.ignore_label).any():
            raise ValueError(
                f"classes must not hold ignore_label={self.ignore_label!r}, got {found.tolist()!r}."
            )
        if len(found) < 2:
            raise ValueError(
                f"y must hold at least two classes besides ignore_label={self.ignore_label!r}, got "
                f"{len(found)}: {found.tolist()!r}."
            )

    def encode_masks(self, y):
        """Class indices ``int64`` of the masks ``y``, ``-100`` where ``y`` is ``ignore_label``.

        Raises ``ValueError`` naming any other label that is not among ``classes_``.
        """
        y = np.asarray(y)
        ignored = ignored_pixels(y, self.ignore_label)
        indices = np.full(y.shape, IGNORED_INDEX, dtype=np.int64)
        indices[~ignored] = encode_labels(y[~ignored], self.classes_)
        return indices

    def get_dataset(self, X, y=None):
        """skorch's dataset of the images, with the masks as class indices."""
        if y is not None and not is_dataset(X):
            y = self.encode_masks(y)
        return super().get_dataset(X, y)

    # ------------------------------------------------------------------ prediction
    def _prediction_input(self, X):
        """Images of any height and width, with the training channels."""
        check_is_fitted(self)
        if is_dataset(X):
            raise ValueError(f"{type(self).__name__} predicts arrays of images, got a {type(X).__name__}.")
        images, _ = as_images(X, self.image_shape if np.ndim(X) == 2 else None, self._fitted_layout())
        if images.shape[1] != self.input_shape_[0]:
            raise ValueError(
                f"X has images of {images.shape[1]} channels, but {type(self).__name__} was fitted on "
                f"images of {self.input_shape_[0]}."
            )
        return images

    def predict_proba(self, X):
        """Class probabilities per pixel, shape ``(n_images, n_classes, height, width)``.

        The class axis is ordered as ``classes_``; images may have any height and width.
        """
        return super().predict_proba(self._prediction_input(X))

    def score(self, X, y, sample_weight=None):
        """Mean intersection over union of :meth:`predict` against the masks ``y``.

        Over the classes present in ``y`` or in the prediction, pixels where ``y`` is
        ``ignore_label`` left out (:func:`skscale.metrics.mean_intersection_over_union`).
        ``sample_weight`` is not supported.
        """
        if sample_weight is not None:
            raise ValueError(f"{type(self).__name__}.score does not support sample_weight.")
        images = self._prediction_input(X)
        masks = self._check_masks(y, images.shape)
        return mean_intersection_over_union(masks, self.predict(images), ignore_label=self.ignore_label)

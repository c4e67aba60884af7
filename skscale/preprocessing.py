"""Image transformers that keep the equivariance of the networks that follow them."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from .utils.validation import Boolean, check_params

__all__ = ["ImageStandardizer"]

_FLOAT_DTYPES = (np.float64, np.float32)


class ImageStandardizer(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Standardise images with one mean and one standard deviation for all pixels.

    ``fit`` learns the mean and the standard deviation of all pixel values of the
    training images together; ``transform`` returns ``(X - mean_) / scale_`` in the
    input's shape. Unlike :class:`~sklearn.preprocessing.StandardScaler`, which
    standardises each pixel position on its own, one pair of numbers treats every
    position alike, and so keeps the translation and scale equivariance of a
    scale-equivariant network that follows it in a :class:`~sklearn.pipeline.Pipeline`.

    Parameters
    ----------
    with_mean : bool, default=True
        Subtract the mean pixel value.
    with_std : bool, default=True
        Divide by the standard deviation of the pixel values.

    Attributes
    ----------
    mean_ : float
        Mean pixel value of the training images (0.0 when ``with_mean=False``).
    scale_ : float
        Their standard deviation (1.0 when ``with_std=False`` or for constant images).
    n_features_in_ : int
        Values per image (the product of the image axes).
    feature_names_in_ : ndarray of str
        Column names, when fitted on a DataFrame of flattened images with string names.

    See Also
    --------
    sklearn.preprocessing.StandardScaler : one mean and deviation per feature (pixel).

    Examples
    --------
    >>> import numpy as np
    >>> images = np.array([[[0.0, 1.0], [1.0, 0.0]], [[1.0, 1.0], [0.0, 0.0]]])
    >>> standardizer = ImageStandardizer().fit(images)
    >>> standardizer.mean_, standardizer.scale_
    (0.5, 0.5)
    >>> standardizer.transform(images)[0]
    array([[-1.,  1.],
           [ 1., -1.]])
    """

    _parameter_constraints = {"with_mean": Boolean(), "with_std": Boolean()}

    def __init__(self, with_mean=True, with_std=True):
        self.with_mean = with_mean
        self.with_std = with_std

    def _validate_images(self, X, *, reset):
        """``X`` as a float array of images and as a (n_samples, n_features) view of it.

        Arrays of any number of axes are flattened to two before scikit-learn's checks, so
        that ``n_features_in_`` counts the values per image (as the classifier does);
        DataFrames (two axes) keep their column names.
        """
        if not hasattr(X, "columns"):
            X = check_array(X, allow_nd=True, dtype=_FLOAT_DTYPES, input_name="X")
            shape = X.shape
            X = X.reshape(shape[0], -1)
        else:
            shape = None
        flat = validate_data(self, X, reset=reset, dtype=_FLOAT_DTYPES)
        return flat.reshape(shape if shape is not None else flat.shape), flat

    def fit(self, X, y=None):
        """Learn the mean and the standard deviation of all pixel values of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Images, with any number of axes after the first.
        y : None
            Ignored.

        Returns
        -------
        self : ImageStandardizer
            Fitted.
        """
        params = check_params(self.get_params(deep=False), self._parameter_constraints)
        _, flat = self._validate_images(X, reset=True)
        self.mean_ = float(np.mean(flat, dtype=np.float64)) if params["with_mean"] else 0.0
        std = float(np.std(flat, dtype=np.float64)) if params["with_std"] else 1.0
        self.scale_ = std if std > 0 else 1.0
        return self

    def transform(self, X):
        """Standardise ``X`` with the training mean and standard deviation.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Images with ``n_features_in_`` values each.

        Returns
        -------
        X_standardised : ndarray of the shape of ``X``
            Floating point, of the input's precision (float64 for integer input).
        """
        check_is_fitted(self)
        images, _ = self._validate_images(X, reset=False)
        return ((images - self.mean_) / self.scale_).astype(images.dtype, copy=False)

    def inverse_transform(self, X):
        """Undo :meth:`transform`: ``X * scale_ + mean_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Standardised images with ``n_features_in_`` values each.

        Returns
        -------
        X_original : ndarray of the shape of ``X``
        """
        check_is_fitted(self)
        images, _ = self._validate_images(X, reset=False)
        return (images * self.scale_ + self.mean_).astype(images.dtype, copy=False)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

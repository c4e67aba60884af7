"""Internal Scale Tolerance Model (Basting et al., 2024, §3, Fig. 2 and Fig. 5).

The model answers the question "which internal scales suit a known data scale
distribution?". It lives in log2 space (octaves): each of the ``n_scales``
internal scales tolerates data scales following a normal distribution of
standard deviation ``tau`` centred on the internal scale, and the tolerance
model is the equal-weight mixture of those normals. Its reference scale and
internal scale range (ISR) are fitted by minimising the Kullback-Leibler
divergence KL(tolerance model || data density).
"""

import math

import numpy as np
from scipy.special import logsumexp
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import (
    check_array,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from ._scales import log_uniform_scales, scale_exponents
from ._tolerance_fit import (
    POINTS_PER_TAU,
    check_float64_reach,
    check_resolution,
    group_name,
    kde_bandwidth,
    log_components,
    log_data_density,
    optimise,
)
from .utils.validation import AnyOf, Integer, Options, Real, check_params

__all__ = ["ToleranceModel"]

# Descriptions of the parameters that the evaluation methods share, indented for
# a method's docstring; "parameters_X_group" is a whole Parameters section.
_DOC_X = """X : array-like of shape (n_samples,) or (n_samples, 1)
            Scale factors, strictly positive and finite."""
_DOC_GROUP = """group : label, default=None
            Which data distribution's model to use; one of ``groups_``. May be
            omitted when the model has a single group."""
_SHARED_PARAMETERS = {
    "X": _DOC_X,
    "group": _DOC_GROUP,
    "log2_scales": """log2_scales : array-like of shape (n_points,)
            Points in log2-scale space (octaves).""",
    "parameters_X_group": f"""Parameters
        ----------
        {_DOC_X}

        {_DOC_GROUP}""",
}


def _shared_parameters(method):
    """Fill the fields of ``_SHARED_PARAMETERS`` (``{X}``, ``{group}``, ...) in a docstring."""
    if method.__doc__:  # docstrings are stripped under python -OO
        method.__doc__ = method.__doc__.format(**_SHARED_PARAMETERS)
    return method


def _group_labels(y, log2_scales):
    """Sorted distinct labels of ``y`` and each scale's index into them."""
    if y is None:
        return None, np.zeros(log2_scales.size, dtype=np.intp)
    # Look for missing labels before NumPy turns a list ["a", nan] into strings.
    as_given = np.asarray(y) if hasattr(y, "dtype") else np.asarray(y, dtype=object)
    missing = np.array([_is_missing(label) for label in as_given.ravel()], dtype=bool)
    if missing.any():
        raise ValueError(
            "y must label every scale with its data distribution; got "
            f"{int(missing.sum())} missing label(s) (NaN or None), the first at index "
            f"{int(np.flatnonzero(missing)[0])}."
        )
    y = column_or_1d(check_array(y, ensure_2d=False, dtype=None, input_name="y"), warn=True)
    check_consistent_length(log2_scales, y)
    try:
        return np.unique(y, return_inverse=True)
    except TypeError:
        raise ValueError(
            "y must hold labels that can be sorted (all numbers or all strings, "
            f"no None); got labels of types {sorted({type(v).__name__ for v in y})}."
        ) from None


def _is_missing(label):
    return label is None or (isinstance(label, (float, np.floating)) and math.isnan(label))


class ToleranceModel(DensityMixin, BaseEstimator):
    """Internal Scale Tolerance Model fitted on observed data scales.

    Each of the ``n_scales`` internal scales tolerates the data scales around it
    following a normal distribution in log2-scale space (octaves) with standard
    deviation ``tau``. The internal scale ``i`` sits at
    ``log2(r) + i / (n_scales - 1) * log2(ISR)``, where ``r`` is the reference
    scale and ``ISR`` the internal scale range. The tolerance model is the
    equal-weight mixture of these normals (paper §3, Fig. 2).

    Fitting estimates the data scale density from the observed scales, extends
    it beyond the observed range with half-normal tails, and minimises
    KL(tolerance model || data density) over ``r``, ``ISR`` and ``tau`` (those
    not fixed). The fitted ``isr_[0]`` is the recommended ``init_isr`` of
    :class:`skscale.ScaleEquivariantClassifier`.

    Parameters
    ----------
    n_scales : int, default=3
        Number of internal scales N_S (mixture components).

    tau : float or None, default=0.459
        Standard deviation of each tolerance, in octaves. A float fixes it; the
        default is the paper's value from a joint fit on three distributions,
        because a single distribution determines ``tau`` poorly. ``None`` fits
        it (shared by all groups when ``y`` is given to :meth:`fit`).

    isr : float or None, default=None
        Internal scale range (ratio of the largest to the smallest internal
        scale), at least 1. A float fixes it for every group; ``None`` fits it.

    reference_scale : float or None, default=None
        Smallest internal scale ``r``, in the units of the data scales. A float
        fixes it for every group; ``None`` fits it.

    density : {"loguniform", "kde"}, default="loguniform"
        Data scale density inside the observed range: uniform in log2 between
        the smallest and the largest observed scale, or a Gaussian kernel
        density estimate in log2 space (for any other distribution).

    bandwidth : float or {"scott", "silverman"}, default="scott"
        Standard deviation of the Gaussian kernel, in octaves, when
        ``density="kde"``. The strings choose the rule of thumb of
        :class:`scipy.stats.gaussian_kde` applied to the log2 scales of each
        group. Ignored for ``density="loguniform"``.

    tail_std : float, default=0.4
        Standard deviation, in octaves, of the half-normal tails that extend the
        data density beyond the observed range; the tails start at the density
        value at each boundary (models generalisation to unseen scales).

    grid_size : int, default=2048
        Number of points of the grid on which the divergence is evaluated. The
        grid must resolve ``tau`` (see Notes).

    grid_margin : float, default=4.0
        The grid spans ``[log2(min(X)) - grid_margin, log2(max(X)) + grid_margin]``
        (per group), in octaves. It should be several times ``tail_std`` and
        ``tau`` so that both densities are negligible at its ends.

    tol : float, default=1e-9
        Tolerance of the L-BFGS-B optimiser (``tol`` of
        :func:`scipy.optimize.minimize`).

    max_iter : int, default=1000
        Maximum number of L-BFGS-B iterations per starting point.

    random_state : int, RandomState instance or None, default=None
        Seeds :meth:`sample`. Fitting is deterministic.

    Attributes
    ----------
    tau_ : float
        Standard deviation of each tolerance, in octaves, shared by all groups.

    reference_scale_ : ndarray of shape (n_groups,)
        Smallest internal scale ``r`` of each group, in data-scale units.

    isr_ : ndarray of shape (n_groups,)
        Internal scale range of each group; 1.0 when ``n_scales == 1`` and
        ``isr`` is None (a single scale has no range).

    internal_scales_ : ndarray of shape (n_groups, n_scales)
        The internal scales ``r * ISR ** (i / (n_scales - 1))`` of each group,
        in data-scale units (Eq. 2).

    data_range_ : ndarray of shape (n_groups, 2)
        Smallest and largest observed scale of each group: the boundaries where
        the tails of the data density start.

    groups_ : ndarray of shape (n_groups,) or None
        Sorted distinct labels of ``y``, in the order of the first axis of the
        attributes above; None when fitted without ``y`` (then ``n_groups`` is 1).

    kl_ : ndarray of shape (n_groups,)
        KL(tolerance model || data density) reached by each group, in nats. A
        joint fit minimises their sum.

    n_iter_ : int
        Number of L-BFGS-B iterations of the best starting point (0 when every
        parameter is fixed).

    converged_ : bool
        Whether the best run of the optimiser reported convergence with a
        finite divergence (True when every parameter is fixed).

    n_features_in_ : int
        Number of features seen during ``fit`` (always 1).

    feature_names_in_ : ndarray of shape (1,)
        Name of the column of scales, defined only when ``X`` has a string
        column name.

    See Also
    --------
    sklearn.mixture.GaussianMixture : The density estimator this API follows.

    Notes
    -----
    **Shapes.** As the attributes of
    :class:`~sklearn.mixture.GaussianMixture` have a leading axis of length
    ``n_components``, every group-dependent attribute has a leading axis of
    length ``n_groups``: the number of distinct labels of ``y``, or 1 when
    :meth:`fit` is called without ``y``. The shapes never depend on whether
    ``y`` was given; the ISR of a single distribution is ``isr_[0]``. Methods
    that evaluate the model take a ``group`` keyword: it must be one of
    ``groups_``, and may be omitted when only one group exists;
    :meth:`group_index` gives its position on the leading axis.

    **Units.** Internally every scale is ``u = log2(scale)``. :meth:`tolerance_pdf`
    and :meth:`data_density` are densities *per octave* (they integrate to one
    over ``u``). :meth:`score_samples` is the log density of the scales
    themselves, ``log tolerance_pdf(log2(s)) - log(s * ln 2)``, consistent with
    :meth:`sample`.

    **Range.** The fit works in octaves, but the fitted attributes are scale
    factors, so :meth:`fit` refuses, before fitting, data whose internal scales
    or ISR could leave float64 (``2 ** -1022`` to ``2 ** 1024``; for instance
    scales spanning 1e-300 to 1e300). The model is equivariant to rescaling
    ``X``: dividing it by its geometric mean brings such data into range.

    **Divergence.** Both densities are evaluated on the grid (see
    ``grid_size`` and ``grid_margin``) and normalised there, so ``kl_`` is the
    divergence between two probability vectors. The data density is evaluated
    in log space from its closed form (uniform or kernel density inside the
    observed range, quadratic log-tails outside), so it is strictly positive on
    the whole grid and no floor on ``log(0)`` is needed. The grid resolves a
    tolerance only if its spacing is at most ``tau / 4``: a fixed ``tau`` below
    that is refused (with the ``grid_size`` that would do), a fitted one is kept
    above it.

    **Optimisation.** L-BFGS-B with the analytic gradient over ``log2(r)`` in
    ``[log2(min(X)) - grid_margin, log2(max(X)) + grid_margin]``, ``log2(ISR)``
    in ``[0, log2(max(X) / min(X)) + 2 * grid_margin]`` and ``tau`` between four
    grid spacings and ``grid_margin``. It starts from up to nine deterministic
    points (internal scales spanning 25 %, 50 % or 75 % of the observed log2
    range, centred in it, times ``tau`` of 0.2, 0.5 or 1 octave; starts that
    coincide because parameters are fixed are run once) and keeps the lowest
    divergence. The joint fit minimises the sum of the groups' divergences.

    References
    ----------
    Basting, M., Bruintjes, R.-J., Wiedemer, T., Kümmerer, M., Bethge, M. and
    van Gemert, J. (2024). Scale Learning in Scale-Equivariant Convolutional
    Networks. VISAPP 2024.

    Examples
    --------
    >>> import numpy as np
    >>> from skscale import ToleranceModel
    >>> rng = np.random.default_rng(0)
    >>> scales = 2.0 ** rng.uniform(0.0, 3.0, size=500)  # log-uniform on [1, 8]
    >>> model = ToleranceModel(n_scales=3).fit(scales)
    >>> model.internal_scales_.shape
    (1, 3)
    >>> bool(1.0 < model.isr_[0] < 8.0)
    True
    >>> model.predict([1.0, 8.0])
    array([0, 2])
    """

    _parameter_constraints: dict = {
        "n_scales": Integer(low=1),
        "tau": Real(low=0, closed="neither", allow_none=True),
        "isr": Real(low=1, allow_none=True),
        "reference_scale": Real(low=0, closed="neither", allow_none=True),
        "density": Options(("loguniform", "kde")),
        "bandwidth": AnyOf(Real(low=0, closed="neither"), Options(("scott", "silverman"))),
        "tail_std": Real(low=0, closed="neither"),
        "grid_size": Integer(low=16),
        "grid_margin": Real(low=0, closed="neither"),
        "tol": Real(low=0),
        "max_iter": Integer(low=1),
    }

    def __init__(
        self,
        n_scales=3,
        *,
        tau=0.459,
        isr=None,
        reference_scale=None,
        density="loguniform",
        bandwidth="scott",
        tail_std=0.4,
        grid_size=2048,
        grid_margin=4.0,
        tol=1e-9,
        max_iter=1000,
        random_state=None,
    ):
        self.n_scales = n_scales
        self.tau = tau
        self.isr = isr
        self.reference_scale = reference_scale
        self.density = density
        self.bandwidth = bandwidth
        self.tail_std = tail_std
        self.grid_size = grid_size
        self.grid_margin = grid_margin
        self.tol = tol
        self.max_iter = max_iter
        self.random_state = random_state

    def __sklearn_tags__(self):
        # One variable, as IsotonicRegression: X is a vector of positive scales.
        tags = super().__sklearn_tags__()
        tags.input_tags.one_d_array = True
        tags.input_tags.two_d_array = False
        tags.input_tags.positive_only = True
        return tags

    # ------------------------------------------------------------------ input

    def _validate_scales(self, X, *, reset):
        """Return the scales of ``X`` (shape (n,) or (n, 1)) as a 1-D array."""
        if np.ndim(X) == 1:
            X = np.reshape(np.asarray(X), (-1, 1))
        X = validate_data(self, X, reset=reset, dtype=np.float64)
        if X.shape[1] != 1:
            raise ValueError(
                "X must hold one scale factor per sample, with shape (n_samples,) "
                f"or (n_samples, 1); got shape {X.shape}."
            )
        scales = X[:, 0]
        if np.any(scales < 0):
            raise ValueError(
                "Negative values in data passed to ToleranceModel: scale factors "
                f"X must be strictly positive; got min(X)={float(scales.min())!r}."
            )
        if np.any(scales == 0):
            raise ValueError(
                "Zero values in data passed to ToleranceModel: scale factors X "
                "must be strictly positive; got min(X)=0.0."
            )
        return scales

    # -------------------------------------------------------------------- fit

    def fit(self, X, y=None):
        """Fit the tolerance model to observed data scales.

        Parameters
        ----------
        X : array-like of shape (n_samples,) or (n_samples, 1)
            Observed scale factors, one per image, strictly positive and finite.

        y : array-like of shape (n_samples,), default=None
            Optional labels of data distributions (no NaN). Each distinct label
            is fitted with its own reference scale and ISR while ``tau`` is
            shared (the paper's joint fit). Every group needs two distinct scales.

        Returns
        -------
        self : ToleranceModel
            The fitted model.
        """
        params = check_params(self.get_params(deep=False), self._parameter_constraints)
        log2_scales = np.log2(self._validate_scales(X, reset=True))
        groups, labels = _group_labels(y, log2_scales)

        n_groups = 1 if groups is None else groups.size
        members = [log2_scales[labels == index] for index in range(n_groups)]
        for index, group_scales in enumerate(members):
            n_distinct = np.unique(group_scales).size
            if n_distinct < 2:
                raise ValueError(
                    "X must contain at least two distinct scales per data "
                    f"distribution{group_name(groups, index)}; got {n_distinct} "
                    f"distinct scale(s) in {group_scales.size} sample(s)."
                )
        log2_range = np.array([[m.min(), m.max()] for m in members])
        check_float64_reach(log2_range, groups, params)
        grids = np.linspace(
            log2_range[:, 0] - params["grid_margin"],
            log2_range[:, 1] + params["grid_margin"],
            params["grid_size"],
            axis=1,
        )
        min_tau = POINTS_PER_TAU * float(np.max(grids[:, 1] - grids[:, 0]))
        check_resolution(min_tau, log2_range, params)

        # Kept to evaluate the data density after fitting (see data_density).
        if params["density"] == "kde":
            self._log2_samples = members
            self._bandwidths = [kde_bandwidth(m, params["bandwidth"]) for m in members]
        else:
            self._log2_samples = self._bandwidths = [None] * n_groups
        log_p = np.stack(
            [self._group_log_data_density(grids[index], index, log2_range) for index in range(n_groups)]
        )
        log_p -= logsumexp(log_p, axis=1, keepdims=True)

        log2_reference, log2_isr, tau, kl, n_iter, converged = optimise(
            grids, log_p, log2_range, min_tau, params
        )

        # Fixed parameters are reported exactly, not through a log2 round trip.
        if params["reference_scale"] is None:
            reference_scale = np.exp2(log2_reference)
        else:
            reference_scale = np.full(n_groups, params["reference_scale"])
        if params["isr"] is None:
            isr = np.exp2(log2_isr)
        else:
            isr = np.full(n_groups, params["isr"])
        self.tau_ = float(tau)
        self.reference_scale_ = reference_scale
        self.isr_ = isr
        self.internal_scales_ = log_uniform_scales(params["n_scales"], reference_scale[:, None], isr[:, None])
        self.data_range_ = np.exp2(log2_range)
        self.groups_ = groups
        self.kl_ = kl
        self.n_iter_ = int(n_iter)
        self.converged_ = bool(converged and np.all(np.isfinite(kl)))
        return self

    def _group_log_data_density(self, points, index, log2_range):
        return log_data_density(
            points,
            log2_range[index, 0],
            log2_range[index, 1],
            self.tail_std,
            self._log2_samples[index],
            self._bandwidths[index],
        )

    # ------------------------------------------------------------- evaluation

    @_shared_parameters
    def group_index(self, group=None):
        """Position of a data distribution on the leading axis of the fitted attributes.

        ``reference_scale_[index]``, ``isr_[index]``, ``internal_scales_[index]``,
        ``data_range_[index]`` and ``kl_[index]`` describe ``group``.

        Parameters
        ----------
        {group}

        Returns
        -------
        index : int
            In ``range(n_groups)``.

        Raises
        ------
        ValueError
            If ``group`` is not one of ``groups_``, is given for a model fitted without
            ``y``, or is omitted for a model of several groups.
        """
        check_is_fitted(self)
        if self.groups_ is None:
            if group is not None:
                raise ValueError(
                    "group must be None: the model was fitted without y and has a "
                    f"single data distribution; got group={group!r}."
                )
            return 0
        if group is None:
            if self.groups_.size == 1:
                return 0
            raise ValueError(
                "group must be given: the model was fitted on several data "
                f"distributions, groups_={self.groups_.tolist()!r}; got group=None."
            )
        matches = np.flatnonzero(self.groups_ == group)
        if matches.size == 0:
            raise ValueError(f"group must be one of groups_={self.groups_.tolist()!r}; got group={group!r}.")
        return int(matches[0])

    def _log2_parameters(self, group):
        """log2 of the reference scale and of the ISR of one group."""
        index = self.group_index(group)
        log2_reference = math.log2(self.reference_scale_[index])
        log2_isr = math.log2(self.isr_[index])
        return log2_reference, log2_isr

    def _log_components_at(self, log2_scales, group):
        """Weighted log tolerance of each internal scale, shape (n_points, n_scales)."""
        log2_reference, log2_isr = self._log2_parameters(group)
        log_comp, _ = log_components(
            np.asarray(log2_scales, dtype=np.float64)[None, :],
            np.array([log2_reference]),
            np.array([log2_isr]),
            self.tau_,
            self.n_scales,
        )
        return log_comp[0].T

    @_shared_parameters
    def log2_scales(self, X):
        """The scale factors ``X``, validated as for :meth:`score_samples`, in octaves.

        Parameters
        ----------
        {X}

        Returns
        -------
        log2_scales : ndarray of shape (n_samples,)
            ``log2(X)``, the points at which :meth:`tolerance_pdf` and
            :meth:`data_density` evaluate.
        """
        check_is_fitted(self)
        return np.log2(self._validate_scales(X, reset=False))

    def _log_components_of(self, X, group):
        """``log2(X)`` of validated scales and their weighted log tolerances."""
        log2_scales = self.log2_scales(X)
        return log2_scales, self._log_components_at(log2_scales, group)

    @_shared_parameters
    def tolerance_pdf(self, log2_scales, group=None, *, components=False):
        """Density of the tolerance model per octave.

        Parameters
        ----------
        {log2_scales}

        {group}

        components : bool, default=False
            If True, return the weighted density of each internal scale's
            tolerance (each normal times ``1 / n_scales``) instead of the mixture;
            the columns sum to the mixture.

        Returns
        -------
        pdf : ndarray of shape (n_points,) or (n_points, n_scales)
            Density per octave.
        """
        log2_scales = column_or_1d(log2_scales, dtype=np.float64)
        log_comp = self._log_components_at(log2_scales, group)
        if components:
            return np.exp(log_comp)
        return np.exp(logsumexp(log_comp, axis=1))

    @_shared_parameters
    def data_density(self, log2_scales, group=None):
        """Estimated data scale density per octave, with its half-normal tails.

        Parameters
        ----------
        {log2_scales}

        {group}

        Returns
        -------
        density : ndarray of shape (n_points,)
            Density per octave; it integrates to one over the real line.
        """
        log2_scales = column_or_1d(log2_scales, dtype=np.float64)
        index = self.group_index(group)
        log2_range = np.log2(self.data_range_)
        return np.exp(self._group_log_data_density(log2_scales, index, log2_range))

    @_shared_parameters
    def score_samples(self, X, group=None):
        """Log density of the tolerance model at each scale.

        {parameters_X_group}

        Returns
        -------
        log_density : ndarray of shape (n_samples,)
            Log density with respect to the scale factor (not per octave):
            ``log(tolerance_pdf(log2(X))) - log(X * ln 2)``.
        """
        log2_scales, log_comp = self._log_components_of(X, group)
        # log(X * ln 2) computed from log2(X), so that no product can overflow.
        log_jacobian = log2_scales * math.log(2.0) + math.log(math.log(2.0))
        return logsumexp(log_comp, axis=1) - log_jacobian

    @_shared_parameters
    def score(self, X, y=None, group=None):
        """Mean log density of the tolerance model at the scales ``X``.

        Parameters
        ----------
        {X}

        y : Ignored
            Not used, present for API consistency by convention.

        {group}

        Returns
        -------
        log_likelihood : float
            Mean of :meth:`score_samples`.
        """
        return float(np.mean(self.score_samples(X, group=group)))

    @_shared_parameters
    def predict_proba(self, X, group=None):
        """Responsibility of each internal scale's tolerance for each scale.

        {parameters_X_group}

        Returns
        -------
        proba : ndarray of shape (n_samples, n_scales)
            Posterior probability of each internal scale; rows sum to one.
        """
        _, log_comp = self._log_components_of(X, group)
        return np.exp(log_comp - logsumexp(log_comp, axis=1, keepdims=True))

    @_shared_parameters
    def predict(self, X, group=None):
        """Index of the internal scale most responsible for each scale.

        {parameters_X_group}

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Index, in ``range(n_scales)``, of the internal scale.
        """
        return np.argmax(self.predict_proba(X, group=group), axis=1)

    @_shared_parameters
    def sample(self, n_samples=1, group=None):
        """Draw scale factors from the tolerance model.

        Parameters
        ----------
        n_samples : int, default=1
            Number of scales to draw.

        {group}

        Returns
        -------
        X : ndarray of shape (n_samples,)
            Scale factors (not log2).

        labels : ndarray of shape (n_samples,)
            Index of the internal scale each sample was drawn from.
        """
        check_is_fitted(self)
        n_samples = Integer(low=1).check(n_samples, "n_samples")
        log2_reference, log2_isr = self._log2_parameters(group)
        rng = check_random_state(self.random_state)
        labels = rng.randint(self.n_scales, size=n_samples)
        centres = log2_reference + log2_isr * scale_exponents(self.n_scales)
        log2_scales = centres[labels] + self.tau_ * rng.standard_normal(n_samples)
        return np.exp2(log2_scales), labels

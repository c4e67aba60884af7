"""Internal Scale Tolerance Model (Basting et al., 2024, §3, Fig. 2 and Fig. 5).

The model answers the question "which internal scales suit a known data scale
distribution?". It lives in log2 space (octaves): each of the ``n_scales``
internal scales tolerates data scales following a normal distribution of
standard deviation ``tau`` centred on the internal scale, and the tolerance
model is the equal-weight mixture of those normals. Its reference scale and
internal scale range (ISR) are fitted by minimising the Kullback-Leibler
divergence KL(tolerance model || data density).
"""

import itertools
import math
import warnings
from numbers import Integral, Real

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp, ndtr
from sklearn.base import BaseEstimator, DensityMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import (
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)
from threadpoolctl import threadpool_limits

__all__ = ["ToleranceModel"]

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)

# Deterministic starting points of the optimisation: the fraction of the
# observed log2 range spanned by the internal scales, and tau in octaves.
_START_SPANS = (0.25, 0.5, 0.75)
_START_TAUS = (0.2, 0.5, 1.0)

# Number of (grid point, sample) pairs evaluated at once by the kernel density.
_KDE_CHUNK = 1 << 22


def _kde_log_pdf(points, log2_samples, bandwidth):
    """Log of a Gaussian kernel density in log2 space, per octave."""
    points = np.asarray(points, dtype=np.float64)
    out = np.empty(points.shape, dtype=np.float64)
    flat_points, flat_out = points.reshape(-1), out.reshape(-1)
    log_const = -math.log(bandwidth) - _LOG_SQRT_2PI - math.log(log2_samples.size)
    step = max(1, _KDE_CHUNK // log2_samples.size)
    for start in range(0, flat_points.size, step):
        chunk = flat_points[start : start + step]
        z = (chunk[:, None] - log2_samples[None, :]) / bandwidth
        flat_out[start : start + step] = logsumexp(-0.5 * z * z, axis=1) + log_const
    return out


def _log_data_density(points, log2_min, log2_max, tail_std, log2_samples, bandwidth):
    """Log data scale density per octave, extended by half-normal tails.

    Inside the observed range ``[log2_min, log2_max]`` the density is uniform
    (``log2_samples is None``) or a Gaussian kernel density; outside it decays
    as a half-normal of standard deviation ``tail_std`` whose peak equals the
    density at the boundary. The result is normalised in closed form, so it
    integrates to one over the real line and is strictly positive everywhere.
    """
    points = np.asarray(points, dtype=np.float64)
    bounds = np.array([log2_min, log2_max])
    if log2_samples is None:
        log_bounds = np.zeros(2)
        inside_mass = log2_max - log2_min
    else:
        log_bounds = _kde_log_pdf(bounds, log2_samples, bandwidth)
        inside_mass = np.mean(
            ndtr((log2_max - log2_samples) / bandwidth)
            - ndtr((log2_min - log2_samples) / bandwidth)
        )
    tail_mass = tail_std * math.sqrt(0.5 * math.pi) * np.exp(log_bounds).sum()
    log_norm = math.log(inside_mass + tail_mass)

    out = np.empty(points.shape, dtype=np.float64)
    below, above = points < log2_min, points > log2_max
    inside = ~(below | above)
    if log2_samples is None:
        out[inside] = 0.0
    else:
        out[inside] = _kde_log_pdf(points[inside], log2_samples, bandwidth)
    out[below] = log_bounds[0] - 0.5 * ((points[below] - log2_min) / tail_std) ** 2
    out[above] = log_bounds[1] - 0.5 * ((points[above] - log2_max) / tail_std) ** 2
    return out - log_norm


def _positions(n_scales):
    """Relative positions i / (N_S - 1) of the internal scales in [0, 1]."""
    if n_scales == 1:
        return np.zeros(1)
    return np.arange(n_scales) / (n_scales - 1)


def _log_components(points, log2_reference, log2_isr, tau, n_scales):
    """Log of each weighted tolerance component, shape (..., n_scales, n_points).

    ``points`` has shape (..., n_points) and the scale parameters shape (...),
    so several groups are evaluated at once.
    """
    centres = (
        np.asarray(log2_reference)[..., None]
        + np.asarray(log2_isr)[..., None] * _positions(n_scales)
    )
    z = (points[..., None, :] - centres[..., :, None]) / tau
    log_comp = -0.5 * z * z - math.log(tau) - _LOG_SQRT_2PI - math.log(n_scales)
    return log_comp, z


def _kl_and_gradient(log2_reference, log2_isr, tau, grids, log_p, n_scales):
    """Discrete KL(tolerance || data) per group and its gradient.

    Both densities are normalised on the grid, so the divergence is that of two
    probability vectors and is never negative. With q the normalised tolerance,
    D = log q - log p and g = d log q / d theta, the gradient is
    sum_k q_k g_k (D_k - KL).

    Returns
    -------
    kl, grad_log2_reference, grad_log2_isr, grad_tau : ndarray of shape (n_groups,)
    """
    log_comp, z = _log_components(grids, log2_reference, log2_isr, tau, n_scales)
    log_q = logsumexp(log_comp, axis=1)
    responsibility = np.exp(log_comp - log_q[:, None, :])
    log_q = log_q - logsumexp(log_q, axis=1, keepdims=True)
    q = np.exp(log_q)
    divergence = log_q - log_p
    kl = np.sum(q * divergence, axis=1)
    weight = q * (divergence - kl[:, None])

    grad_centres = np.einsum("gk,gnk->gn", weight, responsibility * z) / tau
    d_log_q_d_tau = np.sum(responsibility * (z * z - 1.0), axis=1) / tau
    return (
        kl,
        grad_centres.sum(axis=1),
        grad_centres @ _positions(n_scales),
        np.sum(weight * d_log_q_d_tau, axis=1),
    )


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
    not fixed). The fitted ``isr_`` is the recommended ``init_isr`` of
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
        Number of points of the grid on which the divergence is evaluated.

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
        Standard deviation of each tolerance, in octaves.

    reference_scale_ : float or ndarray of shape (n_groups,)
        Smallest internal scale ``r``, in data-scale units.

    isr_ : float or ndarray of shape (n_groups,)
        Internal scale range; 1.0 when ``n_scales == 1`` and ``isr`` is None
        (a single scale has no range).

    internal_scales_ : ndarray of shape (n_scales,) or (n_groups, n_scales)
        The internal scales ``r * ISR ** (i / (n_scales - 1))``, in data-scale
        units.

    data_range_ : ndarray of shape (2,) or (n_groups, 2)
        Smallest and largest observed scale: the boundaries where the tails of
        the data density start.

    groups_ : ndarray of shape (n_groups,) or None
        Sorted distinct labels of ``y``; None when fitted without ``y``.

    kl_ : float or ndarray of shape (n_groups,)
        KL(tolerance model || data density) reached, in nats. A joint fit
        minimises the sum over groups.

    n_iter_ : int
        Number of L-BFGS-B iterations of the best starting point (0 when every
        parameter is fixed).

    converged_ : bool
        Whether the best run of the optimiser reported convergence.

    n_features_in_ : int
        Number of features seen during :term:`fit` (always 1).

    feature_names_in_ : ndarray of shape (1,)
        Name of the column of scales, defined only when ``X`` has a string
        column name.

    See Also
    --------
    sklearn.mixture.GaussianMixture : The density estimator this API follows.

    Notes
    -----
    **Shapes.** When :meth:`fit` is called without ``y`` there is one data
    distribution and ``reference_scale_``, ``isr_`` and ``kl_`` are floats and
    ``internal_scales_`` is 1-D. When ``y`` is given (even with a single label)
    every group-dependent attribute gets a leading axis aligned with
    ``groups_``. Methods that evaluate the model take a ``group`` keyword: it
    must be one of ``groups_``, and may be omitted when only one group exists.

    **Units.** Internally every scale is ``u = log2(scale)``. :meth:`tolerance_pdf`
    and :meth:`data_density` are densities *per octave* (they integrate to one
    over ``u``). :meth:`score_samples` is the log density of the scales
    themselves, ``log tolerance_pdf(log2(s)) - log(s * ln 2)``, consistent with
    :meth:`sample`.

    **Divergence.** Both densities are evaluated on the grid (see
    ``grid_size`` and ``grid_margin``) and normalised there, so ``kl_`` is the
    divergence between two probability vectors. The data density is evaluated
    in log space from its closed form (uniform or kernel density inside the
    observed range, quadratic log-tails outside), so it is strictly positive on
    the whole grid and no floor on ``log(0)`` is needed.

    **Optimisation.** L-BFGS-B with the analytic gradient over ``log2(r)`` in
    ``[log2(min(X)) - grid_margin, log2(max(X)) + grid_margin]``, ``log2(ISR)``
    in ``[0, log2(max(X) / min(X)) + 2 * grid_margin]`` and ``tau`` between the
    grid spacing and ``grid_margin``. It starts from up to nine deterministic
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
    (3,)
    >>> bool(1.0 < model.isr_ < 8.0)
    True
    >>> model.predict([1.0, 8.0])
    array([0, 2])
    """

    _parameter_constraints: dict = {
        "n_scales": [Interval(Integral, 1, None, closed="left")],
        "tau": [Interval(Real, 0.0, None, closed="neither"), None],
        "isr": [Interval(Real, 1.0, None, closed="left"), None],
        "reference_scale": [Interval(Real, 0.0, None, closed="neither"), None],
        "density": [StrOptions({"loguniform", "kde"})],
        "bandwidth": [
            Interval(Real, 0.0, None, closed="neither"),
            StrOptions({"scott", "silverman"}),
        ],
        "tail_std": [Interval(Real, 0.0, None, closed="neither")],
        "grid_size": [Interval(Integral, 16, None, closed="left")],
        "grid_margin": [Interval(Real, 0.0, None, closed="neither")],
        "tol": [Interval(Real, 0.0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
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
        tags = super().__sklearn_tags__()
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

    def _kde_bandwidth(self, log2_samples):
        """Kernel standard deviation in octaves for one group."""
        if not isinstance(self.bandwidth, str):
            return float(self.bandwidth)
        n_samples = log2_samples.size
        if self.bandwidth == "scott":
            factor = n_samples ** (-1.0 / 5.0)
        else:
            factor = (0.75 * n_samples) ** (-1.0 / 5.0)
        return factor * float(np.std(log2_samples, ddof=1))

    # -------------------------------------------------------------------- fit

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the tolerance model to observed data scales.

        Parameters
        ----------
        X : array-like of shape (n_samples,) or (n_samples, 1)
            Observed scale factors, one per image, strictly positive.

        y : array-like of shape (n_samples,), default=None
            Optional labels of data distributions. Each distinct label is fitted
            with its own reference scale and ISR while ``tau`` is shared (the
            paper's joint fit). Every group needs two distinct scales.

        Returns
        -------
        self : ToleranceModel
            The fitted model.
        """
        log2_scales = np.log2(self._validate_scales(X, reset=True))
        if y is None:
            groups, labels = None, np.zeros(log2_scales.size, dtype=np.intp)
        else:
            y = column_or_1d(y, dtype=None, warn=True)
            check_consistent_length(log2_scales, y)
            groups, labels = np.unique(y, return_inverse=True)

        n_groups = 1 if groups is None else groups.size
        log2_range = np.empty((n_groups, 2))
        log2_samples, bandwidths = [], np.full(n_groups, np.nan)
        for index in range(n_groups):
            members = log2_scales[labels == index]
            n_distinct = np.unique(members).size
            if n_distinct < 2:
                where = ""
                if groups is not None:
                    where = f" (group y={groups.tolist()[index]!r})"
                raise ValueError(
                    "X must contain at least two distinct scales per data "
                    f"distribution{where}; got {n_distinct} distinct scale(s) in "
                    f"{members.size} sample(s)."
                )
            log2_range[index] = members.min(), members.max()
            if self.density == "kde":
                log2_samples.append(members)
                bandwidths[index] = self._kde_bandwidth(members)
            else:
                log2_samples.append(None)
        # Kept to evaluate the data density after fitting (see data_density).
        self._log2_samples, self._bandwidths = log2_samples, bandwidths

        grids = np.linspace(
            log2_range[:, 0] - self.grid_margin,
            log2_range[:, 1] + self.grid_margin,
            self.grid_size,
            axis=1,
        )
        log_p = np.stack(
            [
                self._group_log_data_density(grids[index], index, log2_range)
                for index in range(n_groups)
            ]
        )
        log_p -= logsumexp(log_p, axis=1, keepdims=True)

        log2_reference, log2_isr, tau, kl, n_iter, converged = self._optimise(
            grids, log_p, log2_range
        )

        self.tau_ = float(tau)
        # Fixed parameters are reported exactly, not through a log2 round trip.
        if self.reference_scale is None:
            reference_scale = 2.0**log2_reference
        else:
            reference_scale = np.full(n_groups, float(self.reference_scale))
        if self.isr is None:
            isr = 2.0**log2_isr
        else:
            isr = np.full(n_groups, float(self.isr))
        internal_scales = reference_scale[:, None] * isr[:, None] ** _positions(
            self.n_scales
        )
        data_range = 2.0**log2_range
        if groups is None:
            self.reference_scale_ = float(reference_scale[0])
            self.isr_ = float(isr[0])
            self.internal_scales_ = internal_scales[0]
            self.data_range_ = data_range[0]
            self.kl_ = float(kl[0])
        else:
            self.reference_scale_ = reference_scale
            self.isr_ = isr
            self.internal_scales_ = internal_scales
            self.data_range_ = data_range
            self.kl_ = kl
        self.groups_ = groups
        self.n_iter_ = int(n_iter)
        self.converged_ = bool(converged)
        return self

    def _group_log_data_density(self, points, index, log2_range):
        return _log_data_density(
            points,
            log2_range[index, 0],
            log2_range[index, 1],
            self.tail_std,
            self._log2_samples[index],
            self._bandwidths[index],
        )

    def _optimise(self, grids, log_p, log2_range):
        """Minimise the summed divergence over the free parameters.

        Returns per-group log2 r and log2 ISR, tau, the per-group divergence,
        the iterations and the convergence flag of the best starting point.
        """
        n_groups = grids.shape[0]
        margin = self.grid_margin
        width = log2_range[:, 1] - log2_range[:, 0]
        free_reference = self.reference_scale is None
        free_isr = self.isr is None and self.n_scales > 1
        free_tau = self.tau is None
        fixed_log2_reference = np.full(
            n_groups, 0.0 if free_reference else math.log2(self.reference_scale)
        )
        fixed_log2_isr = np.full(
            n_groups, 0.0 if self.isr is None else math.log2(self.isr)
        )

        def kl_and_gradient(log2_reference, log2_isr, tau):
            return _kl_and_gradient(
                log2_reference, log2_isr, tau, grids, log_p, self.n_scales
            )

        if not (free_reference or free_isr or free_tau):
            kl = kl_and_gradient(fixed_log2_reference, fixed_log2_isr, self.tau)[0]
            return fixed_log2_reference, fixed_log2_isr, self.tau, kl, 0, True

        # The parameter vector holds, in this order, the free log2 r (one per
        # group), the free log2 ISR (one per group) and the free tau (shared).
        def pack(log2_reference, log2_isr, tau):
            parts = [
                log2_reference if free_reference else [],
                log2_isr if free_isr else [],
                [tau] if free_tau else [],
            ]
            return np.concatenate(parts).astype(np.float64)

        def unpack(params):
            params = list(params)
            log2_reference = fixed_log2_reference
            if free_reference:
                log2_reference, params = np.array(params[:n_groups]), params[n_groups:]
            log2_isr = fixed_log2_isr
            if free_isr:
                log2_isr, params = np.array(params[:n_groups]), params[n_groups:]
            tau = params[0] if free_tau else self.tau
            return log2_reference, log2_isr, tau

        def objective(params):
            kl, grad_reference, grad_isr, grad_tau = kl_and_gradient(*unpack(params))
            return kl.sum(), pack(grad_reference, grad_isr, grad_tau.sum())

        spacing = float(np.max(grids[:, 1] - grids[:, 0]))
        lower = pack(log2_range[:, 0] - margin, np.zeros(n_groups), spacing)
        upper = pack(
            log2_range[:, 1] + margin, width + 2.0 * margin, max(margin, spacing)
        )

        starts = []
        for span, start_tau in itertools.product(_START_SPANS, _START_TAUS):
            # Internal scales spanning `span` of each observed range, centred in it.
            log2_isr = span * width if free_isr else fixed_log2_isr
            spanned = log2_isr if self.n_scales > 1 else np.zeros(n_groups)
            log2_reference = log2_range[:, 0] + 0.5 * (width - spanned)
            if free_isr and not free_reference:
                # From the fixed r up to the top of the centred span.
                log2_isr = log2_range[:, 1] - 0.5 * (1.0 - span) * width
                log2_isr = log2_isr - fixed_log2_reference
            start = np.clip(pack(log2_reference, log2_isr, start_tau), lower, upper)
            if not any(np.array_equal(start, seen) for seen in starts):
                starts.append(start)

        best = None
        # L-BFGS-B makes many tiny BLAS calls; threads only add overhead there.
        with threadpool_limits(limits=1, user_api="blas"):
            for start in starts:
                result = minimize(
                    objective,
                    start,
                    jac=True,
                    method="L-BFGS-B",
                    bounds=list(zip(lower, upper)),
                    tol=self.tol,
                    options={"maxiter": self.max_iter},
                )
                if best is None or result.fun < best.fun:
                    best = result
        if not best.success:
            warnings.warn(
                f"ToleranceModel did not converge: {best.message}. "
                "Increase max_iter or tol.",
                ConvergenceWarning,
            )
        log2_reference, log2_isr, tau = unpack(best.x)
        kl = kl_and_gradient(log2_reference, log2_isr, tau)[0]
        return log2_reference, log2_isr, float(tau), kl, best.nit, best.success

    # ------------------------------------------------------------- evaluation

    def _group_index(self, group):
        """Index into the group-dependent fitted attributes."""
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
            raise ValueError(
                f"group must be one of groups_={self.groups_.tolist()!r}; "
                f"got group={group!r}."
            )
        return int(matches[0])

    def _group_parameters(self, index):
        """log2 r, log2 ISR of one group."""
        reference = np.atleast_1d(self.reference_scale_)[index]
        isr = np.atleast_1d(self.isr_)[index]
        return math.log2(reference), math.log2(isr)

    def _log_components_at(self, log2_scales, group):
        log2_reference, log2_isr = self._group_parameters(self._group_index(group))
        log_comp, _ = _log_components(
            np.asarray(log2_scales, dtype=np.float64)[None, :],
            np.array([log2_reference]),
            np.array([log2_isr]),
            self.tau_,
            self.n_scales,
        )
        return log_comp[0].T

    def tolerance_pdf(self, log2_scales, group=None, *, components=False):
        """Density of the tolerance model per octave.

        Parameters
        ----------
        log2_scales : array-like of shape (n_points,)
            Points in log2-scale space (octaves).

        group : label, default=None
            Which data distribution's model to evaluate; one of ``groups_``.
            May be omitted when the model has a single group.

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

    def data_density(self, log2_scales, group=None):
        """Estimated data scale density per octave, with its half-normal tails.

        Parameters
        ----------
        log2_scales : array-like of shape (n_points,)
            Points in log2-scale space (octaves).

        group : label, default=None
            Which data distribution; one of ``groups_``. May be omitted when the
            model has a single group.

        Returns
        -------
        density : ndarray of shape (n_points,)
            Density per octave; it integrates to one over the real line.
        """
        log2_scales = column_or_1d(log2_scales, dtype=np.float64)
        index = self._group_index(group)
        log2_range = np.log2(np.atleast_2d(self.data_range_))
        return np.exp(self._group_log_data_density(log2_scales, index, log2_range))

    def score_samples(self, X, group=None):
        """Log density of the tolerance model at each scale.

        Parameters
        ----------
        X : array-like of shape (n_samples,) or (n_samples, 1)
            Scale factors, strictly positive.

        group : label, default=None
            Which data distribution's model to use; one of ``groups_``. May be
            omitted when the model has a single group.

        Returns
        -------
        log_density : ndarray of shape (n_samples,)
            Log density with respect to the scale factor (not per octave):
            ``log(tolerance_pdf(log2(X))) - log(X * ln 2)``.
        """
        check_is_fitted(self)
        scales = self._validate_scales(X, reset=False)
        log_comp = self._log_components_at(np.log2(scales), group)
        return logsumexp(log_comp, axis=1) - np.log(scales * math.log(2.0))

    def score(self, X, y=None, group=None):
        """Mean log density of the tolerance model at the scales ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples,) or (n_samples, 1)
            Scale factors, strictly positive.

        y : Ignored
            Not used, present for API consistency by convention.

        group : label, default=None
            Which data distribution's model to use; one of ``groups_``. May be
            omitted when the model has a single group.

        Returns
        -------
        log_likelihood : float
            Mean of :meth:`score_samples`.
        """
        return float(np.mean(self.score_samples(X, group=group)))

    def predict_proba(self, X, group=None):
        """Responsibility of each internal scale's tolerance for each scale.

        Parameters
        ----------
        X : array-like of shape (n_samples,) or (n_samples, 1)
            Scale factors, strictly positive.

        group : label, default=None
            Which data distribution's model to use; one of ``groups_``. May be
            omitted when the model has a single group.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_scales)
            Posterior probability of each internal scale; rows sum to one.
        """
        check_is_fitted(self)
        scales = self._validate_scales(X, reset=False)
        log_comp = self._log_components_at(np.log2(scales), group)
        return np.exp(log_comp - logsumexp(log_comp, axis=1, keepdims=True))

    def predict(self, X, group=None):
        """Index of the internal scale most responsible for each scale.

        Parameters
        ----------
        X : array-like of shape (n_samples,) or (n_samples, 1)
            Scale factors, strictly positive.

        group : label, default=None
            Which data distribution's model to use; one of ``groups_``. May be
            omitted when the model has a single group.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Index, in ``range(n_scales)``, of the internal scale.
        """
        return np.argmax(self.predict_proba(X, group=group), axis=1)

    def sample(self, n_samples=1, group=None):
        """Draw scale factors from the tolerance model.

        Parameters
        ----------
        n_samples : int, default=1
            Number of scales to draw.

        group : label, default=None
            Which data distribution's model to use; one of ``groups_``. May be
            omitted when the model has a single group.

        Returns
        -------
        X : ndarray of shape (n_samples,)
            Scale factors (not log2).

        labels : ndarray of shape (n_samples,)
            Index of the internal scale each sample was drawn from.
        """
        check_is_fitted(self)
        if not isinstance(n_samples, Integral) or n_samples < 1:
            raise ValueError(
                f"n_samples must be a positive integer; got n_samples={n_samples!r}."
            )
        log2_reference, log2_isr = self._group_parameters(self._group_index(group))
        rng = check_random_state(self.random_state)
        labels = rng.randint(self.n_scales, size=n_samples)
        centres = log2_reference + log2_isr * _positions(self.n_scales)
        log2_scales = centres[labels] + self.tau_ * rng.standard_normal(n_samples)
        return 2.0**log2_scales, labels

"""The fit of :class:`~skscale.ToleranceModel`: data scale density and KL objective.

Everything here works on log2 scales (octaves) and on the parameters of every group
at once: the data scale density (uniform or a Gaussian kernel density inside the
observed range, half-normal tails outside), the tolerance mixture's components, the
discrete KL(tolerance || data) with its gradient, the checks that refuse a fit float64
or the grid cannot carry, and the L-BFGS-B minimisation from deterministic starts.
"""

import itertools
import math
import warnings

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp, ndtr
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

from ._scales import scale_exponents

__all__ = [
    "POINTS_PER_TAU",
    "check_float64_reach",
    "check_resolution",
    "group_name",
    "kde_bandwidth",
    "kde_log_pdf",
    "kl_and_gradient",
    "log_components",
    "log_data_density",
    "optimise",
]

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)

# Deterministic starting points of the optimisation: the fraction of the
# observed log2 range spanned by the internal scales, and tau in octaves.
_START_SPANS = (0.25, 0.5, 0.75)
_START_TAUS = (0.2, 0.5, 1.0)

# Number of (grid point, sample) pairs evaluated at once by the kernel density.
_KDE_CHUNK = 1 << 22

# The grid must resolve each tolerance: at least this many points per tau.
POINTS_PER_TAU = 4

# Positive normal float64 numbers are 2**e for e in [-1022, 1024).
_FLOAT64 = np.finfo(np.float64)


def kde_log_pdf(points, log2_samples, bandwidth):
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


def kde_bandwidth(log2_samples, bandwidth):
    """Kernel standard deviation in octaves for one group (a number or a rule's name)."""
    if not isinstance(bandwidth, str):
        return bandwidth
    n_samples = log2_samples.size
    if bandwidth == "scott":
        factor = n_samples ** (-1.0 / 5.0)
    else:
        factor = (0.75 * n_samples) ** (-1.0 / 5.0)
    return factor * float(np.std(log2_samples, ddof=1))


def log_data_density(points, log2_min, log2_max, tail_std, log2_samples, bandwidth):
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
        log_bounds = kde_log_pdf(bounds, log2_samples, bandwidth)
        inside_mass = np.mean(
            ndtr((log2_max - log2_samples) / bandwidth) - ndtr((log2_min - log2_samples) / bandwidth)
        )
    tail_mass = tail_std * math.sqrt(0.5 * math.pi) * np.exp(log_bounds).sum()
    log_norm = math.log(inside_mass + tail_mass)

    out = np.empty(points.shape, dtype=np.float64)
    below, above = points < log2_min, points > log2_max
    inside = ~(below | above)
    if log2_samples is None:
        out[inside] = 0.0
    else:
        out[inside] = kde_log_pdf(points[inside], log2_samples, bandwidth)
    out[below] = log_bounds[0] - 0.5 * ((points[below] - log2_min) / tail_std) ** 2
    out[above] = log_bounds[1] - 0.5 * ((points[above] - log2_max) / tail_std) ** 2
    return out - log_norm


def log_components(points, log2_reference, log2_isr, tau, n_scales):
    """Log of each weighted tolerance component, shape (..., n_scales, n_points).

    ``points`` has shape (..., n_points) and the scale parameters shape (...),
    so several groups are evaluated at once. The centres are Eq. 2 in log2.
    """
    centres = np.asarray(log2_reference)[..., None] + np.asarray(log2_isr)[..., None] * scale_exponents(
        n_scales
    )
    z = (points[..., None, :] - centres[..., :, None]) / tau
    log_comp = -0.5 * z * z - math.log(tau) - _LOG_SQRT_2PI - math.log(n_scales)
    return log_comp, z


def kl_and_gradient(log2_reference, log2_isr, tau, grids, log_p, n_scales):
    """Discrete KL(tolerance || data) per group and its gradient.

    Both densities are normalised on the grid, so the divergence is that of two
    probability vectors and is never negative. With q the normalised tolerance,
    D = log q - log p and g = d log q / d theta, the gradient is
    sum_k q_k g_k (D_k - KL).

    Returns
    -------
    kl, grad_log2_reference, grad_log2_isr, grad_tau : ndarray of shape (n_groups,)
    """
    log_comp, z = log_components(grids, log2_reference, log2_isr, tau, n_scales)
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
        grad_centres @ scale_exponents(n_scales),
        np.sum(weight * d_log_q_d_tau, axis=1),
    )


def group_name(groups, index):
    return "" if groups is None else f" (group y={groups.tolist()[index]!r})"


def check_float64_reach(log2_range, groups, params):
    """Refuse data whose fitted scales or ISR could leave float64, before fitting.

    The optimiser's bounds (see the Notes of :class:`~skscale.ToleranceModel`) say how far
    the reference scale and the ISR may go; the internal scales reach at most
    the largest reference times the largest ISR.
    """
    margin = params["grid_margin"]
    lowest, highest = log2_range[:, 0] - margin, log2_range[:, 1] + margin
    if params["reference_scale"] is None:
        reference_low, reference_high = lowest, highest
    else:
        reference_low = reference_high = np.full(len(log2_range), math.log2(params["reference_scale"]))
    if params["isr"] is None:
        isr_high = highest - lowest
    else:
        isr_high = np.full(len(log2_range), math.log2(params["isr"]))
    reach_low, reach_high = reference_low, reference_high + isr_high
    outside = (reach_low < _FLOAT64.minexp) | (np.maximum(reach_high, isr_high) >= _FLOAT64.maxexp)
    if np.any(outside):
        index = int(np.flatnonzero(outside)[0])
        low, high = np.exp2(log2_range[index])
        raise ValueError(
            f"X holds scale factors from {low:.3g} to {high:.3g}{group_name(groups, index)}: "
            f"with grid_margin={margin!r}, the fitted internal scales could reach "
            f"2**{reach_low[index]:.1f} to 2**{reach_high[index]:.1f} and the ISR "
            f"2**{isr_high[index]:.1f}, beyond float64 (2**{_FLOAT64.minexp} to "
            f"2**{_FLOAT64.maxexp}). The model is equivariant to rescaling: divide X "
            "(and reference_scale) by its geometric mean, or fit narrower ranges."
        )


def check_resolution(min_tau, log2_range, params):
    """Refuse a fixed tau that the grid cannot resolve, before fitting."""
    tau = params["tau"]
    if tau is None or tau >= min_tau:
        return
    span = float(np.max(log2_range[:, 1] - log2_range[:, 0])) + 2.0 * params["grid_margin"]
    needed = math.ceil(POINTS_PER_TAU * span / tau) + 1
    raise ValueError(
        f"grid_size={params['grid_size']} is too coarse for tau={tau!r}: the grid spans "
        f"{span:.4g} octaves, so its spacing {min_tau / POINTS_PER_TAU:.3g} exceeds "
        f"tau / {POINTS_PER_TAU}; use grid_size >= {needed} (or a narrower grid_margin)."
    )


def optimise(grids, log_p, log2_range, min_tau, params):
    """Minimise the summed divergence over the free parameters.

    Returns per-group log2 r and log2 ISR, tau, the per-group divergence,
    the iterations and the convergence flag of the best starting point.
    """
    n_groups, n_scales = grids.shape[0], params["n_scales"]
    margin = params["grid_margin"]
    width = log2_range[:, 1] - log2_range[:, 0]
    free_reference = params["reference_scale"] is None
    free_isr = params["isr"] is None and n_scales > 1
    free_tau = params["tau"] is None
    fixed_log2_reference = np.full(n_groups, 0.0 if free_reference else math.log2(params["reference_scale"]))
    fixed_log2_isr = np.full(n_groups, 0.0 if params["isr"] is None else math.log2(params["isr"]))

    def divergence(log2_reference, log2_isr, tau):
        return kl_and_gradient(log2_reference, log2_isr, tau, grids, log_p, n_scales)

    if not (free_reference or free_isr or free_tau):
        kl = divergence(fixed_log2_reference, fixed_log2_isr, params["tau"])[0]
        return fixed_log2_reference, fixed_log2_isr, params["tau"], kl, 0, True

    # The parameter vector holds, in this order, the free log2 r (one per
    # group), the free log2 ISR (one per group) and the free tau (shared).
    def pack(log2_reference, log2_isr, tau):
        parts = [
            log2_reference if free_reference else [],
            log2_isr if free_isr else [],
            [tau] if free_tau else [],
        ]
        return np.concatenate(parts).astype(np.float64)

    def unpack(vector):
        vector = list(vector)
        log2_reference = fixed_log2_reference
        if free_reference:
            log2_reference, vector = np.array(vector[:n_groups]), vector[n_groups:]
        log2_isr = fixed_log2_isr
        if free_isr:
            log2_isr, vector = np.array(vector[:n_groups]), vector[n_groups:]
        tau = vector[0] if free_tau else params["tau"]
        return log2_reference, log2_isr, tau

    def objective(vector):
        kl, grad_reference, grad_isr, grad_tau = divergence(*unpack(vector))
        return kl.sum(), pack(grad_reference, grad_isr, grad_tau.sum())

    lower = pack(log2_range[:, 0] - margin, np.zeros(n_groups), min_tau)
    upper = pack(log2_range[:, 1] + margin, width + 2.0 * margin, max(margin, min_tau))

    starts = []
    for span, start_tau in itertools.product(_START_SPANS, _START_TAUS):
        # Internal scales spanning `span` of each observed range, centred in it.
        log2_isr = span * width if free_isr else fixed_log2_isr
        spanned = log2_isr if n_scales > 1 else np.zeros(n_groups)
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
                tol=params["tol"],
                options={"maxiter": params["max_iter"]},
            )
            if best is None or result.fun < best.fun:
                best = result
    if not best.success:
        warnings.warn(
            f"ToleranceModel did not converge: {best.message}. Increase max_iter or tol.",
            ConvergenceWarning,
            stacklevel=4,
        )
    log2_reference, log2_isr, tau = unpack(best.x)
    kl = divergence(log2_reference, log2_isr, tau)[0]
    return log2_reference, log2_isr, float(tau), kl, best.nit, best.success

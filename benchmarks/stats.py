"""Statistics of the benchmark reports: pure functions on numbers.

Every uncertainty a report prints comes from here:

- :func:`sample_std`: the sample standard deviation (``ddof=1``); one value has none.
- :func:`standard_error`: of a mean over realisations, ``sample_std / sqrt(n)``.
- :func:`paired_difference`: learned minus best-fixed error, paired by seed (both runs
  of a seed share its data), with the standard error of the mean difference.
- :func:`binomial_se`: the sampling error of one test error measured on ``n_test`` images.
- :func:`within_k_se`: whether a difference is within ``k`` standard errors of zero;
  :func:`verdict`: the word a report may use for it.
- :func:`last_epochs_gain`, :func:`converged`: whether a fit's validation error had
  stopped improving when it ended.

Errors are in percent where the reports use percent; the functions do not care about the unit
except :func:`binomial_se`, which says which one it takes.
"""

from __future__ import annotations

import math

import numpy as np

from skscale.utils import Integer, Real

# Differences of percentages stored as floats (8.2 - 8.05) carry rounding of this order.
_ROUNDING = 1e-9


def _values(values, name):
    array = np.asarray(values, dtype=np.float64).ravel()
    if array.size == 0 or not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be a non-empty sequence of finite numbers, got {values!r}.")
    return array


def sample_std(values):
    """Sample standard deviation (``ddof=1``) of ``values``; ``nan`` for a single value.

    >>> sample_std([1.0, 3.0])
    1.4142135623730951
    """
    array = _values(values, "values")
    return float(array.std(ddof=1)) if array.size > 1 else math.nan


def standard_error(values):
    """Standard error of the mean of ``values``: ``sample_std / sqrt(n)`` (``nan`` for one value)."""
    array = _values(values, "values")
    return sample_std(array) / math.sqrt(array.size)


def paired_difference(learned, fixed):
    """Mean and standard error of ``learned - fixed``, paired element by element (by seed).

    Parameters
    ----------
    learned, fixed : sequence of float
        One value per realisation, in the same seed order.

    Returns
    -------
    mean, se : float
        Mean of the per-seed differences and its standard error (``nan`` for one seed).
    n : int
        Number of pairs.

    >>> paired_difference([3.0, 4.0, 5.0], [2.0, 4.0, 4.0])
    (0.6666666666666666, 0.33333333333333337, 3)
    """
    a, b = _values(learned, "learned"), _values(fixed, "fixed")
    if a.size != b.size:
        raise ValueError(
            f"learned and fixed must hold one value per seed each, got {a.size} and {b.size} values."
        )
    differences = a - b
    return float(differences.mean()), standard_error(differences), int(a.size)


def binomial_se(error, n_test, percent=True):
    """Binomial standard error ``sqrt(p (1 - p) / n_test)`` of a test error ``p``.

    ``error`` is in percent (and so is the result) unless ``percent=False``.

    >>> round(binomial_se(2.5, 10000), 4)
    0.1561
    """
    n_test = Integer(low=1).check(n_test, "n_test")
    scale = 100.0 if percent else 1.0
    p = Real(low=0.0, high=scale).check(error, "error") / scale
    return scale * math.sqrt(p * (1.0 - p) / n_test)


def within_k_se(difference, se, k=1.0):
    """Whether ``|difference| <= k * se`` (rounding of decimal percentages absorbed).

    A difference without a standard error (``se`` is ``nan``: one realisation) is never
    "within": one seed cannot show that two errors agree.
    """
    if not math.isfinite(se):
        return False
    return abs(float(difference)) <= k * float(se) + _ROUNDING


def verdict(difference, se, k=2.0):
    """``"better"`` / ``"worse"`` (lower / higher error) beyond ``k`` standard errors, else how
    the difference compares; a difference without a standard error gets no claim.

    >>> verdict(0.5, 0.3), verdict(0.7, 0.3), verdict(-0.7, 0.3)
    ('within 2 paired SE', 'worse', 'better')
    """
    if not math.isfinite(se):
        return "one seed: no standard error, no claim"
    if within_k_se(difference, se, k):
        return f"within {k:g} paired SE"
    return "worse" if difference > 0 else "better"


def mean_sd(values, digits=2):
    """``"mean ± sd"`` with the sample std (``"mean ± –"`` for a single value)."""
    array = _values(values, "values")
    std = sample_std(array)
    spread = "–" if math.isnan(std) else f"{std:.{digits}f}"
    return f"{array.mean():.{digits}f} ± {spread}"


# A fit has converged when its best validation error of the last CONVERGENCE_WINDOW epochs
# is no more than CONVERGENCE_TOLERANCE points below its best before them (issues 29, 30).
CONVERGENCE_WINDOW = 3
CONVERGENCE_TOLERANCE = 0.5


def last_epochs_gain(val_history, window=CONVERGENCE_WINDOW):
    """How much lower (points) the best validation error of the last ``window`` epochs is
    than the best before them; ``nan`` when the history has ``window`` epochs or fewer.

    >>> round(last_epochs_gain([20.0, 12.0, 10.0, 10.5, 9.8, 10.1]), 6)
    0.2
    """
    history = _values(val_history, "val_history")
    if history.size <= window:
        return math.nan
    return float(history[:-window].min() - history[-window:].min())


def converged(val_history, window=CONVERGENCE_WINDOW, tolerance=CONVERGENCE_TOLERANCE):
    """Whether the validation error had stopped improving: :func:`last_epochs_gain` at most
    ``tolerance`` points (a history too short to tell has not converged).

    >>> converged([20.0, 12.0, 10.0, 10.5, 9.8, 10.1]), converged([20.0, 12.0, 10.0, 9.0])
    (True, False)
    """
    gain = last_epochs_gain(val_history, window)
    return bool(math.isfinite(gain) and gain <= tolerance + _ROUNDING)

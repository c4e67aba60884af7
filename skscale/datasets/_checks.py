"""Argument checks shared by the dataset builders."""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["check_scale_range", "check_count"]


def check_scale_range(scale_range, name="scale_range", *, allow_equal=False):
    """Return ``scale_range`` as two floats ``0 < low < high`` (or ``<=``), or raise."""
    try:
        low, high = (float(bound) for bound in scale_range)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (low, high) of positive numbers, got {scale_range!r}.") from None
    if not (np.isfinite(low) and np.isfinite(high) and low > 0):
        raise ValueError(f"{name} must lie inside (0, inf), got {scale_range!r}.")
    if high < low or (high == low and not allow_equal):
        relation = "<=" if allow_equal else "<"
        raise ValueError(f"{name} must satisfy low {relation} high, got {scale_range!r}.")
    return low, high


def check_count(value, name, minimum=0):
    """Return ``value`` as an int ``>= minimum``, or raise."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)

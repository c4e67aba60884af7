"""Argument checks shared by the baseline networks."""

from __future__ import annotations

import math
import numbers

from ..heads import mnist_head  # noqa: F401  (re-exported for the baselines)


def check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def check_odd_size(name, value):
    value = check_positive_int(name, value)
    if value % 2 == 0:
        raise ValueError(f"{name} must be a positive odd integer, got {value!r}.")
    return value


def check_positive_number(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}.")
    return float(value)


def check_widths(widths):
    try:
        widths = tuple(widths)
    except TypeError:
        widths = None
    if not widths or not all(
        isinstance(w, numbers.Integral) and not isinstance(w, bool) and w >= 1 for w in widths
    ):
        raise ValueError(f"widths must be a non-empty sequence of positive integers, got {widths!r}.")
    return tuple(int(w) for w in widths)

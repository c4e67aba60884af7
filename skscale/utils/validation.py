"""One way to validate arguments, for the estimators, the layers, the datasets and the CLI.

A *constraint* describes the values an argument may take and checks one value::

    >>> n_scales = Integer(low=1)
    >>> n_scales.check(3, "n_scales")
    3
    >>> n_scales.check(0, "n_scales")
    Traceback (most recent call last):
    ...
    ValueError: n_scales must be an integer >= 1, got 0.

Estimators declare ``_parameter_constraints = {name: constraint}`` (as scikit-learn's
estimators do) and call :func:`check_params` once in ``fit``; layers and functions call
``constraint.check(value, name)``; the command line uses ``constraint.argparse_type(...)``.
Every error is a ``ValueError`` (``TypeError`` where a type is wrong) that names the
argument and the value it got.
"""

from __future__ import annotations

import argparse
import copy
import math
import numbers

import numpy as np

__all__ = [
    "Integer",
    "Real",
    "Options",
    "Boolean",
    "Pair",
    "Sequence",
    "AnyOf",
    "check_device",
    "check_params",
    "validate",
]


class _Constraint:
    """Base class: ``check`` returns the value (normalised) or raises ``ValueError``."""

    allow_none = False

    def describe(self):
        raise NotImplementedError

    def _convert(self, value):
        raise NotImplementedError

    def check(self, value, name):
        """Return ``value`` converted (``int``, ``float``, ...) or raise naming ``name``."""
        if value is None and self.allow_none:
            return None
        converted = self._convert(value)
        if converted is _INVALID:
            raise ValueError(f"{name} must be {self}, got {value!r}.")
        return converted

    def is_valid(self, value):
        return (value is None and self.allow_none) or self._convert(value) is not _INVALID

    def or_none(self):
        """The same constraint, also accepting None (e.g. "the architecture's own default").

        >>> str(Integer(low=1).or_none())
        'an integer >= 1 or None'
        """
        accepting = copy.copy(self)
        accepting.allow_none = True
        return accepting

    def argparse_type(self, parse=str):
        """A ``type=`` for :mod:`argparse`: ``parse`` the text, then check it.

        Errors become ``argparse.ArgumentTypeError`` so that argparse prints one line
        naming the option and exits with status 2.
        """

        def parse_and_check(text):
            try:
                value = parse(text)
            except ValueError:
                raise argparse.ArgumentTypeError(f"must be {self}, got {text!r}") from None
            if not self.is_valid(value):
                raise argparse.ArgumentTypeError(f"must be {self}, got {text!r}")
            return self._convert(value)

        parse_and_check.__name__ = self.describe()  # argparse names the type in some errors
        return parse_and_check

    def __str__(self):
        text = self.describe()
        return f"{text} or None" if self.allow_none else text


_INVALID = object()


def _bound_text(low, high, closed_low, closed_high, unit):
    if low is not None and high is not None:
        left = "[" if closed_low else "("
        right = "]" if closed_high else ")"
        return f"{unit} in {left}{low}, {high}{right}"
    if low is not None:
        return f"{unit} {'>=' if closed_low else '>'} {low}"
    if high is not None:
        return f"{unit} {'<=' if closed_high else '<'} {high}"
    return unit


def _inside(value, low, high, closed_low, closed_high):
    if low is not None and (value < low or (value == low and not closed_low)):
        return False
    return not (high is not None and (value > high or (value == high and not closed_high)))


class Integer(_Constraint):
    """An integer (not a bool) in ``[low, high]``; ``None`` bounds are open-ended.

    >>> Integer(low=0).check(np.int64(4), "n")
    4
    """

    def __init__(self, low=None, high=None, *, allow_none=False, odd=False):
        self.low, self.high, self.allow_none, self.odd = low, high, allow_none, odd

    def describe(self):
        text = _bound_text(self.low, self.high, True, True, "an odd integer" if self.odd else "an integer")
        return text

    def _convert(self, value):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
            return _INVALID
        value = int(value)
        if not _inside(value, self.low, self.high, True, True) or (self.odd and value % 2 == 0):
            return _INVALID
        return value


class Real(_Constraint):
    """A finite real number (not a bool) between ``low`` and ``high``.

    ``closed`` says which bounds belong to the interval: ``"both"``, ``"left"``,
    ``"right"`` or ``"neither"``. NaN and infinities are always refused.

    >>> Real(low=0, closed="neither").check(2, "sigma")
    2.0
    >>> str(Real(low=1, closed="neither"))
    'a finite number > 1'
    """

    def __init__(self, low=None, high=None, *, closed="both", allow_none=False):
        if closed not in ("both", "left", "right", "neither"):
            raise ValueError(f"closed must be 'both', 'left', 'right' or 'neither', got {closed!r}.")
        self.low, self.high, self.closed, self.allow_none = low, high, closed, allow_none

    def describe(self):
        closed_low = self.closed in ("both", "left")
        closed_high = self.closed in ("both", "right")
        return _bound_text(self.low, self.high, closed_low, closed_high, "a finite number")

    def _convert(self, value):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
            if not (hasattr(value, "ndim") and getattr(value, "ndim", 1) == 0 and hasattr(value, "item")):
                return _INVALID
            value = value.item()  # 0-d arrays and tensors
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                return _INVALID
        value = float(value)
        closed_low = self.closed in ("both", "left")
        closed_high = self.closed in ("both", "right")
        if not math.isfinite(value) or not _inside(value, self.low, self.high, closed_low, closed_high):
            return _INVALID
        return value


class Options(_Constraint):
    """One of a set of values (strings, usually): a sequence, or the keys of a registry dict.

    >>> Options(("max", "mean")).check("max", "mode")
    'max'
    """

    def __init__(self, options, *, allow_none=False):
        self._options, self.allow_none = options if isinstance(options, dict) else tuple(options), allow_none

    @property
    def options(self):
        """The accepted values; the keys of a dict as they are at each check (a live registry)."""
        return tuple(self._options)

    def describe(self):
        return f"one of {', '.join(repr(option) for option in self.options)}"

    def _convert(self, value):
        try:
            return value if value in self.options else _INVALID
        except TypeError:  # unhashable or incomparable values
            return _INVALID


class Boolean(_Constraint):
    """``True`` or ``False`` (NumPy booleans included); other truthy values are refused."""

    def __init__(self, *, allow_none=False):
        self.allow_none = allow_none

    def describe(self):
        return "True or False"

    def _convert(self, value):
        return bool(value) if isinstance(value, (bool, np.bool_)) else _INVALID


class Pair(_Constraint):
    """Two numbers ``(low, high)``, each satisfying ``item``, with ``low < high``.

    ``allow_equal=True`` accepts ``low == high``.

    >>> Pair(Real(low=0, closed="neither")).check([1, 8], "scale_range")
    (1.0, 8.0)
    """

    def __init__(self, item, *, allow_equal=False, allow_none=False):
        self.item, self.allow_equal, self.allow_none = item, allow_equal, allow_none

    def describe(self):
        relation = "<=" if self.allow_equal else "<"
        return f"a pair (low, high) with low {relation} high, each {self.item}"

    def _convert(self, value):
        if isinstance(value, (str, bytes)):
            return _INVALID
        try:
            items = tuple(value)
        except TypeError:
            return _INVALID
        if len(items) != 2:
            return _INVALID
        low, high = (self.item._convert(item) for item in items)
        if low is _INVALID or high is _INVALID or high < low or (high == low and not self.allow_equal):
            return _INVALID
        return low, high


class AnyOf(_Constraint):
    """A value that satisfies one of several constraints; the first that accepts it converts it.

    >>> bandwidth = AnyOf(Real(low=0, closed="neither"), Options(("scott", "silverman")))
    >>> bandwidth.check(1, "bandwidth"), bandwidth.check("scott", "bandwidth")
    (1.0, 'scott')
    >>> str(bandwidth)
    "a finite number > 0 or one of 'scott', 'silverman'"
    """

    def __init__(self, *constraints, allow_none=False):
        self.constraints, self.allow_none = constraints, allow_none

    def describe(self):
        return " or ".join(str(constraint) for constraint in self.constraints)

    def _convert(self, value):
        for constraint in self.constraints:
            converted = constraint._convert(value)
            if converted is not _INVALID:
                return converted
        return _INVALID


class Sequence(_Constraint):
    """A non-empty sequence (not a string) whose items all satisfy ``item``; returns a tuple.

    >>> Sequence(Integer(low=1)).check([32, 63], "widths")
    (32, 63)
    >>> str(Sequence(Integer(low=1)))
    'a non-empty sequence, each an integer >= 1'
    """

    def __init__(self, item, *, allow_none=False):
        self.item, self.allow_none = item, allow_none

    def describe(self):
        return f"a non-empty sequence, each {self.item}"

    def _convert(self, value):
        if isinstance(value, (str, bytes)):
            return _INVALID
        try:
            items = tuple(self.item._convert(item) for item in value)
        except TypeError:
            return _INVALID
        return items if items and all(item is not _INVALID for item in items) else _INVALID


def check_params(params, constraints):
    """Validate each ``params[name]`` against ``constraints[name]``; return the converted values.

    Parameters
    ----------
    params : dict
        Argument names and values, e.g. ``estimator.get_params(deep=False)``.
    constraints : dict
        Argument names and constraints; names missing from ``params`` are skipped.

    Returns
    -------
    dict
        The converted values of the constrained arguments.
    """
    return {
        name: constraint.check(params[name], name)
        for name, constraint in constraints.items()
        if name in params
    }


def validate(value, name, constraint):
    """``constraint.check(value, name)``: one argument, one line."""
    return constraint.check(value, name)


def check_device(device):
    """Refuse a torch ``device`` that does not exist here, naming it; None passes (skorch: leave as is)."""
    if device is None:
        return
    import torch  # the estimators' dependency; validation itself is torch-free

    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"device must name a torch device such as 'cpu' or 'cuda', got {device!r}."
        ) from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} asks for a GPU, but CUDA is not available to this torch "
                f"({torch.__version__}); use device='cpu'."
            )
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} names GPU {parsed.index}, but only "
                f"{torch.cuda.device_count()} are visible."
            )
    elif parsed.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device={device!r} asks for Apple's MPS, which is not available; use device='cpu'.")

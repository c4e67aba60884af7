"""Pieces shared by the baseline networks: argument checks and the MNIST head."""

from __future__ import annotations

import math
import numbers

from torch import nn

# Hyper-parameters that ScaleEquivariantClassifier passes to every builder.
from ..models import CLASSIFIER_KEYS, sesn_head  # models imports this package after defining it


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


def split_classifier_keys(hyper_parameters):
    """Separate the classifier's shared hyper-parameters from ``module__*`` arguments."""
    shared = {key: hyper_parameters.pop(key) for key in CLASSIFIER_KEYS if key in hyper_parameters}
    return shared, hyper_parameters


def mnist_head(channels, n_classes, hidden=256, dropout=0.7):
    """SESN's head after 2 x 2 max pooling (see :func:`skscale.nn.models.sesn_head`).

    ``4 * channels * hidden + 2 * hidden + hidden * n_classes + n_classes`` parameters.
    """
    return nn.Sequential(nn.AdaptiveMaxPool2d(2), *sesn_head(channels, n_classes, hidden, dropout))

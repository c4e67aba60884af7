"""How the internal scales are chosen during ``fit``: the ``scale_selection`` mechanisms.

- ``"gradient"``: the paper's method, the scale parameters trained by the optimiser with
  the weights (nothing here: the classifier's own scale parameter group).
- ``"response"``: :class:`ResponseSelection`, expectation-maximisation on the scale that
  wins the network's max scale projection (:func:`read_winning_scales`).
- ``"sweep"``: :class:`SweepSelection`, one network trained over many ISRs, the best one
  chosen on a validation split after BatchNorm recalibration
  (:func:`skscale.nn.batchnorm.recalibrate_batchnorm`).
"""

from .response import ResponseSelection, WinningScales, probe_scales, read_winning_scales
from .sweep import SweepSelection

#: The values of ``scale_selection``.
SCALE_SELECTIONS = ("gradient", "response", "sweep")

__all__ = [
    "SCALE_SELECTIONS",
    "ResponseSelection",
    "SweepSelection",
    "WinningScales",
    "probe_scales",
    "read_winning_scales",
    "selection_callback",
]


def selection_callback(scale_selection):
    """The skorch callback of a ``scale_selection`` value (None for ``"gradient"`` or anything else).

    Values are validated by the estimator's ``_parameter_constraints``; this only picks.
    """
    callbacks = {"response": ResponseSelection, "sweep": SweepSelection}
    if isinstance(scale_selection, str) and scale_selection in callbacks:
        return callbacks[scale_selection]()
    return None

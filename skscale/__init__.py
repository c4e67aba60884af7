"""skscale: scale-equivariant CNNs with learnable internal scales, as scikit-learn estimators.

>>> from skscale import ScaleEquivariantClassifier, ToleranceModel
"""

import importlib

from ._version import __version__

# The public names are imported when first used (PEP 562), so that ``python -m skscale
# --help`` and the light modules (``skscale.utils``) do not import torch and skorch.
_LAZY = {
    "ScaleEquivariantClassifier": ".classifier",
    "ScaleEquivariantSegmenter": ".segmentation",
    "ToleranceModel": ".tolerance",
    "estimate_scales": ".scale_estimation",
}

__all__ = [
    "ScaleEquivariantClassifier",
    "ScaleEquivariantSegmenter",
    "ToleranceModel",
    "estimate_scales",
    "__version__",
]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))

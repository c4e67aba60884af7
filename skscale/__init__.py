"""skscale: scale-equivariant CNNs with learnable internal scales, as scikit-learn estimators.

>>> from skscale import ScaleEquivariantClassifier, ToleranceModel
"""

from ._version import __version__
from .classifier import ScaleEquivariantClassifier
from .scale_estimation import estimate_scales
from .segmentation import ScaleEquivariantSegmenter
from .tolerance import ToleranceModel

__all__ = [
    "ScaleEquivariantClassifier",
    "ScaleEquivariantSegmenter",
    "ToleranceModel",
    "estimate_scales",
    "__version__",
]

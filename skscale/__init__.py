"""skscale: scale-equivariant CNNs with learnable internal scales, as scikit-learn estimators.

>>> from skscale import ScaleEquivariantClassifier, ToleranceModel
"""

from .classifier import ScaleEquivariantClassifier
from .scale_estimation import estimate_scales
from .tolerance import ToleranceModel

__version__ = "0.1.0.dev0"

__all__ = ["ScaleEquivariantClassifier", "ToleranceModel", "estimate_scales", "__version__"]

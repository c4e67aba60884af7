"""Scale-aware baselines of the paper's Table 5, as torch modules and registered networks.

- Deep Scale-spaces (Worrall and Welling, 2019): :class:`GaussianScaleSpace`,
  :class:`ScaleSpaceConv`, network :class:`DSSNet` (``architecture="dss"``).
- SI-ConvNet (Kanazawa et al., 2014): :class:`SIConv2d`, network :class:`SIConvNet`
  (``architecture="siconvnet"``).
- S-DenseNet and its DenseNet baseline for 96 x 96 RGB patches (Worrall and Welling,
  2019): :class:`SDenseNet` (``architecture="s_densenet"``), :class:`DenseNet`
  (``"densenet"``).
- DISCO (Sosnovik et al., 2021): :class:`DiscoBasis`, :class:`DiscoConvT2H`,
  :class:`DiscoConvH2H`, network :class:`DISCONet` (``architecture="disco"``).
- SiCNN (Xu et al., 2014): :class:`MultiColumnConv2d`, network :class:`SiCNN`
  (``architecture="sicnn"``, 496,639 parameters; the paper's Table 5: 497k).
- SS-CNN (Ghosh and Gupta, 2019): :func:`log_radial_basis`, :class:`SteerableScaleConv2d`,
  network :class:`SSCNN` (``architecture="sscnn"``, 486,202; Table 5: 494k).
- SEVF (Marcos et al., 2018): :class:`ScaleVectorConv2d`, network :class:`SEVFNet`
  (``architecture="sevf"``, 495,202; Table 5: 495k).

DSS, SI-ConvNet and DISCO have the layout of the SESN MNIST networks (three blocks of 32, 63 and 95
filters and a 256-unit head) and 494,549 trainable parameters for 10 classes on one
channel, so that all of them compare with ``"sesn"`` and ``"cnn"`` at equal size:

>>> from skscale.nn import ARCHITECTURES, build_module, count_parameters
>>> {"dss", "siconvnet", "disco"} <= set(ARCHITECTURES)
True
>>> count_parameters(build_module("dss", n_classes=10, in_channels=1))
494549
"""

# The package's public names are its modules' (their ``__all__``), declared once there.
from . import densenet, disco, dss, sevf, sicnn, siconvnet, sscnn
from .densenet import *  # noqa: F403
from .disco import *  # noqa: F403
from .dss import *  # noqa: F403
from .sevf import *  # noqa: F403
from .sicnn import *  # noqa: F403
from .siconvnet import *  # noqa: F403
from .sscnn import *  # noqa: F403

__all__ = [
    *dss.__all__,
    *densenet.__all__,
    *siconvnet.__all__,
    *disco.__all__,
    *sicnn.__all__,
    *sscnn.__all__,
    *sevf.__all__,
]

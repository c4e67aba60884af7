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

from .densenet import DenseNet, SDenseNet
from .disco import (
    DISCO_SCALES,
    DiscoBasis,
    DiscoConvH2H,
    DiscoConvT2H,
    DISCONet,
    disco_kernel_layout,
    load_disco_basis,
    optimise_disco_basis,
)
from .dss import DSSNet, GaussianScaleSpace, ScaleSpaceConv, discrete_gaussian
from .sevf import (
    SEVF_ANGLES,
    SEVF_FACTORS,
    ScaleVectorConv2d,
    SEVFNet,
    VectorBatchNorm2d,
    VectorMaxPool2d,
    scale_vector_field,
    vector_magnitude,
)
from .sicnn import ColumnBatchNorm, MultiColumnConv2d, SiCNN, rescaled_kernel_size
from .siconvnet import SESN_FACTORS, SIConv2d, SIConvNet
from .sscnn import LOG_PERIOD, SSCNN, SteerableScaleConv2d, log_radial_basis, steer_log_radial

__all__ = [
    "GaussianScaleSpace",
    "ScaleSpaceConv",
    "DSSNet",
    "SDenseNet",
    "DenseNet",
    "discrete_gaussian",
    "SIConv2d",
    "SIConvNet",
    "SESN_FACTORS",
    "DiscoBasis",
    "DiscoConvT2H",
    "DiscoConvH2H",
    "DISCONet",
    "DISCO_SCALES",
    "disco_kernel_layout",
    "optimise_disco_basis",
    "load_disco_basis",
    "MultiColumnConv2d",
    "ColumnBatchNorm",
    "SiCNN",
    "rescaled_kernel_size",
    "log_radial_basis",
    "steer_log_radial",
    "LOG_PERIOD",
    "SteerableScaleConv2d",
    "SSCNN",
    "scale_vector_field",
    "vector_magnitude",
    "ScaleVectorConv2d",
    "VectorMaxPool2d",
    "VectorBatchNorm2d",
    "SEVFNet",
    "SEVF_FACTORS",
    "SEVF_ANGLES",
]

"""Torch layers for scale-equivariant networks with learnable internal scales.

Usable on their own in any ``torch.nn`` network:

>>> import torch
>>> from torch import nn
>>> from skscale.nn import InternalScales, ScaleConvT2H, ScaleConvH2H, ScaleProjection
>>> scales = InternalScales(n_scales=3, parameterisation="isr", init_sigma_basis=1.0, init_isr=2.0)
>>> net = nn.Sequential(ScaleConvT2H(1, 8, scales), nn.ReLU(), ScaleConvH2H(8, 8, scales),
...                     ScaleProjection("max"))
>>> tuple(net(torch.randn(4, 1, 28, 28)).shape)
(4, 8, 28, 28)
"""

from .baselines import (
    SSCNN,
    DenseNet,
    DiscoBasis,
    DiscoConvH2H,
    DiscoConvT2H,
    DISCONet,
    DSSNet,
    GaussianScaleSpace,
    ScaleSpaceConv,
    SDenseNet,
    SEVFNet,
    SiCNN,
    SIConv2d,
    SIConvNet,
)
from .conv import ScaleConvH2H, ScaleConvT2H
from .models import PlainCNN, SESNNet, Table1Net
from .pooling import ScaleProjection
from .registry import ARCHITECTURES, build_module, count_parameters, register_architecture
from .scales import PARAMETERISATIONS, InternalScales, find_internal_scales
from .segmentation import SEGMENTATION_ARCHITECTURES, register_segmentation_architecture
from .spec import ScaleSpec

__all__ = [
    "InternalScales",
    "PARAMETERISATIONS",
    "ScaleSpec",
    "find_internal_scales",
    "ScaleConvT2H",
    "ScaleConvH2H",
    "ScaleProjection",
    "ARCHITECTURES",
    "build_module",
    "count_parameters",
    "register_architecture",
    "Table1Net",
    "SESNNet",
    "PlainCNN",
    "GaussianScaleSpace",
    "ScaleSpaceConv",
    "DSSNet",
    "SDenseNet",
    "DenseNet",
    "SEGMENTATION_ARCHITECTURES",
    "register_segmentation_architecture",
    "SIConv2d",
    "SIConvNet",
    "DiscoBasis",
    "DiscoConvT2H",
    "DiscoConvH2H",
    "DISCONet",
    "SiCNN",
    "SSCNN",
    "SEVFNet",
]

import pytest
import torch

from skscale.metrics import rescale, scale_equivariance_error
from skscale.nn import ScaleConvT2H

from .conftest import smooth_noise


def test_rescale_shapes_and_scale_axis():
    assert rescale(torch.randn(2, 3, 10, 12), 2.0).shape == (2, 3, 20, 24)
    assert rescale(torch.randn(2, 3, 4, 10, 12), 0.5).shape == (2, 3, 4, 5, 6)
    with pytest.raises(ValueError, match="factor must be a finite number > 0, got -1.0"):
        rescale(torch.randn(1, 1, 4, 4), -1.0)
    with pytest.raises(ValueError, match="mode must be one of 'bicubic', 'bilinear', got 'area'"):
        rescale(torch.randn(1, 1, 4, 4), 2.0, mode="area")
    with pytest.raises(ValueError, match="4-D"):
        rescale(torch.randn(4, 4), 2.0)


def test_identity_module_has_tiny_error_and_noise_module_large():
    images = smooth_noise(2, 64, sigma=1.5)
    assert scale_equivariance_error(torch.nn.Identity(), images, 2.0) < 1e-6
    assert scale_equivariance_error(lambda x: x + torch.randn_like(x), images, 2.0) > 0.5


def test_downscaling_uses_a_negative_shift():
    images = smooth_noise(2, 128, sigma=3.0)
    layer = ScaleConvT2H(1, 4, [1.0, 2.0, 4.0])
    assert scale_equivariance_error(layer, images, factor=0.5, scale_shift=-1) < 0.05


def test_argument_errors():
    layer = ScaleConvT2H(1, 2, [1.0, 2.0])
    images = smooth_noise(1, 32)
    with pytest.raises(ValueError, match="images"):
        scale_equivariance_error(layer, images[0], 2.0)
    with pytest.raises(ValueError, match=r"crop must be a finite number in \[0, 0.5\), got 0.5"):
        scale_equivariance_error(layer, images, 2.0, 1, crop=0.5)
    with pytest.raises(ValueError, match="scale_shift must be an integer, got 0.5"):
        scale_equivariance_error(layer, images, 2.0, 0.5)
    with pytest.raises(ValueError, match="scale_shift"):
        scale_equivariance_error(layer, images, 2.0, 2)
    with pytest.raises(ValueError, match="scale_shift"):
        scale_equivariance_error(torch.nn.Identity(), images, 2.0, 1)
    with pytest.raises(ValueError, match="spatial size"):
        scale_equivariance_error(ScaleConvT2H(1, 2, [1.0, 2.0], stride=2), smooth_noise(1, 33), 2.0, 1)

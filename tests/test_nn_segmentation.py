"""Tests of skscale.nn.segmentation, skscale.nn.plane_blocks and the DenseNet classifiers."""

import pytest
import torch

from skscale.metrics import scale_equivariance_error
from skscale.nn import ARCHITECTURES, SEGMENTATION_ARCHITECTURES, build_module, count_parameters
from skscale.nn.baselines import DenseNet, DSSNet, SDenseNet
from skscale.nn.plane_blocks import PlanePool, resize_planes
from skscale.nn.segmentation import (
    ResNetSegmenter,
    ScaleEncoderDecoder,
    SResNetSegmenter,
    get_segmentation_builder,
    register_segmentation_architecture,
)

from .conftest import smooth_noise

# Trainable parameters for 4 classes on one channel with the default n_filters=16.
PARAMETERS = {
    "dss": 18948,
    "dss_independent": 9588,
    "resnet": 9588,
    "resnet_wide": 84052,
    "sesn": 26054,
}


def build(name, n_classes=4, in_channels=1, **arguments):
    return build_module(
        get_segmentation_builder(name), n_classes=n_classes, in_channels=in_channels, **arguments
    )


def test_every_segmentation_network_is_registered_apart_from_the_classifiers():
    assert set(SEGMENTATION_ARCHITECTURES) == set(PARAMETERS)
    assert SEGMENTATION_ARCHITECTURES["dss"] is SResNetSegmenter
    assert ARCHITECTURES["dss"] is DSSNet  # the classifier's network keeps its name
    assert SEGMENTATION_ARCHITECTURES["sesn"] is ScaleEncoderDecoder
    assert {"densenet", "s_densenet"} <= set(ARCHITECTURES)
    assert not {"densenet", "s_densenet"} & set(SEGMENTATION_ARCHITECTURES)


@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_forward_backward_any_size_and_parameter_count(name):
    net = build(name)
    assert count_parameters(net) == PARAMETERS[name]
    images = torch.randn(2, 1, 23, 30)
    logits = net(images)
    assert logits.shape == (2, 4, 23, 30)
    logits.square().mean().backward()
    missing = [key for key, parameter in net.named_parameters() if parameter.grad is None]
    assert not missing


def test_matched_baselines():
    # Matched parameters: the plain ResNet has the layout, widths and parameters of the
    # S-ResNet without interaction; matched channels: n_scales times the widths.
    assert count_parameters(build("resnet")) == count_parameters(build("dss_independent"))
    wide = build("resnet_wide", n_scales=4)
    assert wide.classifier.in_channels == 16 * 4
    # Multiscale interaction doubles the correlations' weights (two levels read).
    dss, independent = build("dss"), build("dss_independent")
    assert dss.stem[0].weight.numel() == 2 * independent.stem[0].weight.numel()


def test_encoder_decoder_shares_one_learnable_internal_scales():
    net = build("sesn", scale_spec={"n_scales": 4, "init_isr": 3.0})
    assert net.scale_spec.n_scales == 4 and net.scales.isr == pytest.approx(3.0)
    convs = [module for module in net.modules() if hasattr(module, "scales") and module is not net]
    assert convs and all(conv.scales is net.scales for conv in convs)
    net(torch.randn(1, 1, 17, 17)).sum().backward()
    assert all(parameter.grad is not None for parameter in net.scales.parameters())


def test_registry_errors_and_registration():
    with pytest.raises(ValueError, match="architecture must be one of"):
        get_segmentation_builder("unet")
    with pytest.raises(ValueError, match="non-empty string"):
        register_segmentation_architecture("")

    @register_segmentation_architecture("test-pixels")
    def pixels(n_classes, in_channels):
        return torch.nn.Conv2d(in_channels, n_classes, 1)

    try:
        assert get_segmentation_builder("test-pixels") is pixels
        assert get_segmentation_builder(pixels) is pixels
    finally:
        SEGMENTATION_ARCHITECTURES.pop("test-pixels")


def test_sresnet_lifting_is_equivariant_to_dyadic_rescaling():
    # Rescaling the input by 2 shifts the scale-space and the features one level up
    # (skscale.metrics.scale_equivariance_error, normalised L2): only interpolation and the
    # discrete grid remain. Random weights, eval mode (norms are per-channel affine maps).
    images = smooth_noise(4, 64, sigma=2.0)
    independent = build("dss_independent").eval()
    assert scale_equivariance_error(independent.lifting, images, 2.0, scale_shift=1) < 0.06
    assert scale_equivariance_error(independent.scale_features, images, 2.0, scale_shift=1) < 0.06
    # With interaction the top level reads a truncated level (zeros); the levels below are exact.
    dss = build("dss").eval()

    def stem_lower_levels(x):
        return dss.stem(dss.lifting(x))[:, :, :2]

    assert scale_equivariance_error(stem_lower_levels, images, 2.0, scale_shift=1) < 0.06
    truncated = scale_equivariance_error(lambda x: dss.stem(dss.lifting(x)), images, 2.0, scale_shift=1)
    assert truncated > 0.2
    # A plain ResNet's features do not shift: they are not equivariant.
    plain = build("resnet").eval()
    assert scale_equivariance_error(lambda x: plain.blocks(plain.stem(x)), images, 2.0) > 0.2


def test_plane_blocks_handle_a_scale_axis():
    features = torch.randn(2, 3, 4, 9, 7)
    assert PlanePool("max")(features).shape == (2, 3, 4, 5, 4)
    assert resize_planes(features, (18, 14)).shape == (2, 3, 4, 18, 14)
    assert torch.equal(PlanePool("max")(features)[:, :, 1], PlanePool("max")(features[:, :, 1]))
    with pytest.raises(ValueError, match="mode"):
        PlanePool("median")


def test_s_densenet_and_densenet_on_pcam_sized_patches():
    dense, scale_dense = DenseNet(2), SDenseNet(2)
    assert count_parameters(dense) == count_parameters(scale_dense) == 76082
    assert count_parameters(SDenseNet(2, scale_size=2)) == 144122
    patches = torch.rand(2, 3, 96, 96)
    for net in (dense, scale_dense):
        logits = net(patches)
        assert logits.shape == (2, 2)
        logits.sum().backward()
    assert (
        build_module("s_densenet", n_classes=2, in_channels=3, defaults={"n_scales": 2}).lifting.n_scales == 2
    )


def test_resnet_segmenter_refuses_even_kernels():
    with pytest.raises(ValueError, match="kernel_size"):
        ResNetSegmenter(2, kernel_size=4)

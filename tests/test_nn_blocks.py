"""skscale.nn.blocks: the SESN MNIST body, its fused convolution and projection, input checks."""

import inspect
import math
import re

import pytest
import torch
from torch import nn

from skscale.nn import InternalScales, ScaleConvT2H, ScaleProjection, baselines, build_module, models
from skscale.nn.blocks import (
    SESN_LAYOUT,
    OddKernelConv,
    ProjectingSequential,
    check_input_shape,
    mnist_blocks,
    reset_conv_parameters,
)
from skscale.nn.hooks import has_forward_hooks
from skscale.nn.pooling import MaxPool2x2


def plain_conv(channels, width):
    return nn.Conv2d(channels, width, 3, padding=1)


def test_every_block_is_convolution_pooling_relu_norm_in_that_order():
    features = mnist_blocks(2, (4, 8, 5), plain_conv)
    assert isinstance(features, ProjectingSequential) and len(features) == 3 * 4
    kinds = [type(module) for module in features]
    assert kinds == [nn.Conv2d, MaxPool2x2, nn.ReLU, nn.BatchNorm2d] * 3
    convolutions = features[0::4]
    assert [(c.in_channels, c.out_channels) for c in convolutions] == [(2, 4), (4, 8), (8, 5)]
    assert [norm.num_features for norm in features[3::4]] == [4, 8, 5]
    # Each block halves the image (ceil mode): 15 -> 8 -> 4 -> 2.
    assert features(torch.randn(2, 2, 15, 15)).shape == (2, 5, 2, 2)


def test_projecting_blocks_put_a_max_projection_after_each_convolution():
    scales = InternalScales(2, "fixed", 1.0, 2.0)
    features = mnist_blocks(1, (3, 4), lambda c, o: ScaleConvT2H(c, o, scales), project=True)
    assert len(features) == 2 * 5
    assert all(isinstance(m, ScaleProjection) and m.mode == "max" for m in features[1::5])
    assert features(torch.randn(2, 1, 12, 12)).shape == (2, 4, 3, 3)


def test_blocks_with_a_scale_axis_pool_space_only_and_norm_in_3d():
    def lifting(channels, width):
        return nn.Conv3d(channels, width, (1, 3, 3), padding=(0, 1, 1))

    features = mnist_blocks(2, (3,), lifting, scale_axis=True)
    assert isinstance(features[-1], nn.BatchNorm3d)
    assert features(torch.randn(2, 2, 4, 9, 9)).shape == (2, 3, 4, 5, 5)


@pytest.mark.parametrize("widths", [(), (4, 0), "48", 8, (4.5,)])
def test_widths_must_be_a_non_empty_sequence_of_positive_integers(widths):
    with pytest.raises(
        ValueError,
        match=re.escape(f"widths must be a non-empty sequence, each an integer >= 1, got {widths!r}."),
    ):
        mnist_blocks(1, widths, plain_conv)


def test_relu_after_pooling_is_what_pooling_after_relu_gives():
    features = mnist_blocks(1, (3,), plain_conv).eval()
    x = torch.randn(2, 1, 9, 9)
    conv, _, _, norm = features
    expected = norm(nn.functional.max_pool2d(torch.relu(conv(x)), 2, ceil_mode=True))
    torch.testing.assert_close(features(x), expected)


def test_a_module_without_a_fused_path_or_a_mean_projection_runs_as_in_sequential():
    scales = InternalScales(2, "fixed", 1.0, 2.0)
    conv = ScaleConvT2H(1, 3, scales)
    fused_calls = []
    conv.forward_max_projected = lambda x: fused_calls.append(x) or torch.zeros(())
    mean = ProjectingSequential(conv, ScaleProjection("mean"))
    x = torch.randn(1, 1, 8, 8)
    torch.testing.assert_close(mean(x), conv(x).mean(dim=2))
    assert not fused_calls
    assert (
        ProjectingSequential(conv, ScaleProjection("max"))(x).shape == ()
    )  # the fused path, when it applies
    assert len(fused_calls) == 1


@pytest.mark.parametrize("scale_axis, shape", [(False, (2, 3, 8, 8)), (True, (2, 3, 4, 8, 8))])
def test_check_input_shape_accepts_the_expected_shape(scale_axis, shape):
    check_input_shape(nn.Identity(), torch.zeros(shape), 3, 4 if scale_axis else None, scale_axis=scale_axis)
    check_input_shape(nn.Identity(), torch.zeros(shape), scale_axis=scale_axis)


@pytest.mark.parametrize(
    "shape, channels, scales, scale_axis, expected",
    [
        ((2, 3, 8), 3, None, False, r"\(B, 3, H, W\), got \(2, 3, 8\)"),
        ((2, 2, 8, 8), 3, None, False, r"\(B, 3, H, W\), got \(2, 2, 8, 8\)"),
        ((2, 3, 8, 8), None, None, True, r"\(B, C, S, H, W\), got \(2, 3, 8, 8\)"),
        ((2, 3, 5, 8, 8), 3, 4, True, r"\(B, 3, 4, H, W\), got \(2, 3, 5, 8, 8\)"),
    ],
)
def test_check_input_shape_names_the_layer_the_expected_and_the_given_shape(
    shape, channels, scales, scale_axis, expected
):
    with pytest.raises(ValueError, match=rf"^ScaleProjection expects input of shape {expected}\.$"):
        check_input_shape(ScaleProjection(), torch.zeros(shape), channels, scales, scale_axis=scale_axis)


def test_reset_conv_parameters_draws_what_conv2d_draws():
    reference = nn.Conv2d(4, 6, 5)
    weight, bias = nn.Parameter(torch.empty(6, 4, 5, 5)), nn.Parameter(torch.empty(6))
    torch.manual_seed(3)
    reference.reset_parameters()
    torch.manual_seed(3)
    reset_conv_parameters(weight, bias)
    torch.testing.assert_close(weight, reference.weight, rtol=0, atol=0)
    torch.testing.assert_close(bias, reference.bias, rtol=0, atol=0)


def test_reset_conv_parameters_uses_the_fan_in_of_every_axis_after_the_first():
    weight = nn.Parameter(torch.empty(64, 3, 7, 10))  # e.g. (out, in, scales, basis functions)
    bias = nn.Parameter(torch.full((64,), 5.0))
    reset_conv_parameters(weight, bias)
    fan_in = 3 * 7 * 10
    assert weight.abs().max() <= 1 / math.sqrt(fan_in) and weight.abs().max() > 0.8 / math.sqrt(fan_in)
    assert bias.abs().max() <= 1 / math.sqrt(fan_in)
    reset_conv_parameters(weight, bias, zero_bias=True)
    assert torch.equal(bias, torch.zeros(64))
    reset_conv_parameters(weight)  # no bias: nothing else to do


def test_blocks_fuse_convolution_and_projection_unless_hooked(monkeypatch):
    torch.manual_seed(0)
    network = build_module("sesn", n_classes=3, in_channels=1, n_scales=3).eval()
    calls = []
    original = ScaleConvT2H.forward_max_projected

    def spy(self, x):
        calls.append(self)
        return original(self, x)

    monkeypatch.setattr(ScaleConvT2H, "forward_max_projected", spy)
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        fused = network(x)
    assert len(calls) == 3
    calls.clear()
    torch.testing.assert_close(network(x).detach(), fused)
    assert len(calls) == 3  # with gradients too
    calls.clear()
    seen = []
    handle = network.features[0].register_forward_hook(
        lambda module, inputs, output: seen.append(output.shape)
    )
    with torch.no_grad():
        torch.testing.assert_close(network(x), fused)
    handle.remove()
    assert seen == [torch.Size([2, 32, 3, 28, 28])] and len(calls) == 2  # the hooked layer ran whole
    with network.features[1].register_forward_pre_hook(lambda module, inputs: None):
        with torch.no_grad():
            network(x)
    assert len(calls) == 4  # a hook on the projection: its convolution runs whole too
    with torch.no_grad():
        network(x)
    assert len(calls) == 7 and not has_forward_hooks(network.features[0])  # hooks gone: fused again


@pytest.mark.parametrize("n_scales", [2, 4])
def test_fused_training_gives_the_values_and_gradients_of_the_modules_apart(n_scales):
    torch.manual_seed(0)
    fused = build_module("sesn", n_classes=3, in_channels=1, n_scales=n_scales).train()
    apart = build_module("sesn", n_classes=3, in_channels=1, n_scales=n_scales).train()
    apart.load_state_dict(fused.state_dict())
    apart.features = torch.nn.Sequential(*apart.features)  # a plain Sequential never fuses
    x = torch.randn(4, 1, 28, 28)
    outputs = []
    for network in (fused, apart):
        torch.manual_seed(1)  # the same dropout mask
        out = network(x)
        out.square().sum().backward()
        outputs.append(out)
    torch.testing.assert_close(outputs[0], outputs[1], rtol=0, atol=0)
    for (name, ours), theirs in zip(fused.named_parameters(), apart.parameters()):
        if ours.grad is not None:
            torch.testing.assert_close(ours.grad, theirs.grad, rtol=0, atol=0, msg=name)


@pytest.mark.parametrize(
    "network",
    [
        models.SESNNet,
        models.PlainCNN,
        baselines.DSSNet,
        baselines.SIConvNet,
        baselines.SiCNN,
        baselines.DISCONet,
    ],
)
def test_networks_of_the_sesn_layout_default_to_its_one_declaration(network):
    defaults = {name: p.default for name, p in inspect.signature(network).parameters.items()}
    assert SESN_LAYOUT == ((32, 63, 95), 256, 0.7)
    assert (defaults["widths"], defaults["hidden"], defaults["dropout"]) == SESN_LAYOUT


@pytest.mark.parametrize(
    ("arguments", "message"),
    [((0, 4, 3), "in_channels"), ((1, 0, 3), "out_channels"), ((1, 4, 4), "kernel_size")],
)
def test_odd_kernel_conv_checks_its_sizes(arguments, message):
    with pytest.raises(ValueError, match=message):
        OddKernelConv(*arguments)
    assert OddKernelConv(2, 4, 5).extra_repr() == "2, 4, kernel_size=5"

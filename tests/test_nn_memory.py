"""skscale.nn.memory: what one image costs at prediction, what one batch needs."""

import warnings

import pytest
import torch
from torch import nn

from skscale.nn import InternalScales, ScaleConvT2H, ScaleProjection, Table1Net
from skscale.nn.memory import (
    LargeKernelWarning,
    activation_bytes_per_image,
    check_kernel_memory,
    check_parameter_memory,
    device_memory,
    scale_convolutions,
)


def lifting(init_isr=2.0):
    scales = InternalScales(3, "fixed", 1.0, init_isr)
    return nn.Sequential(ScaleConvT2H(1, 4, scales), ScaleProjection("max"))


def test_device_memory_of_this_machine():
    assert device_memory("cpu") > 2**30


def test_scale_convolutions_are_the_layers_with_kernel_sizes():
    net = Table1Net(10, n_filters=4)
    assert scale_convolutions(net) == [net.conv]


def test_bytes_per_image_count_every_output_and_the_padded_spectra():
    net = lifting()
    size = max(net[0].kernel_sizes())
    expected = 4 * 16 * 16  # the input
    expected += 4 * (4 * 3 * 16 * 16)  # the lifting output (B, 4, 3, H, W)
    expected += 4 * (4 * 16 * 16)  # the projection
    expected += 8 * (1 + 4 * 3) * (16 + size - 1) ** 2  # complex spectra in and out
    # ... plus the InternalScales' own output (3 floats, read once per convolution call).
    measured = activation_bytes_per_image(net, (1, 16, 16))
    assert expected < measured <= expected + 2 * 3 * 4
    assert net.training  # the probe pass left the mode as it was
    # Cached per shape: a larger image costs more, and asking again gives the same.
    assert activation_bytes_per_image(net, (1, 32, 32)) > measured
    assert activation_bytes_per_image(net, (1, 16, 16)) == measured


def test_kernels_that_cannot_fit_are_refused_naming_what_drives_them():
    net = lifting(init_isr=400.0)
    with pytest.raises(ValueError, match="spans .* pixels .*Lower the kernel size .*init_isr"):
        check_kernel_memory(net, (1, 16, 16), 10**6, "cpu", "init_isr=400.0")
    with pytest.raises(ValueError, match="Lower batch_size=100000000"):
        check_kernel_memory(lifting(), (1, 16, 16), 10**8, "cpu", "init_isr=2.0")


def test_kernels_far_larger_than_the_images_warn():
    with pytest.warns(LargeKernelWarning, match="pixels but the images are 1 x 4"):
        check_kernel_memory(lifting(init_isr=8.0), (1, 1, 4), 2, "cpu", "init_isr=8.0")
    with warnings.catch_warnings():
        warnings.simplefilter("error", LargeKernelWarning)
        check_kernel_memory(lifting(), (1, 28, 28), 2, "cpu", "init_isr=2.0")


def test_parameters_are_counted_before_anything_is_allocated():
    built = []

    def build():
        built.append(torch.empty(0).device.type)
        return nn.Linear(10**6, 10**4)  # 1e10 weights: 160 GB to train

    with pytest.raises(ValueError, match="10,000,010,000 parameters \\(width=7\\).*Choose a smaller width"):
        check_parameter_memory(build, "cpu", "width", 7)
    assert built == ["meta"]
    check_parameter_memory(lambda: nn.Linear(3, 2), "cpu", "width", 1)

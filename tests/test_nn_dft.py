"""The matrix-DFT correlation of small maps (skscale.nn.dft) and where the FFT path uses it."""

import pytest
import torch
import torch.nn.functional as F

from skscale.nn import InternalScales, ScaleConvT2H, build_module
from skscale.nn.dft import dft_correlate_same, dft_correlate_spectrum, dft_kernel_spectrum
from skscale.nn.functional import correlate_spectrum, fft_correlate_same, kernel_spectrum
from skscale.nn.planning import conv_cost_estimates, dft_grid_size, fft_grid_size, uses_matrix_dft


@pytest.mark.parametrize(
    "x_shape, kernel_shape",
    [
        ((2, 3, 7, 7), (4, 3, 13, 13)),  # the kernel reaches past the image
        ((2, 3, 14, 14), (5, 3, 15, 15)),
        ((1, 2, 9, 6), (3, 2, 5, 5)),  # not square, odd and even grid widths
        ((2, 1, 5, 5), (3, 1, 1, 1)),
        ((0, 2, 6, 6), (2, 2, 3, 3)),  # an empty batch
    ],
)
def test_dft_correlation_equals_conv2d_forward_and_gradients_float64(x_shape, kernel_shape):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(x_shape, dtype=torch.float64, generator=generator, requires_grad=True)
    kernel = torch.randn(kernel_shape, dtype=torch.float64, generator=generator, requires_grad=True)
    padding = kernel_shape[-1] // 2
    reference = F.conv2d(x, kernel, padding=padding)
    out = dft_correlate_same(x, kernel)
    torch.testing.assert_close(out, reference, rtol=1e-10, atol=1e-10)
    grad = torch.randn(reference.shape, dtype=torch.float64, generator=generator)
    expected = torch.autograd.grad(reference, (x, kernel), grad)
    for got, want in zip(torch.autograd.grad(out, (x, kernel), grad), expected):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_dft_gradcheck_small():
    x = torch.randn(2, 2, 5, 4, dtype=torch.float64, requires_grad=True)
    kernel = torch.randn(3, 2, 7, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(dft_correlate_same, (x, kernel))


def test_dft_float32_accuracy():
    x, kernel = torch.randn(8, 16, 14, 14), torch.randn(24, 16, 15, 15)
    reference = F.conv2d(x.double(), kernel.double(), padding=7)
    error = (dft_correlate_same(x, kernel).double() - reference).abs().max() / reference.abs().max()
    assert error < 1e-5


def test_the_spectrum_is_computed_once_for_many_batches():
    kernel = torch.randn(4, 3, 9, 9, dtype=torch.float64)
    factors = dft_kernel_spectrum(kernel, 7, 6)
    assert factors.shape == (2, 11 * (10 // 2 + 1), 2 * 3, 4) and not factors.is_complex()
    for batch in (1, 5):
        x = torch.randn(batch, 3, 7, 6, dtype=torch.float64)
        out = dft_correlate_spectrum(x, factors, dft_grid_size(7, 6, 9))
        torch.testing.assert_close(out, F.conv2d(x, kernel, padding=4))


def test_the_matrix_dft_serves_small_maps_without_groups_or_stride():
    assert dft_grid_size(7, 7, 13) == (13, 13) and dft_grid_size(14, 9, 3) == (15, 10)
    assert dft_grid_size(14, 14, 21) == (24, 24) and uses_matrix_dft(14, 14, 21)
    assert not uses_matrix_dft(14, 14, 23) and not uses_matrix_dft(28, 28, 7)
    assert not uses_matrix_dft(7, 7, 5, groups=2) and not uses_matrix_dft(7, 7, 5, stride=2)
    # Beyond it the FFT path keeps its fast sizes.
    assert fft_grid_size(28, 28, 7) == (32, 32)


@pytest.mark.parametrize("stride, groups", [(1, 1), (2, 1), (1, 2)])
def test_the_fft_path_on_small_maps_equals_conv2d_with_and_without_the_matrix_dft(stride, groups):
    x = torch.randn(3, 4, 7, 7, dtype=torch.float64)
    kernel = torch.randn(6, 4 // groups, 9, 9, dtype=torch.float64)
    reference = F.conv2d(x, kernel, padding=4, stride=stride, groups=groups)
    torch.testing.assert_close(fft_correlate_same(x, kernel, stride=stride, groups=groups), reference)
    spectrum = kernel_spectrum(kernel, 7, 7, groups, stride)
    # Only stride 1 without groups takes the real matrices of the matrix DFT.
    assert spectrum.factors.is_complex() == ((stride, groups) != (1, 1))
    torch.testing.assert_close(correlate_spectrum(x, spectrum, stride), reference)


def test_a_matrix_dft_spectrum_refuses_a_stride():
    spectrum = kernel_spectrum(torch.randn(2, 2, 3, 3), 7, 7)
    with pytest.raises(ValueError, match="stride 1, got stride=2"):
        correlate_spectrum(torch.randn(1, 2, 7, 7), spectrum, stride=2)


def test_the_cost_model_of_small_maps_is_the_matrix_dft():
    # sesn's second layer (14 x 14 maps, 32 -> 4 x 63 channels, kernel 15): the matrix DFT
    # is modelled far below the direct path, and below the FFT library's cost at the next grid.
    direct, dft = conv_cost_estimates(15, 14, 14, 32, 252, batch_size=64, backward=False)
    assert dft < direct / 5
    _, fft = conv_cost_estimates(15, 14, 14, 32, 252, groups=2, batch_size=64, backward=False)
    assert dft < fft


# The scales of the SESN authors' network (kernels 7, 7, 11, 15), as in benchmarks.speed.
SESN_SCALES = {"n_scales": 4, "init_sigma_basis": 1.7, "init_isr": 3.0, "kernel_extent": 1.2}


def sesn(conv_impl):
    torch.manual_seed(0)
    conv_kwargs = {"conv_impl": conv_impl}
    return build_module(
        "sesn", n_classes=10, in_channels=1, parameterisation="fixed", conv_kwargs=conv_kwargs, **SESN_SCALES
    )


def test_the_auto_rule_sends_the_large_kernels_of_sesns_small_maps_through_the_matrix_dft():
    convs = [m for m in sesn("auto").modules() if isinstance(m, ScaleConvT2H)]
    # Layer 2 in inference (chunks of 64 images): every scale at once.
    assert convs[1].correlation_plan((64, 32, 14, 14), backward=False) == [((0, 1, 2, 3), 15, "fft")]
    for backward in (True, False):
        assert convs[2].correlation_plan((128, 63, 7, 7), backward=backward) == [
            ((0, 1), 7, "direct"),
            ((2, 3), 13, "fft"),
        ]


def test_the_sesn_network_with_the_matrix_dft_equals_the_direct_path():
    images, labels = torch.randn(6, 1, 28, 28), torch.tensor([0, 1, 2, 3, 4, 5])
    results = []
    for conv_impl in ("direct", "fft"):
        network = sesn(conv_impl)
        torch.manual_seed(1)  # the same dropout
        logits = network(images)
        F.cross_entropy(logits, labels).backward()
        grads = {name: p.grad for name, p in network.named_parameters()}
        network.eval()
        with torch.no_grad():
            results.append((logits.detach(), grads, network(images), network(images)))
    (logits, grads, inference, cached), (fft_logits, fft_grads, fft_inference, fft_cached) = results
    torch.testing.assert_close(fft_logits, logits, rtol=1e-5, atol=1e-5 * logits.abs().max().item())
    largest = max(g.abs().max().item() for g in grads.values())
    for name, grad in grads.items():
        torch.testing.assert_close(fft_grads[name], grad, rtol=1e-4, atol=1e-5 * largest)
    scale = inference.abs().max().item()
    torch.testing.assert_close(fft_inference, inference, rtol=1e-5, atol=1e-5 * scale)
    torch.testing.assert_close(fft_cached, fft_inference)  # the cached spectra


def test_the_cached_matrix_dft_spectrum_follows_the_weights_and_the_scales():
    scales = InternalScales(n_scales=3, parameterisation="isr", init_sigma_basis=1.0, init_isr=2.0)
    layer = ScaleConvT2H(3, 4, scales, kernel_extent=2.0, conv_impl="fft").double().eval()
    reference = ScaleConvT2H(3, 4, scales, kernel_extent=2.0, conv_impl="direct").double().eval()
    reference.load_state_dict(layer.state_dict())
    x = torch.randn(2, 3, 7, 7, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), reference(x))
        layer.weight.mul_(2)
        reference.weight.mul_(2)
        torch.testing.assert_close(layer(x), reference(x))
        next(scales.parameters()).add_(0.1)  # new scales: a new basis and new spectra
        torch.testing.assert_close(layer(x), reference(x))
    layer.train()
    reference.train()
    with torch.no_grad():
        torch.testing.assert_close(layer(x), reference(x))

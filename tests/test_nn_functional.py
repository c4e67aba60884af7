import functools

import pytest
import torch
import torch.nn.functional as F

import skscale.nn.functional as functional
import skscale.nn.planning as planning
from skscale.nn.functional import correlate_same, fft_correlate_same


def relative_error(actual, expected):
    actual, expected = actual.detach(), expected.detach()
    return float((actual - expected).norm() / expected.norm())


# (batch, in_channels, out_channels, groups, height, width, kernel, stride)
SHAPES = [
    (2, 1, 5, 1, 20, 23, 9, 1),  # one input channel: broadcast product
    (2, 4, 6, 1, 17, 17, 7, 2),  # channel sum: spectral matrix product, stride
    (3, 6, 9, 3, 16, 13, 5, 1),  # groups
    (2, 6, 6, 3, 15, 18, 11, 3),  # groups and stride 3
    (1, 2, 3, 1, 6, 5, 13, 1),  # kernel larger than the image
    (2, 3, 4, 1, 12, 12, 1, 1),  # 1 x 1 kernel
]


@pytest.mark.parametrize("shape", SHAPES)
def test_fft_correlation_equals_conv2d_forward_and_gradients_float64(shape):
    batch, c_in, c_out, groups, height, width, size, stride = shape
    x = torch.randn(batch, c_in, height, width, dtype=torch.float64, requires_grad=True)
    kernel = torch.randn(c_out, c_in // groups, size, size, dtype=torch.float64, requires_grad=True)
    expected = F.conv2d(x, kernel, stride=stride, padding=size // 2, groups=groups)
    actual = fft_correlate_same(x, kernel, stride=stride, groups=groups)
    assert actual.shape == expected.shape
    assert relative_error(actual, expected) < 1e-8

    upstream = torch.randn_like(expected)
    grads_expected = torch.autograd.grad(expected, (x, kernel), upstream)
    grads_actual = torch.autograd.grad(actual, (x, kernel), upstream)
    for got, want in zip(grads_actual, grads_expected):
        assert relative_error(got, want) < 1e-8


def test_fft_correlation_is_a_correlation_not_a_convolution():
    """An off-centre tap at (row -1, column +2) moves the output the other way."""
    x = torch.zeros(1, 1, 9, 9, dtype=torch.float64)
    x[0, 0, 4, 4] = 1.0
    kernel = torch.zeros(1, 1, 5, 5, dtype=torch.float64)
    kernel[0, 0, 1, 4] = 1.0  # tap at offset (-1, +2)
    out = fft_correlate_same(x, kernel)[0, 0]
    # out[i, j] = x[i - 1, j + 2]: the impulse at (4, 4) appears at (5, 2).
    assert out[5, 2] == pytest.approx(1.0, abs=1e-12)
    assert float(out.abs().sum()) == pytest.approx(1.0, abs=1e-10)


def test_fft_gradcheck_small():
    x = torch.randn(1, 2, 6, 5, dtype=torch.float64, requires_grad=True)
    kernel = torch.randn(2, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a, b: fft_correlate_same(a, b, groups=2, stride=2), (x, kernel), fast_mode=True
    )


@pytest.mark.parametrize("c_in, groups", [(1, 1), (4, 2)])
def test_fft_correlation_under_torch_func_transforms_equals_conv2d(c_in, groups):
    # Per-example gradients (vmap of grad) and forward-mode derivatives, as for F.conv2d.
    x = torch.randn(3, 2, c_in, 9, 8, dtype=torch.float64)
    kernel = torch.randn(6, c_in // groups, 5, 5, dtype=torch.float64)
    tangent = torch.randn_like(x[0])

    def loss(correlate):
        return lambda kernel, x: correlate(x, kernel).square().sum()

    correlations = (
        lambda x, k: fft_correlate_same(x, k, stride=2, groups=groups),
        lambda x, k: F.conv2d(x, k, stride=2, padding=2, groups=groups),
    )
    per_example = [
        torch.func.vmap(torch.func.grad(loss(f)), in_dims=(None, 0))(kernel, x) for f in correlations
    ]
    assert relative_error(*per_example) < 1e-8
    forward = [torch.func.jvp(functools.partial(f, k=kernel), (x[0],), (tangent,)) for f in correlations]
    for got, want in zip(*forward):
        assert relative_error(got, want) < 1e-8


def test_fft_correlation_second_derivatives_equal_conv2d():
    x = torch.randn(3, 4, 9, 8, dtype=torch.float64, requires_grad=True)
    kernel = torch.randn(6, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    direction = torch.randn_like(x)

    def hessian_vector(correlate):
        out = correlate(x, kernel, stride=2, padding=2, groups=2)
        (grad_x,) = torch.autograd.grad(out.square().sum(), x, create_graph=True)
        return torch.autograd.grad((grad_x * direction).sum(), (x, kernel))

    expected = hessian_vector(F.conv2d)
    actual = hessian_vector(lambda x, k, stride, padding, groups: fft_correlate_same(x, k, stride, groups))
    for got, want in zip(actual, expected):
        assert relative_error(got, want) < 1e-8


@pytest.mark.parametrize("c_in, groups", [(1, 1), (4, 2)])
def test_fft_correlation_of_an_empty_batch_is_empty(c_in, groups):
    x = torch.randn(0, c_in, 9, 9, requires_grad=True)
    kernel = torch.randn(6, c_in // groups, 5, 5, requires_grad=True)
    out = fft_correlate_same(x, kernel, stride=2, groups=groups)
    assert out.shape == F.conv2d(x, kernel, stride=2, padding=2, groups=groups).shape
    grad_x, grad_kernel = torch.autograd.grad(out.sum(), (x, kernel))
    assert grad_x.shape == x.shape and torch.equal(grad_kernel, torch.zeros_like(kernel))


def test_fft_float32_accuracy_and_half_precision_dtype():
    x = torch.randn(2, 3, 32, 32)
    kernel = torch.randn(4, 3, 15, 15)
    reference = F.conv2d(x.double(), kernel.double(), padding=7)
    assert relative_error(fft_correlate_same(x, kernel).double(), reference) < 1e-5
    half = fft_correlate_same(x.to(torch.bfloat16), kernel.to(torch.bfloat16))
    assert half.dtype == torch.bfloat16 and half.shape == reference.shape


def test_correlate_same_dispatch():
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    kernel = torch.randn(6, 1, 9, 9, dtype=torch.float64)
    direct = correlate_same(x, kernel, groups=3, impl="direct")
    for impl in ("fft", "auto"):
        assert relative_error(correlate_same(x, kernel, groups=3, impl=impl), direct) < 1e-10
    with pytest.raises(ValueError, match="impl must be one of 'auto', 'direct', 'fft', got 'winograd'"):
        correlate_same(x, kernel, groups=3, impl="winograd")


@pytest.mark.parametrize("impl", ["direct", "fft", "auto"])
def test_correlate_same_adds_the_bias_of_every_output_channel(impl):
    x = torch.randn(2, 4, 11, 11, dtype=torch.float64, requires_grad=True)
    kernel = torch.randn(6, 2, 7, 7, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(6, dtype=torch.float64, requires_grad=True)
    expected = F.conv2d(x, kernel, bias, stride=2, padding=3, groups=2)
    actual = correlate_same(x, kernel, stride=2, groups=2, impl=impl, bias=bias)
    assert relative_error(actual, expected) < 1e-10
    upstream = torch.randn_like(expected)
    for got, want in zip(
        torch.autograd.grad(actual, (x, kernel, bias), upstream),
        torch.autograd.grad(expected, (x, kernel, bias), upstream),
    ):
        assert relative_error(got, want) < 1e-10


@pytest.mark.parametrize(
    "x_shape, kernel_shape, kwargs, match",
    [
        ((1, 2, 8, 8), (3, 2, 4, 4), {}, "odd"),
        ((1, 2, 8, 8), (3, 2, 5, 3), {}, "square"),
        ((1, 4, 8, 8), (3, 2, 5, 5), dict(groups=2), "groups=2"),
        ((1, 2, 8, 8), (3, 2, 5, 5), dict(stride=0), "stride must be an integer >= 1, got 0"),
        ((2, 8, 8), (3, 2, 5, 5), {}, "4-D"),
    ],
)
def test_fft_correlation_rejects_bad_shapes(x_shape, kernel_shape, kwargs, match):
    with pytest.raises(ValueError, match=match):
        fft_correlate_same(torch.randn(*x_shape), torch.randn(*kernel_shape), **kwargs)


def test_the_planning_names_stay_importable_from_functional():
    for name in ("CONV_IMPLS", "next_fast_size", "select_conv_impl", "fft_split", "conv_cost_estimates"):
        assert name in functional.__all__
        assert getattr(functional, name) is getattr(planning, name)


@pytest.mark.parametrize("impl", ["direct", "fft", "auto"])
def test_correlate_same_drops_the_taps_that_cannot_reach_the_image(impl):
    from skscale.nn.functional import cut_to_reach

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 7, 7, generator=generator, dtype=torch.float64, requires_grad=True)
    kernel = torch.randn(4, 3, 23, 23, generator=generator, dtype=torch.float64, requires_grad=True)
    assert cut_to_reach(kernel, 7, 7).shape[-1] == 13 and cut_to_reach(kernel, 12, 7).shape[-1] == 23
    expected = F.conv2d(x, kernel, padding=11)
    out = correlate_same(x, kernel, impl=impl)
    torch.testing.assert_close(out, expected)
    weights = torch.randn(expected.shape, generator=generator, dtype=torch.float64)
    grads = torch.autograd.grad((out * weights).sum(), (x, kernel))
    expected_grads = torch.autograd.grad((expected * weights).sum(), (x, kernel))
    for grad, expected_grad in zip(grads, expected_grads):
        torch.testing.assert_close(grad, expected_grad)  # the cut taps get the zero gradient they had

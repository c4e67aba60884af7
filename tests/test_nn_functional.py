import functools
import math
import re

import pytest
import torch
import torch.nn.functional as F

import skscale.nn.functional as functional
from skscale.nn.functional import (
    conv_cost_estimates,
    correlate_same,
    fft_correlate_same,
    fft_split,
    next_fast_size,
    select_conv_impl,
)


def relative_error(actual, expected):
    actual, expected = actual.detach(), expected.detach()
    return float((actual - expected).norm() / expected.norm())


def brute_force_fast_size(n):
    while True:
        m = n
        for prime in (2, 3, 5):
            while m % prime == 0:
                m //= prime
        if m == 1:
            return n
        n += 1


def test_next_fast_size_is_the_smallest_5_smooth_size():
    assert [next_fast_size(n) for n in range(1, 1200)] == [brute_force_fast_size(n) for n in range(1, 1200)]
    assert next_fast_size(181) == 192 and next_fast_size(2**20 + 1) == brute_force_fast_size(2**20 + 1)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_next_fast_size_rejects_bad_sizes(bad):
    with pytest.raises(ValueError, match=rf"n must be an integer >= 1, got {re.escape(repr(bad))}\."):
        next_fast_size(bad)


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


def test_cpu_chunked_transforms_give_the_same_result(monkeypatch):
    x = torch.randn(5, 3, 14, 14, dtype=torch.float64, requires_grad=True)
    kernel = torch.randn(4, 3, 7, 7, dtype=torch.float64, requires_grad=True)
    whole = fft_correlate_same(x, kernel)
    grads_whole = torch.autograd.grad(whole.square().sum(), (x, kernel))
    # 20 x 20 grid: 400 points, at most 2 images per transform call.
    monkeypatch.setattr(functional, "_CPU_POINTS_PER_CALL", 800)
    chunked = fft_correlate_same(x, kernel)
    grads_chunked = torch.autograd.grad(chunked.square().sum(), (x, kernel))
    assert relative_error(chunked, whole) < 1e-12
    for got, want in zip(grads_chunked, grads_whole):
        assert relative_error(got, want) < 1e-12


def embedded_spectrum(x, size, stride):
    """rfft2 of ``x`` placed at every ``stride``-th pixel of a zero ``size`` grid."""
    grid = x.new_zeros((*x.shape[:-2], *size))
    grid[..., ::stride, ::stride][..., : x.shape[-2], : x.shape[-1]] = x
    return torch.fft.rfft2(grid)


def frequency_major(spectrum, groups):
    batch, channels = spectrum.shape[:2]
    return spectrum.reshape(batch, groups, channels // groups, -1).permute(1, 3, 0, 2)


# (batch, channels, rows, columns, fft size, stride, groups, transforms per call)
TRANSFORMS = [
    (5, 3, 6, 7, (10, 12), 1, None, 4),  # even N_W, pieces of one image
    (4, 4, 4, 4, (12, 15), 2, 2, 9),  # odd N_W, stride 2, frequency-major, two images a piece
    (3, 6, 5, 6, (9, 9), 1, 3, 1000),  # one piece
]


def grids(shape):
    """The grid of the images and of the strided results for a row of TRANSFORMS."""
    batch, channels, rows, columns, size, stride, groups, per_call = shape
    image = functional._Grid(size, groups, 1, (rows, columns), per_call)
    strided = functional._Grid(size, groups, stride, (rows, columns), per_call)
    return image, strided


@pytest.mark.parametrize("shape", TRANSFORMS)
def test_piecewise_transforms_equal_whole_transforms_in_both_layouts(shape):
    batch, channels, rows, columns, size, stride, groups, per_call = shape
    image_grid, strided_grid = grids(shape)
    x = torch.randn(batch, channels, rows, columns, dtype=torch.float64)
    expected = embedded_spectrum(x, size, stride)
    weights = torch.rand(size[1] // 2 + 1, dtype=torch.float64) + 0.5
    spectrum = functional._padded_spectrum(x, strided_grid, weights, 3.0)
    layout = (lambda s: s) if groups is None else (lambda s: frequency_major(s, groups))
    assert torch.allclose(spectrum, layout(3.0 * weights * expected))
    # The inverse reads the same layout and returns the pixels the forward placed.
    assert torch.allclose(
        functional._cropped_image(functional._padded_spectrum(x, strided_grid), strided_grid), x
    )
    image = functional._cropped_image(layout(expected), strided_grid, weights, 2.0)
    full = torch.fft.irfft2(weights * expected, s=size)
    assert torch.allclose(image, 2.0 * full[..., ::stride, ::stride][..., :rows, :columns])


@pytest.mark.parametrize("shape", TRANSFORMS)
def test_piecewise_transforms_are_each_others_adjoints_to_second_order(shape):
    batch, channels, rows, columns, size, stride, groups, per_call = shape
    _, grid = grids(shape)
    x = torch.randn(batch, channels, rows, columns, dtype=torch.float64, requires_grad=True)
    spectrum = functional._padded_spectrum(x.detach(), grid).clone().requires_grad_()
    for function, argument in (
        (lambda x: functional._padded_spectrum(x, grid), x),
        (lambda spectrum: functional._cropped_image(spectrum, grid), spectrum),
    ):
        assert torch.autograd.gradcheck(function, (argument,), fast_mode=True)
        assert torch.autograd.gradgradcheck(function, (argument,), fast_mode=True)
        assert torch.autograd.gradcheck(
            function, (argument,), check_forward_ad=True, check_backward_ad=False, fast_mode=True
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


def test_auto_choice_is_deterministic_and_follows_the_cost_model():
    shapes = [
        (size, image, c_in, c_out, batch, backward)
        for size in (3, 5, 9, 15, 25, 41)
        for image in (7, 28, 168)
        for c_in, c_out in ((1, 16), (32, 63))
        for batch in (1, 32)
        for backward in (True, False)
    ]
    for size, image, c_in, c_out, batch, backward in shapes:
        kwargs = dict(batch_size=batch, backward=backward)
        choices = {select_conv_impl(size, image, image, c_in, c_out, **kwargs) for _ in range(3)}
        assert len(choices) == 1
        direct, fft = conv_cost_estimates(size, image, image, c_in, c_out, **kwargs)
        expected = "fft" if size > 3 and fft < direct else "direct"
        assert choices == {expected}
    # The measured regimes: small kernels go direct, large ones through the FFT.
    assert select_conv_impl(3, 168, 168, 32, 63, batch_size=32) == "direct"
    assert select_conv_impl(5, 168, 168, 1, 16, batch_size=8) == "direct"
    assert select_conv_impl(41, 168, 168, 1, 16, batch_size=8) == "fft"
    assert select_conv_impl(15, 28, 28, 32, 63, batch_size=32) == "fft"
    # The direct cost grows with the kernel, the FFT cost hardly does.
    small, large = conv_cost_estimates(9, 168, 168, 8, 8), conv_cost_estimates(33, 168, 168, 8, 8)
    assert large[0] > 10 * small[0] and large[1] < 1.3 * small[1]


def test_training_cost_counts_the_padding_taps_of_kernels_wider_than_the_image():
    # oneDNN's backward runs every tap of the kernel, its forward only those on the image.
    def direct(size, image, backward):
        return conv_cost_estimates(size, image, image, 1, 1, backward=backward)[0]

    # 7-pixel maps: 13-pixel kernels cost 13 / 7 per axis more than 7-pixel ones in the
    # backward, (7 * 7) / (4 + 5 + 6 + 7 + 6 + 5 + 4) = 49 / 37 per axis in the forward.
    assert direct(13, 7, False) / direct(7, 7, False) == pytest.approx((49 / 37) ** 2)
    expected = ((7 * 7) ** 2 + 2 * (7 * 13) ** 2) / 3 / (37**2)
    assert direct(13, 7, True) / direct(7, 7, True) == pytest.approx(expected)
    # Kernels inside the image keep the forward's taps in training too.
    assert direct(13, 28, True) == direct(13, 28, False)
    # The measured case (calibration, 128 x 63 -> 95 on 7 pixels, l = 11): the FFT trains
    # faster (122.6 vs 155.6 ms), the direct path infers faster (43.0 vs 45.8 ms).
    assert select_conv_impl(11, 7, 7, 63, 95, batch_size=128, backward=True) == "fft"
    assert select_conv_impl(11, 7, 7, 63, 95, batch_size=128, backward=False) == "direct"


@pytest.mark.parametrize("backward", [True, False])
@pytest.mark.parametrize("grouped", [True, False])
def test_fft_split_is_the_cheapest_cut_of_the_modelled_costs(backward, grouped):
    sizes, n_scales, image, c_in, c_out, batch = [3, 9, 17, 33], [1, 2, 1, 1], 64, 8, 16, 4

    def costs(size, n):
        return conv_cost_estimates(
            size,
            image,
            image,
            c_in * (n if grouped else 1),
            c_out * n,
            groups=n if grouped else 1,
            batch_size=batch,
            backward=backward,
        )

    expected = []
    for cut in range(len(sizes) + 1):
        direct = sum(costs(size, n)[0] for size, n in zip(sizes[:cut], n_scales[:cut]))
        fft = costs(sizes[-1], sum(n_scales[cut:]))[1] if cut < len(sizes) else 0.0
        expected.append(math.inf if cut < len(sizes) and sizes[cut] <= 3 else direct + fft)
    best = min(range(len(expected)), key=lambda cut: (expected[cut], -cut))
    got = fft_split(
        sizes, n_scales, image, image, c_in, c_out, grouped=grouped, batch_size=batch, backward=backward
    )
    assert got == best and 0 < got < len(sizes)  # a mixed plan: 3 direct, 33 through the FFT
    # A single correlation is the one-call case of the same rule.
    for size in (3, 9, 33):
        n_direct = fft_split([size], [4], image, image, c_in, c_out, grouped=True, batch_size=batch)
        assert select_conv_impl(size, image, image, 4 * c_in, 4 * c_out, groups=4, batch_size=batch) == (
            "direct" if n_direct else "fft"
        )

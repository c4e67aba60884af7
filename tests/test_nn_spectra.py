import pytest
import torch

import skscale.nn.spectra as spectra
from skscale.nn.functional import fft_correlate_same
from skscale.nn.spectra import SpectrumGrid, cropped_image, padded_spectrum


def relative_error(actual, expected):
    actual, expected = actual.detach(), expected.detach()
    return float((actual - expected).norm() / expected.norm())


def test_cpu_chunked_transforms_give_the_same_result(monkeypatch):
    x = torch.randn(5, 3, 14, 14, dtype=torch.float64, requires_grad=True)
    kernel = torch.randn(4, 3, 7, 7, dtype=torch.float64, requires_grad=True)
    whole = fft_correlate_same(x, kernel)
    grads_whole = torch.autograd.grad(whole.square().sum(), (x, kernel))
    # 20 x 20 grid: 400 points, at most 2 images per transform call.
    monkeypatch.setattr(spectra, "_CPU_POINTS_PER_CALL", 800)
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
    image = SpectrumGrid(size, groups, 1, (rows, columns), per_call)
    strided = SpectrumGrid(size, groups, stride, (rows, columns), per_call)
    return image, strided


@pytest.mark.parametrize("shape", TRANSFORMS)
def test_piecewise_transforms_equal_whole_transforms_in_both_layouts(shape):
    batch, channels, rows, columns, size, stride, groups, per_call = shape
    image_grid, strided_grid = grids(shape)
    x = torch.randn(batch, channels, rows, columns, dtype=torch.float64)
    expected = embedded_spectrum(x, size, stride)
    weights = torch.rand(size[1] // 2 + 1, dtype=torch.float64) + 0.5
    spectrum = padded_spectrum(x, strided_grid, weights, 3.0)
    layout = (lambda s: s) if groups is None else (lambda s: frequency_major(s, groups))
    assert torch.allclose(spectrum, layout(3.0 * weights * expected))
    # The inverse reads the same layout and returns the pixels the forward placed.
    assert torch.allclose(cropped_image(padded_spectrum(x, strided_grid), strided_grid), x)
    image = cropped_image(layout(expected), strided_grid, weights, 2.0)
    full = torch.fft.irfft2(weights * expected, s=size)
    assert torch.allclose(image, 2.0 * full[..., ::stride, ::stride][..., :rows, :columns])


@pytest.mark.parametrize("shape", TRANSFORMS)
def test_piecewise_transforms_are_each_others_adjoints_to_second_order(shape):
    batch, channels, rows, columns, size, stride, groups, per_call = shape
    _, grid = grids(shape)
    x = torch.randn(batch, channels, rows, columns, dtype=torch.float64, requires_grad=True)
    spectrum = padded_spectrum(x.detach(), grid).clone().requires_grad_()
    for function, argument in (
        (lambda x: padded_spectrum(x, grid), x),
        (lambda spectrum: cropped_image(spectrum, grid), spectrum),
    ):
        assert torch.autograd.gradcheck(function, (argument,), fast_mode=True)
        assert torch.autograd.gradgradcheck(function, (argument,), fast_mode=True)
        assert torch.autograd.gradcheck(
            function, (argument,), check_forward_ad=True, check_backward_ad=False, fast_mode=True
        )

import math

import numpy as np
import pytest
import torch
from numpy.polynomial import hermite_e

from skscale.basis import hermite_basis, kernel_size, n_basis_functions, support_sizes, window_basis


@pytest.mark.parametrize(
    "max_scale, extent, expected",
    [(2.0, 2.0, 9), (6.0, 2.0, 25), (1.5, 2.0, 7), (2.1, 1.0, 7), (0.2, 2.0, 3)],
)
def test_kernel_size_follows_eq6(max_scale, extent, expected):
    assert kernel_size(max_scale, extent) == expected


def test_kernel_size_is_robust_to_float_noise():
    assert kernel_size(2.0 * (1 + 1e-12), 2.0) == 9


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_kernel_size_rejects_bad_scale(bad):
    with pytest.raises(ValueError, match="max_scale"):
        kernel_size(bad, 2.0)
    with pytest.raises(ValueError, match="kernel_extent"):
        kernel_size(1.0, bad)


@pytest.mark.parametrize(
    "max_order, index_set, count", [(0, "total", 1), (3, "total", 10), (6, "tensor", 49)]
)
def test_shapes_and_counts(max_order, index_set, count):
    basis = hermite_basis([1.0, 1.5, 2.0], 11, max_order, index_set=index_set)
    assert basis.shape == (count, 3, 11, 11)
    assert n_basis_functions(max_order, index_set) == count
    assert basis.dtype == torch.float32


def test_matches_closed_form_definition():
    """Each function is c/sigma^2 He_n(y/sigma) He_m(x/sigma) exp(-r^2/(2 sigma^2))."""
    sigma, size = 1.7, 9
    basis = hermite_basis(torch.tensor([sigma], dtype=torch.float64), size, 3)
    grid = np.arange(size) - size // 2
    y, x = np.meshgrid(grid, grid, indexing="ij")
    pairs = [(n, t - n) for t in range(4) for n in range(t + 1)]
    for f, (n, m) in enumerate(pairs):
        he_n = hermite_e.hermeval(y / sigma, [0] * n + [1])
        he_m = hermite_e.hermeval(x / sigma, [0] * m + [1])
        expected = he_n * he_m * np.exp(-(x**2 + y**2) / (2 * sigma**2)) / sigma**2
        expected /= 2 * math.pi * math.sqrt(math.factorial(n) * math.factorial(m))
        np.testing.assert_allclose(basis[f, 0].numpy(), expected, rtol=1e-12, atol=1e-14)


def test_dtype_and_device_follow_scales():
    basis = hermite_basis(torch.tensor([1.0, 2.0], dtype=torch.float64), 7)
    assert basis.dtype == torch.float64


def test_basis_is_well_conditioned_at_a_scale():
    """The functions at one scale are linearly independent: the Gram matrix is well conditioned."""
    basis = hermite_basis(torch.tensor([2.0], dtype=torch.float64), kernel_size(2.0, 3.0), 3)
    flat = basis[:, 0].reshape(basis.shape[0], -1)
    flat = flat / flat.norm(dim=1, keepdim=True)
    gram = flat @ flat.T
    assert torch.linalg.cond(gram) < 50
    # Functions of different parity (n + m odd vs even along an axis) are exactly orthogonal.
    assert abs(float(gram[0, 1])) < 1e-12 and abs(float(gram[0, 2])) < 1e-12


def test_scale_covariance_dilation_by_two():
    """The basis at 2 sigma, sampled on the grid, equals the basis at sigma dilated by 2.

    Dilation of a sampled function: psi_{2 sigma}(x) = psi_sigma(x / 2) / 4. We evaluate
    psi_sigma on the half-integer grid x / 2 by bicubic upsampling of a finely sampled copy.
    """
    sigma = 1.5
    coarse = hermite_basis(torch.tensor([sigma], dtype=torch.float64), 13, 3)[:, 0]
    fine = hermite_basis(torch.tensor([2 * sigma], dtype=torch.float64), 25, 3)[:, 0]
    # Sample coarse on the grid x / 2 (every other fine pixel is a coarse pixel).
    dilated = coarse / 4.0
    subsampled = fine[:, ::2, ::2]
    error = torch.linalg.vector_norm(subsampled - dilated) / torch.linalg.vector_norm(dilated)
    assert error < 1e-12
    # And the continuous L1 mass of every function is kept across scales (discretisation aside).
    # (sampling a sign-changing function at sigma = 3 costs ~1.5% of its L1 mass).
    mass_small = hermite_basis(torch.tensor([3.0], dtype=torch.float64), 41, 2).abs().sum(dim=(-1, -2))
    mass_large = hermite_basis(torch.tensor([6.0], dtype=torch.float64), 81, 2).abs().sum(dim=(-1, -2))
    np.testing.assert_allclose(mass_small.numpy(), mass_large.numpy(), rtol=0.02)


def test_own_support_is_zero_padded_and_identical_inside():
    scales = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    sizes = support_sizes(scales, 2.0)
    assert sizes == [5, 9, 13]
    padded = hermite_basis(scales, 13, 3, kernel_extent=2.0)
    full = hermite_basis(scales, 13, 3)
    assert torch.equal(padded[:, 2], full[:, 2])
    inner = slice(4, 9)
    assert torch.equal(padded[:, 0, inner, inner], full[:, 0, inner, inner])
    assert torch.equal(padded[:, 0, inner, inner], hermite_basis(scales[:1], 5, 3)[:, 0])
    outside = padded[:, 0].clone()
    outside[:, inner, inner] = 0
    assert not outside.any() and full[:, 0].abs().sum() > padded[:, 0].abs().sum()
    with pytest.raises(ValueError, match="size=9"):
        hermite_basis(scales, 9, 3, kernel_extent=2.0)


def test_window_basis_is_the_one_windowing_of_the_layers():
    scales = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    full = hermite_basis(scales, 13, 2)
    windowed = window_basis(full, [5, 9, 13])
    for index, size in enumerate([5, 9, 13]):
        window = slice((13 - size) // 2, (13 + size) // 2)
        assert torch.equal(windowed[:, index, window, window], full[:, index, window, window])
        assert torch.count_nonzero(windowed[:, index]) == torch.count_nonzero(full[:, index, window, window])
    assert window_basis(full, [13, 13, 13]) is full
    for bad in ([5, 9], [5, 9, 15], [4, 9, 13]):
        with pytest.raises(ValueError, match=r"sizes must hold one odd support of at most 13 per scale \(3"):
            window_basis(full, bad)


def test_gradcheck_with_respect_to_scales():
    scales = torch.tensor([1.3, 2.2], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda s: hermite_basis(s, 9, 3), (scales,))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(scales=[1.0], size=8), "size must be an odd integer >= 1, got 8"),
        (dict(scales=[1.0], size=9, max_order=-1), "max_order must be an integer >= 0, got -1"),
        (
            dict(scales=[1.0], size=9, index_set="full"),
            "index_set must be one of 'total', 'tensor', got 'full'",
        ),
        (
            dict(scales=[1.0], size=9, kernel_extent=0),
            "kernel_extent must be a finite number > 0 or None, got 0",
        ),
        (dict(scales=[], size=9), "scales"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        hermite_basis(**kwargs)

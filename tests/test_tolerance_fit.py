"""The fit of ToleranceModel (skscale._tolerance_fit): densities, KL objective, checks."""

import math

import numpy as np
import pytest
from scipy.integrate import trapezoid
from scipy.optimize import approx_fprime

from skscale._tolerance_fit import (
    POINTS_PER_TAU,
    check_resolution,
    kde_bandwidth,
    kl_and_gradient,
    log_data_density,
)


def test_analytic_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    grids = np.stack([np.linspace(-3.0, 5.0, 400), np.linspace(-2.0, 6.0, 400)])
    log_p = -0.5 * (grids - rng.uniform(0, 2, size=(2, 1))) ** 2
    log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))

    def split(params):
        return params[:2], params[2:4], params[4]

    def kl(params):
        return kl_and_gradient(*split(params), grids, log_p, 3)[0].sum()

    params = np.array([0.1, 0.5, 1.2, 2.0, 0.4])
    _, grad_reference, grad_isr, grad_tau = kl_and_gradient(*split(params), grids, log_p, 3)
    analytic = np.concatenate([grad_reference, grad_isr, [grad_tau.sum()]])
    np.testing.assert_allclose(analytic, approx_fprime(params, kl, 1e-7), atol=1e-5)


@pytest.mark.parametrize("samples", [None, np.linspace(0.0, 2.0, 50)])
def test_log_data_density_integrates_to_one(samples):
    points = np.linspace(-6.0, 8.0, 20001)
    bandwidth = None if samples is None else kde_bandwidth(samples, "scott")
    density = np.exp(log_data_density(points, 0.0, 2.0, 0.4, samples, bandwidth))
    assert np.all(density > 0)
    assert trapezoid(density, points) == pytest.approx(1.0, abs=1e-6)


def test_kde_bandwidth_rules_and_numbers():
    samples = np.linspace(0.0, 1.0, 32)
    std = float(np.std(samples, ddof=1))
    assert kde_bandwidth(samples, 0.25) == 0.25
    assert kde_bandwidth(samples, "scott") == pytest.approx(std * 32 ** (-1 / 5))
    assert kde_bandwidth(samples, "silverman") == pytest.approx(std * (0.75 * 32) ** (-1 / 5))


def test_check_resolution_names_the_grid_size_needed():
    log2_range = np.array([[0.0, 2.0]])
    params = {"tau": 0.01, "grid_margin": 1.0, "grid_size": 100}
    needed = math.ceil(POINTS_PER_TAU * 4.0 / 0.01) + 1
    with pytest.raises(ValueError, match=f"use grid_size >= {needed}"):
        check_resolution(0.2, log2_range, params)
    check_resolution(0.2, log2_range, dict(params, tau=None))

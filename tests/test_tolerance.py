import inspect
import math
import pickle

import numpy as np
import pytest
from scipy.integrate import trapezoid
from scipy.optimize import approx_fprime
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks
from sklearn.utils.validation import validate_data

from skscale.tolerance import ToleranceModel, _kl_and_gradient

PAPER_TAU = 0.459
# Upper ends of the paper's log-uniform distributions, in octaves: [1, 2.83],
# [1, 4.76] and [1, 8] scale factors.
PAPER_LOG2_UPPER = (1.5, 2.25, 3.0)


def loguniform_scales(log2_low, log2_high, n_samples=200):
    """Evenly spaced log2 scales: a log-uniform sample with exact end points."""
    return 2.0 ** np.linspace(log2_low, log2_high, n_samples)


def mixture_scales(reference_scale, isr, tau, n_scales, n_samples, seed):
    """Scales drawn from the tolerance mixture itself."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(n_scales, size=n_samples)
    centres = math.log2(reference_scale) + labels / (n_scales - 1) * math.log2(isr)
    return 2.0 ** (centres + tau * rng.standard_normal(n_samples))


@pytest.fixture(scope="module")
def paper_fit():
    X = np.concatenate([loguniform_scales(0.0, upper) for upper in PAPER_LOG2_UPPER])
    y = np.repeat(["narrow", "medium", "wide"], 200)
    return ToleranceModel(n_scales=3, tau=None).fit(X, y), X, y


# ------------------------------------------------------------------- fitting


@pytest.mark.parametrize(
    "reference_scale, isr, tau", [(1.5, 4.0, 0.3), (0.5, 2.5, 0.25)]
)
def test_recovers_parameters_of_its_own_mixture(reference_scale, isr, tau):
    X = mixture_scales(reference_scale, isr, tau, 3, n_samples=4000, seed=0)
    bandwidth = 0.05
    model = ToleranceModel(tau=None, density="kde", bandwidth=bandwidth).fit(X)
    assert model.reference_scale_ == pytest.approx(reference_scale, rel=0.03)
    assert model.isr_ == pytest.approx(isr, rel=0.03)
    # The kernel density widens each mode by the bandwidth.
    assert model.tau_ == pytest.approx(math.hypot(tau, bandwidth), abs=0.015)
    assert model.converged_
    assert 0.0 <= model.kl_ < 0.02


def test_joint_fit_reproduces_the_paper(paper_fit):
    model, _, _ = paper_fit
    # np.unique sorts the labels: medium, narrow, wide.
    assert model.groups_.tolist() == ["medium", "narrow", "wide"]
    isr = dict(zip(model.groups_, model.isr_))
    assert 1.0 < isr["narrow"] < isr["medium"] < isr["wide"] < 8.0
    # Paper: tau = 0.459 from the same joint fit.
    assert model.tau_ == pytest.approx(PAPER_TAU, abs=0.05)
    # Each group's internal scales are centred (in octaves) on its range.
    centre = np.log2(model.internal_scales_[:, [0, -1]]).mean(axis=1)
    expected = np.log2(model.data_range_).mean(axis=1)
    np.testing.assert_allclose(centre, expected, atol=0.02)


def test_joint_fit_is_a_minimum_of_the_summed_divergence(paper_fit):
    model, X, y = paper_fit
    for tau in (model.tau_ - 0.05, model.tau_ + 0.05):
        fixed = ToleranceModel(tau=tau).fit(X, y)
        assert fixed.kl_.sum() > model.kl_.sum()
    for factor in (0.9, 1.1):
        for index, group in enumerate(model.groups_):
            members = y == group
            perturbed = ToleranceModel(
                tau=model.tau_,
                isr=model.isr_[index] * factor,
                reference_scale=model.reference_scale_[index],
            ).fit(X[members])
            assert perturbed.n_iter_ == 0
            assert perturbed.kl_ > model.kl_[index]


def test_single_distribution_attributes_are_scalars():
    X = loguniform_scales(0.0, 2.0)
    model = ToleranceModel().fit(X)
    assert model.tau_ == PAPER_TAU
    assert model.groups_ is None
    for name in ("reference_scale_", "isr_", "kl_"):
        assert isinstance(getattr(model, name), float), name
    assert model.internal_scales_.shape == (3,)
    assert model.n_features_in_ == 1
    r, isr = model.reference_scale_, model.isr_
    np.testing.assert_allclose(model.internal_scales_, [r, r * isr**0.5, r * isr])
    np.testing.assert_allclose(model.data_range_, [1.0, 4.0])
    # A (n, 1) column gives the same fit as a 1-D array.
    column = ToleranceModel().fit(X.reshape(-1, 1))
    assert column.isr_ == pytest.approx(model.isr_)


def test_group_attributes_are_arrays_even_for_one_label():
    X = loguniform_scales(0.0, 2.0)
    model = ToleranceModel().fit(X, np.zeros(X.size))
    assert model.groups_.tolist() == [0.0]
    assert model.isr_.shape == model.reference_scale_.shape == model.kl_.shape == (1,)
    assert model.internal_scales_.shape == (1, 3)
    assert model.data_range_.shape == (1, 2)
    assert model.isr_[0] == pytest.approx(ToleranceModel().fit(X).isr_)


def test_wider_distribution_gets_a_wider_isr():
    narrow = ToleranceModel().fit(loguniform_scales(0.0, 1.5))
    wide = ToleranceModel().fit(loguniform_scales(0.0, 3.0))
    assert 1.0 < narrow.isr_ < wide.isr_


def test_fit_is_equivariant_to_rescaling_the_data():
    X = loguniform_scales(0.0, 2.5)
    model = ToleranceModel(tau=None).fit(X)
    scaled = ToleranceModel(tau=None).fit(3.0 * X)
    expected = 3.0 * model.reference_scale_
    assert scaled.reference_scale_ == pytest.approx(expected, rel=1e-4)
    assert scaled.isr_ == pytest.approx(model.isr_, rel=1e-4)
    assert scaled.tau_ == pytest.approx(model.tau_, rel=1e-4)
    assert scaled.kl_ == pytest.approx(model.kl_, rel=1e-3, abs=1e-7)


def test_fixed_parameters_are_kept():
    X = loguniform_scales(math.log2(0.6), 1.0)  # the paper's Fig. 2 range
    model = ToleranceModel(isr=2.0).fit(X)
    assert model.isr_ == 2.0
    # With the ISR fixed, the fit centres the scales on the range in octaves.
    centre = math.log2(model.reference_scale_) + 0.5
    assert centre == pytest.approx(0.5 * (math.log2(0.6) + 1.0), abs=0.01)

    model = ToleranceModel(reference_scale=1.0, isr=3.0, tau=0.5).fit(X)
    assert (model.reference_scale_, model.isr_, model.tau_) == (1.0, 3.0, 0.5)
    assert model.n_iter_ == 0
    assert model.kl_ > 0.0


def test_single_internal_scale_sits_at_the_centre():
    model = ToleranceModel(n_scales=1, tau=None).fit(loguniform_scales(0.0, 2.0))
    assert model.isr_ == 1.0
    assert model.internal_scales_ == pytest.approx([2.0], rel=0.01)
    assert model.predict([0.5, 8.0]).tolist() == [0, 0]


def test_convergence_warning_when_max_iter_is_too_small():
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        ToleranceModel(tau=None, max_iter=1).fit(loguniform_scales(0.0, 2.0))


def test_analytic_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    grids = np.stack([np.linspace(-3.0, 5.0, 400), np.linspace(-2.0, 6.0, 400)])
    log_p = -0.5 * (grids - rng.uniform(0, 2, size=(2, 1))) ** 2
    log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))

    def split(params):
        return params[:2], params[2:4], params[4]

    def kl(params):
        return _kl_and_gradient(*split(params), grids, log_p, 3)[0].sum()

    params = np.array([0.1, 0.5, 1.2, 2.0, 0.4])
    _, grad_reference, grad_isr, grad_tau = _kl_and_gradient(
        *split(params), grids, log_p, 3
    )
    analytic = np.concatenate([grad_reference, grad_isr, [grad_tau.sum()]])
    np.testing.assert_allclose(analytic, approx_fprime(params, kl, 1e-7), atol=1e-5)


# ---------------------------------------------------------------- densities


def test_data_density_loguniform_with_half_normal_tails():
    model = ToleranceModel(tail_std=0.4).fit(loguniform_scales(0.0, 2.0))
    inside = 1.0 / (2.0 + 2.0 * 0.4 * math.sqrt(math.pi / 2.0))
    density = model.data_density([0.0, 1.0, 2.0, 2.4, -0.8])
    np.testing.assert_allclose(
        density, inside * np.array([1, 1, 1, math.exp(-0.5), math.exp(-2.0)])
    )
    grid = np.linspace(-6.0, 8.0, 20001)
    assert trapezoid(model.data_density(grid), grid) == pytest.approx(1.0, abs=1e-6)


def test_kde_data_density_is_continuous_and_normalised():
    X = mixture_scales(1.0, 4.0, 0.3, 3, n_samples=300, seed=1)
    model = ToleranceModel(density="kde", bandwidth=0.1).fit(X)
    low, high = np.log2(model.data_range_)
    eps = 1e-9
    below, above = model.data_density([low - eps, low + eps])
    assert below == pytest.approx(above, rel=1e-6)
    grid = np.linspace(low - 5.0, high + 5.0, 20001)
    assert trapezoid(model.data_density(grid), grid) == pytest.approx(1.0, abs=1e-6)


def test_tolerance_pdf_components_and_score_samples_agree():
    model = ToleranceModel(tau=0.3).fit(loguniform_scales(0.0, 3.0))
    grid = np.linspace(-4.0, 7.0, 20001)
    mixture = model.tolerance_pdf(grid)
    components = model.tolerance_pdf(grid, components=True)
    assert components.shape == (grid.size, 3)
    np.testing.assert_allclose(components.sum(axis=1), mixture)
    assert trapezoid(mixture, grid) == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(trapezoid(components, grid, axis=0), 1.0 / 3.0)

    # score_samples is the density of the scale factor itself.
    scales = 2.0**grid
    log_density = model.score_samples(scales)
    np.testing.assert_allclose(
        log_density, np.log(mixture) - np.log(scales * math.log(2.0))
    )
    assert trapezoid(np.exp(log_density), scales) == pytest.approx(1.0, abs=1e-4)
    assert model.score(scales[:50]) == pytest.approx(log_density[:50].mean())


def test_predict_and_predict_proba_follow_the_internal_scales():
    model = ToleranceModel().fit(loguniform_scales(0.0, 3.0))
    proba = model.predict_proba(model.internal_scales_)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert model.predict(model.internal_scales_).tolist() == [0, 1, 2]
    assert model.predict([0.01, 100.0]).tolist() == [0, 2]


def test_sample_follows_the_mixture_and_is_reproducible():
    model = ToleranceModel(tau=0.3, random_state=0).fit(loguniform_scales(0.0, 3.0))
    X, labels = model.sample(6000)
    assert X.shape == labels.shape == (6000,)
    assert np.all(X > 0)
    assert set(labels.tolist()) == {0, 1, 2}
    log2_centres = np.log2(model.internal_scales_)
    for index in range(3):
        log2_drawn = np.log2(X[labels == index])
        assert log2_drawn.mean() == pytest.approx(log2_centres[index], abs=0.03)
        assert log2_drawn.std() == pytest.approx(0.3, rel=0.06)
    again, _ = model.sample(6000)
    np.testing.assert_array_equal(X, again)


def test_group_keyword_selects_a_distribution(paper_fit):
    model, _, _ = paper_fit
    wide = list(model.groups_).index("wide")
    assert model.predict([8.0], group="wide").tolist() == [2]
    np.testing.assert_allclose(
        model.data_density([0.0], group="wide"), model.data_density([0.0], group="wide")
    )
    assert model.data_density([2.5], group="narrow")[0] < model.data_density(
        [2.5], group="wide"
    )[0]
    drawn, _ = model.sample(2000, group="wide")
    assert np.median(np.log2(drawn)) == pytest.approx(
        np.log2(model.internal_scales_[wide, 1]), abs=0.15
    )
    with pytest.raises(ValueError, match="group must be given"):
        model.predict([1.0])
    with pytest.raises(ValueError, match="group must be one of"):
        model.score_samples([1.0], group="unknown")
    single = ToleranceModel().fit(loguniform_scales(0.0, 1.0))
    with pytest.raises(ValueError, match="group must be None"):
        single.predict([1.0], group="wide")


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    "X, y, match",
    [
        ([1.0, np.nan, 2.0], None, "NaN"),
        ([1.0, np.inf, 2.0], None, "infinity"),
        ([1.0, -2.0, 3.0], None, r"Negative values .* min\(X\)=-2\.0"),
        ([0.0, 1.0, 2.0], None, "Zero values"),
        ([2.0, 2.0, 2.0], None, "at least two distinct scales"),
        ([1.0, 2.0, 3.0, 3.0], [0, 0, 1, 1], r"\(group y=1\)"),
        (np.ones((4, 2)), None, r"shape \(4, 2\)"),
        ([1.0, 2.0, 3.0], [0, 1], "inconsistent numbers of samples"),
    ],
)
def test_bad_input_raises_value_error(X, y, match):
    with pytest.raises(ValueError, match=match):
        ToleranceModel().fit(X, y)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"n_scales": 0}, "'n_scales' parameter"),
        ({"tau": 0.0}, "'tau' parameter"),
        ({"isr": 0.5}, "'isr' parameter"),
        ({"reference_scale": -1.0}, "'reference_scale' parameter"),
        ({"density": "gaussian"}, "'density' parameter"),
        ({"bandwidth": "wide"}, "'bandwidth' parameter"),
        ({"tail_std": 0.0}, "'tail_std' parameter"),
    ],
)
def test_bad_parameters_raise_value_error(params, match):
    with pytest.raises(ValueError, match=match):
        ToleranceModel(**params).fit([1.0, 2.0])


def test_methods_validate_their_input():
    model = ToleranceModel().fit(loguniform_scales(0.0, 1.0))
    with pytest.raises(ValueError, match="Negative values"):
        model.predict([-1.0])
    with pytest.raises(ValueError, match="features"):
        model.score_samples(np.ones((3, 2)))
    with pytest.raises(ValueError, match="n_samples"):
        model.sample(0)
    with pytest.raises(NotFittedError):
        ToleranceModel().predict([1.0])


# ---------------------------------------------------------- sklearn contract


def test_clone_params_and_pickle():
    model = ToleranceModel(n_scales=4, tau=None, density="kde", random_state=3)
    assert clone(model).get_params() == model.get_params()
    model.set_params(n_scales=5, bandwidth=0.1)
    assert model.get_params()["n_scales"] == 5
    assert not hasattr(clone(model), "isr_")

    X = mixture_scales(1.0, 4.0, 0.3, 3, n_samples=400, seed=2)
    model.fit(X)
    restored = pickle.loads(pickle.dumps(model))
    assert restored.isr_ == model.isr_
    np.testing.assert_array_equal(restored.score_samples(X), model.score_samples(X))
    np.testing.assert_array_equal(restored.sample(5)[0], model.sample(5)[0])


class ToleranceModelOnAnyData(ToleranceModel):
    """Adapter that lets the generic scikit-learn checks reach the fit logic.

    Those checks feed arbitrary real 2-D data and class labels; this subclass
    validates X with the same helper, turns its first column into positive scale
    factors, ``2 ** x``, and ignores the labels (they are not data
    distributions). Fitting, scoring, parameters and pickling are the real code.
    """

    def fit(self, X, y=None):
        return super().fit(X)

    def _validate_scales(self, X, *, reset):
        X = validate_data(self, X, reset=reset, dtype=np.float64)
        return np.exp2(X[:, 0])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = False
        return tags


_MULTI_COLUMN = "generic checks feed X with several columns; X is one column of scales"
_EXPECTED_FAILED_CHECKS = {
    "check_fit_score_takes_y": _MULTI_COLUMN,
    "check_estimators_overwrite_params": _MULTI_COLUMN,
    "check_dont_overwrite_parameters": _MULTI_COLUMN,
    "check_estimators_fit_returns_self": _MULTI_COLUMN,
    "check_readonly_memmap_input": _MULTI_COLUMN,
    "check_n_features_in_after_fitting": _MULTI_COLUMN,
    "check_positive_only_tag_during_fit": _MULTI_COLUMN,
    "check_estimators_dtypes": _MULTI_COLUMN,
    "check_dtype_object": _MULTI_COLUMN,
    "check_pipeline_consistency": _MULTI_COLUMN,
    "check_estimators_nan_inf": _MULTI_COLUMN,
    "check_estimators_pickle": _MULTI_COLUMN,
    "check_f_contiguous_array_estimator": _MULTI_COLUMN,
    "check_methods_sample_order_invariance": _MULTI_COLUMN,
    "check_methods_subset_invariance": _MULTI_COLUMN,
    "check_fit2d_1sample": _MULTI_COLUMN,
    "check_dict_unchanged": _MULTI_COLUMN,
    "check_fit_idempotent": _MULTI_COLUMN,
    "check_fit_check_is_fitted": _MULTI_COLUMN,
    "check_n_features_in": _MULTI_COLUMN,
    "check_fit2d_predict1d": _MULTI_COLUMN,
    "check_fit2d_1feature": (
        "the positive_only tag makes the check shift X to a minimum of 0, "
        "and a scale factor of 0 is rejected"
    ),
    "check_fit1d": "a 1-D X is accepted on purpose: it is a vector of scales",
}

_STRICT = (
    {"xfail_strict": True}
    if "xfail_strict" in inspect.signature(parametrize_with_checks).parameters
    else {}
)


@parametrize_with_checks(
    [ToleranceModel()],
    expected_failed_checks=lambda estimator: _EXPECTED_FAILED_CHECKS,
    **_STRICT,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@parametrize_with_checks(
    [ToleranceModelOnAnyData()],
    **_STRICT,
)
def test_sklearn_checks_on_the_fit_logic(estimator, check):
    check(estimator)

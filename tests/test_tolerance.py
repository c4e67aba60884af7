import math
import pickle
import re

import numpy as np
import pytest
from scipy.integrate import trapezoid
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks
from sklearn.utils.validation import validate_data

from skscale.tolerance import ToleranceModel

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


@pytest.mark.parametrize("reference_scale, isr, tau", [(1.5, 4.0, 0.3), (0.5, 2.5, 0.25)])
def test_recovers_parameters_of_its_own_mixture(reference_scale, isr, tau):
    X = mixture_scales(reference_scale, isr, tau, 3, n_samples=4000, seed=0)
    bandwidth = 0.05
    model = ToleranceModel(tau=None, density="kde", bandwidth=bandwidth).fit(X)
    assert model.reference_scale_[0] == pytest.approx(reference_scale, rel=0.03)
    assert model.isr_[0] == pytest.approx(isr, rel=0.03)
    # The kernel density widens each mode by the bandwidth.
    assert model.tau_ == pytest.approx(math.hypot(tau, bandwidth), abs=0.015)
    assert model.converged_
    assert 0.0 <= model.kl_[0] < 0.02


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
            assert perturbed.kl_[0] > model.kl_[index]


GROUP_ATTRIBUTES = ("reference_scale_", "isr_", "internal_scales_", "data_range_", "kl_")


def test_without_y_the_attributes_have_a_group_axis_of_one():
    X = loguniform_scales(0.0, 2.0)
    model = ToleranceModel().fit(X)
    assert model.tau_ == PAPER_TAU and isinstance(model.tau_, float)
    assert model.groups_ is None
    assert model.reference_scale_.shape == model.isr_.shape == model.kl_.shape == (1,)
    assert model.internal_scales_.shape == (1, 3)
    assert model.n_features_in_ == 1
    r, isr = model.reference_scale_[0], model.isr_[0]
    np.testing.assert_allclose(model.internal_scales_, [[r, r * isr**0.5, r * isr]])
    np.testing.assert_allclose(model.data_range_, [[1.0, 4.0]])
    # A (n, 1) column gives the same fit as a 1-D array.
    column = ToleranceModel().fit(X.reshape(-1, 1))
    np.testing.assert_allclose(column.isr_, model.isr_)


@pytest.mark.parametrize("n_groups", [1, 3])
def test_shapes_do_not_depend_on_whether_y_was_given(n_groups):
    X = np.concatenate([loguniform_scales(0.0, 1.0 + g) for g in range(n_groups)])
    y = np.repeat(np.arange(n_groups), X.size // n_groups)
    model = ToleranceModel(n_scales=4).fit(X, y)
    assert model.groups_.tolist() == list(range(n_groups))
    assert model.reference_scale_.shape == model.isr_.shape == model.kl_.shape == (n_groups,)
    assert model.internal_scales_.shape == (n_groups, 4)
    assert model.data_range_.shape == (n_groups, 2)
    without_y = ToleranceModel(n_scales=4).fit(X[y == 0])
    for name in GROUP_ATTRIBUTES:
        assert getattr(without_y, name).shape == getattr(model, name)[:1].shape, name
        # A joint fit stops when the summed divergence converges: equal to 1e-5.
        expected = getattr(model, name)[:1]
        np.testing.assert_allclose(getattr(without_y, name), expected, rtol=1e-5, err_msg=name)


def test_wider_distribution_gets_a_wider_isr():
    narrow = ToleranceModel().fit(loguniform_scales(0.0, 1.5))
    wide = ToleranceModel().fit(loguniform_scales(0.0, 3.0))
    assert 1.0 < narrow.isr_[0] < wide.isr_[0]


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
    assert model.isr_.tolist() == [2.0]
    # With the ISR fixed, the fit centres the scales on the range in octaves.
    centre = math.log2(model.reference_scale_[0]) + 0.5
    assert centre == pytest.approx(0.5 * (math.log2(0.6) + 1.0), abs=0.01)

    model = ToleranceModel(reference_scale=1.0, isr=3.0, tau=0.5).fit(X)
    assert (model.reference_scale_[0], model.isr_[0], model.tau_) == (1.0, 3.0, 0.5)
    assert model.n_iter_ == 0 and model.converged_
    assert model.kl_[0] > 0.0


def test_single_internal_scale_sits_at_the_centre():
    model = ToleranceModel(n_scales=1, tau=None).fit(loguniform_scales(0.0, 2.0))
    assert model.isr_.tolist() == [1.0]
    np.testing.assert_allclose(model.internal_scales_, [[2.0]], rtol=0.01)
    assert model.predict([0.5, 8.0]).tolist() == [0, 0]


def test_convergence_warning_when_max_iter_is_too_small():
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        model = ToleranceModel(tau=None, max_iter=1).fit(loguniform_scales(0.0, 2.0))
    assert model.converged_ is False
    assert model.n_iter_ == 1


# ---------------------------------------------------------------- densities


def test_data_density_loguniform_with_half_normal_tails():
    model = ToleranceModel(tail_std=0.4).fit(loguniform_scales(0.0, 2.0))
    inside = 1.0 / (2.0 + 2.0 * 0.4 * math.sqrt(math.pi / 2.0))
    density = model.data_density([0.0, 1.0, 2.0, 2.4, -0.8])
    np.testing.assert_allclose(density, inside * np.array([1, 1, 1, math.exp(-0.5), math.exp(-2.0)]))
    grid = np.linspace(-6.0, 8.0, 20001)
    assert trapezoid(model.data_density(grid), grid) == pytest.approx(1.0, abs=1e-6)


def test_kde_data_density_is_continuous_and_normalised():
    X = mixture_scales(1.0, 4.0, 0.3, 3, n_samples=300, seed=1)
    model = ToleranceModel(density="kde", bandwidth=0.1).fit(X)
    low, high = np.log2(model.data_range_[0])
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
    np.testing.assert_allclose(log_density, np.log(mixture) - np.log(scales * math.log(2.0)))
    assert trapezoid(np.exp(log_density), scales) == pytest.approx(1.0, abs=1e-4)
    assert model.score(scales[:50]) == pytest.approx(log_density[:50].mean())


def test_predict_and_predict_proba_follow_the_internal_scales():
    model = ToleranceModel().fit(loguniform_scales(0.0, 3.0))
    proba = model.predict_proba(model.internal_scales_[0])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert model.predict(model.internal_scales_[0]).tolist() == [0, 1, 2]
    assert model.predict([0.01, 100.0]).tolist() == [0, 2]


def test_sample_follows_the_mixture_and_is_reproducible():
    model = ToleranceModel(tau=0.3, random_state=0).fit(loguniform_scales(0.0, 3.0))
    X, labels = model.sample(6000)
    assert X.shape == labels.shape == (6000,)
    assert np.all(X > 0)
    assert set(labels.tolist()) == {0, 1, 2}
    log2_centres = np.log2(model.internal_scales_[0])
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
    assert model.data_density([2.5], group="narrow")[0] < model.data_density([2.5], group="wide")[0]
    drawn, _ = model.sample(2000, group="wide")
    assert np.median(np.log2(drawn)) == pytest.approx(np.log2(model.internal_scales_[wide, 1]), abs=0.15)
    with pytest.raises(ValueError, match="group must be given"):
        model.predict([1.0])
    with pytest.raises(ValueError, match="group must be one of"):
        model.score_samples([1.0], group="unknown")
    single = ToleranceModel().fit(loguniform_scales(0.0, 1.0))
    with pytest.raises(ValueError, match="group must be None"):
        single.predict([1.0], group="wide")


def test_group_index_and_log2_scales_are_the_public_lookups(paper_fit):
    model, _, _ = paper_fit
    for index, group in enumerate(model.groups_):
        assert model.group_index(group) == index
    with pytest.raises(ValueError, match="group must be given"):
        model.group_index()
    with pytest.raises(ValueError, match="group must be one of"):
        model.group_index("unknown")
    single = ToleranceModel().fit(loguniform_scales(0.0, 1.0))
    assert single.group_index() == 0
    with pytest.raises(ValueError, match="group must be None"):
        single.group_index("wide")
    np.testing.assert_array_equal(model.log2_scales([1.0, 2.0, 0.25]), [0.0, 1.0, -2.0])
    np.testing.assert_array_equal(model.log2_scales(np.array([[4.0]])), [2.0])
    with pytest.raises(ValueError, match="strictly positive"):
        model.log2_scales([1.0, -2.0])
    with pytest.raises(NotFittedError):
        ToleranceModel().log2_scales([1.0])


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    "X, y, match",
    [
        ([1.0, np.nan, 2.0], None, "Input X contains NaN"),
        ([1.0, np.inf, 2.0], None, "Input X contains infinity"),
        ([1.0, -2.0, 3.0], None, r"Negative values .* min\(X\)=-2\.0"),
        ([0.0, 1.0, 2.0], None, "Zero values"),
        ([2.0, 2.0, 2.0], None, "at least two distinct scales"),
        ([1.0, 2.0, 3.0, 3.0], [0, 0, 1, 1], r"\(group y=1\)"),
        (np.ones((4, 2)), None, r"shape \(4, 2\)"),
        ([1.0, 2.0, 3.0], [0, 1], "inconsistent numbers of samples"),
        ([1.0, 2.0, 3.0, 4.0], [[0, 1]] * 4, "y should be a 1d array"),
    ],
)
def test_bad_input_raises_value_error(X, y, match):
    with pytest.raises(ValueError, match=match):
        ToleranceModel().fit(X, y)


@pytest.mark.parametrize(
    "y",
    [
        [0.0, np.nan, 1.0, 1.0],
        ["a", np.nan, "b", "b"],  # a list: NumPy alone would make the NaN the string "nan"
        np.array(["a", np.nan, "b", "b"], dtype=object),
        ["a", None, "b", "b"],
    ],
)
def test_missing_group_labels_are_refused_not_fitted_as_a_group(y):
    model = ToleranceModel()
    message = "y must label every scale with its data distribution; got 1 missing label(s) (NaN or None), "
    with pytest.raises(ValueError, match=re.escape(message + "the first at index 1.")):
        model.fit([1.0, 2.0, 3.0, 4.0], y)
    assert not hasattr(model, "groups_")


def test_labels_that_cannot_be_sorted_are_refused():
    y = np.array([1, "a", 1, "a"], dtype=object)
    with pytest.raises(ValueError, match=r"y must hold labels that can be sorted .* \['int', 'str'\]"):
        ToleranceModel().fit([1.0, 2.0, 3.0, 4.0], y)


def test_scales_beyond_float64_are_refused_before_fitting():
    # 1e-300 to 1e300 used to give isr_ = inf, NaN predict_proba and converged_ = True.
    model = ToleranceModel()
    with pytest.raises(ValueError, match=r"from 1e-300 to 1e\+300: .* ISR 2\*\*2001\.2, beyond float64"):
        model.fit(np.geomspace(1e-300, 1e300, 100))
    assert not hasattr(model, "isr_")
    with pytest.raises(ValueError, match=r"could reach 2\*\*-1078\.0"):
        ToleranceModel().fit([5e-324, 1e-322])  # subnormal scales
    # A fixed ISR counts too: the internal scales would overflow.
    with pytest.raises(ValueError, match="divide X"):
        ToleranceModel(isr=1e300).fit(loguniform_scales(100.0, 103.0))


@pytest.mark.parametrize("octave", [-1000.0, 1000.0])
def test_fit_near_the_ends_of_float64_is_the_rescaled_fit(octave):
    # Everything is computed in octaves, so 2 ** +-1000 is as good as 1.
    reference = ToleranceModel(tau=None).fit(loguniform_scales(0.0, 3.0))
    far = ToleranceModel(tau=None).fit(loguniform_scales(octave, octave + 3.0))
    assert far.converged_
    np.testing.assert_allclose(far.isr_, reference.isr_, rtol=1e-6)
    assert far.tau_ == pytest.approx(reference.tau_, rel=1e-6)
    np.testing.assert_allclose(
        np.log2(far.internal_scales_), np.log2(reference.internal_scales_) + octave, atol=1e-6
    )
    proba = far.predict_proba(far.internal_scales_[0])
    np.testing.assert_allclose(proba, reference.predict_proba(reference.internal_scales_[0]), atol=1e-6)
    # The density of the scale factor itself shifts by log(2 ** -octave).
    np.testing.assert_allclose(
        far.score_samples(far.internal_scales_[0]),
        reference.score_samples(reference.internal_scales_[0]) - octave * math.log(2.0),
        atol=1e-6,
    )


def test_a_fixed_tau_the_grid_cannot_resolve_is_refused_with_the_grid_size_needed():
    X = loguniform_scales(0.0, 3.0)
    with pytest.raises(ValueError, match=r"grid_size=2048 is too coarse for tau=0\.01: .* grid_size >= 4401"):
        ToleranceModel(tau=0.01).fit(X)
    model = ToleranceModel(tau=0.01, grid_size=4401).fit(X)
    assert model.converged_ and model.tau_ == 0.01


def test_a_fitted_tau_stays_four_grid_spacings_wide():
    X = mixture_scales(1.0, 4.0, 0.02, 3, n_samples=2000, seed=0)
    model = ToleranceModel(tau=None, density="kde", bandwidth=0.01, grid_size=64).fit(X)
    spacing = (np.ptp(np.log2(model.data_range_[0])) + 2.0 * model.grid_margin) / 63
    assert model.tau_ == pytest.approx(4.0 * spacing, rel=1e-9)
    assert model.converged_


@pytest.mark.parametrize(
    "params, message",
    [
        ({"n_scales": 0}, "n_scales must be an integer >= 1, got 0."),
        ({"n_scales": 2.0}, "n_scales must be an integer >= 1, got 2.0."),
        ({"tau": 0.0}, "tau must be a finite number > 0 or None, got 0.0."),
        ({"tau": float("nan")}, "tau must be a finite number > 0 or None, got nan."),
        ({"isr": 0.5}, "isr must be a finite number >= 1 or None, got 0.5."),
        ({"isr": float("inf")}, "isr must be a finite number >= 1 or None, got inf."),
        ({"reference_scale": -1.0}, "reference_scale must be a finite number > 0 or None, got -1.0."),
        ({"density": "gaussian"}, "density must be one of 'loguniform', 'kde', got 'gaussian'."),
        (
            {"bandwidth": "wide"},
            "bandwidth must be a finite number > 0 or one of 'scott', 'silverman', got 'wide'.",
        ),
        (
            {"bandwidth": -0.1},
            "bandwidth must be a finite number > 0 or one of 'scott', 'silverman', got -0.1.",
        ),
        ({"tail_std": 0.0}, "tail_std must be a finite number > 0, got 0.0."),
        ({"grid_size": 8}, "grid_size must be an integer >= 16, got 8."),
        ({"grid_margin": -1.0}, "grid_margin must be a finite number > 0, got -1.0."),
        ({"tol": -1e-3}, "tol must be a finite number >= 0, got -0.001."),
        ({"max_iter": 0}, "max_iter must be an integer >= 1, got 0."),
    ],
)
def test_bad_parameters_are_refused_before_the_data_is_read(params, message):
    model = ToleranceModel(**params)
    with pytest.raises(ValueError, match=re.escape(message)):
        model.fit([1.0, 2.0])
    assert not hasattr(model, "n_features_in_")


def test_methods_validate_their_input():
    model = ToleranceModel().fit(loguniform_scales(0.0, 1.0))
    with pytest.raises(ValueError, match="Negative values"):
        model.predict([-1.0])
    with pytest.raises(ValueError, match="Input X contains NaN"):
        model.predict_proba([1.0, np.nan])
    with pytest.raises(ValueError, match="features"):
        model.score_samples(np.ones((3, 2)))
    with pytest.raises(ValueError, match=re.escape("n_samples must be an integer >= 1, got 0.")):
        model.sample(0)
    with pytest.raises(NotFittedError):
        ToleranceModel().predict([1.0])


# ---------------------------------------------------------- sklearn contract


def fitted_state(model):
    """Copies of the public fitted attributes (the names ending in an underscore)."""
    return {
        name: np.copy(value) if isinstance(value, np.ndarray) else value
        for name, value in vars(model).items()
        if name.endswith("_") and not name.startswith("_")
    }


def assert_same_state(actual, expected, rtol=0.0):
    assert actual.keys() == expected.keys()
    for name, value in expected.items():
        if (
            value is None
            or isinstance(value, (bool, str))
            or (isinstance(value, np.ndarray) and value.dtype.kind in "OU")
        ):
            np.testing.assert_array_equal(actual[name], value, err_msg=name)
        else:
            np.testing.assert_allclose(actual[name], value, rtol=rtol, atol=0.0, err_msg=name)


def test_clone_params_and_pickle():
    model = ToleranceModel(n_scales=4, tau=None, density="kde", random_state=3)
    assert clone(model).get_params() == model.get_params()
    model.set_params(n_scales=5, bandwidth=0.1)
    assert model.get_params()["n_scales"] == 5
    assert not hasattr(clone(model), "isr_")

    X = mixture_scales(1.0, 4.0, 0.3, 3, n_samples=400, seed=2)
    model.fit(X)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.isr_, model.isr_)
    np.testing.assert_array_equal(restored.score_samples(X), model.score_samples(X))
    np.testing.assert_array_equal(restored.sample(5)[0], model.sample(5)[0])


def test_pickle_round_trip_of_a_joint_fit(paper_fit):
    model, X, _ = paper_fit
    restored = pickle.loads(pickle.dumps(model))
    assert_same_state(fitted_state(restored), fitted_state(model))
    grid = np.linspace(-3.0, 6.0, 50)
    for group in model.groups_:
        for method, points in ((ToleranceModel.predict_proba, X), (ToleranceModel.data_density, grid)):
            expected = method(model, points, group=group)
            np.testing.assert_array_equal(method(restored, points, group=group), expected)


def test_refitting_gives_the_same_model_and_forgets_the_previous_fit():
    X = mixture_scales(1.0, 4.0, 0.3, 3, n_samples=600, seed=4)
    model = ToleranceModel(tau=None, density="kde")
    first = fitted_state(model.fit(X))
    grid = np.linspace(-3.0, 6.0, 50)
    density = model.data_density(grid)
    assert_same_state(fitted_state(model.fit(X)), first)
    # A joint fit on other data in between leaves nothing behind.
    model.fit(np.concatenate([X, 8.0 * X]), np.repeat(["a", "b"], X.size))
    assert_same_state(fitted_state(model.fit(X)), first)
    assert model.groups_ is None
    np.testing.assert_array_equal(model.data_density(grid), density)


def test_evaluation_leaves_the_fitted_model_unchanged(paper_fit):
    model, X, _ = paper_fit
    before = pickle.dumps(model)
    for group in model.groups_:
        model.predict(X, group=group)
        model.predict_proba(X, group=group)
        model.score(X, group=group)
        model.tolerance_pdf([0.0, 1.0], group=group, components=True)
        model.data_density([0.0, 1.0], group=group)
        model.sample(3, group=group)
    assert pickle.dumps(model) == before


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64])
def test_integer_and_float_dtypes_give_the_float64_fit(dtype):
    X = np.repeat(np.arange(1, 9), 3)  # integer scale factors: exact in every dtype
    expected = ToleranceModel(tau=None).fit(X.astype(np.float64))
    model = ToleranceModel(tau=None).fit(X.astype(dtype))
    assert_same_state(fitted_state(model), fitted_state(expected))
    proba = model.predict_proba(X.astype(dtype))
    assert proba.dtype == np.float64
    np.testing.assert_array_equal(proba, expected.predict_proba(X.astype(np.float64)))


def test_float32_scales_are_fitted_in_float64():
    X = loguniform_scales(0.0, 2.5).astype(np.float32)
    model = ToleranceModel(tau=None, density="kde").fit(X)
    expected = ToleranceModel(tau=None, density="kde").fit(X.astype(np.float64))
    assert_same_state(fitted_state(model), fitted_state(expected))
    assert model.isr_.dtype == model.kl_.dtype == np.float64


def test_read_only_and_memory_mapped_input(tmp_path):
    X = mixture_scales(1.0, 4.0, 0.3, 3, n_samples=600, seed=5)
    y = np.repeat([0, 1], X.size // 2)
    np.save(tmp_path / "scales.npy", X.reshape(-1, 1))
    mapped = np.load(tmp_path / "scales.npy", mmap_mode="r")
    read_only_y = y.copy()
    read_only_y.flags.writeable = False
    model = ToleranceModel(tau=None, density="kde").fit(mapped, read_only_y)
    expected = ToleranceModel(tau=None, density="kde").fit(X, y)
    assert_same_state(fitted_state(model), fitted_state(expected))
    for group in (0, 1):
        score = expected.score_samples(X, group=group)
        np.testing.assert_array_equal(model.score_samples(mapped, group=group), score)
    np.testing.assert_array_equal(mapped[:, 0], X)


@pytest.mark.parametrize("density", ["loguniform", "kde"])
def test_sample_order_and_subsets_do_not_matter(density):
    X = np.concatenate([loguniform_scales(0.0, 1.5, 150), mixture_scales(1.0, 4.0, 0.3, 3, 300, seed=6)])
    y = np.repeat(["narrow", "mixture"], [150, 300])
    model = ToleranceModel(tau=None, density=density).fit(X, y)
    order = np.random.default_rng(0).permutation(X.size)
    refit = ToleranceModel(tau=None, density=density).fit(X[order], y[order])
    assert_same_state(fitted_state(refit), fitted_state(model), rtol=1e-7)
    for group in model.groups_:
        proba = model.predict_proba(X, group=group)
        np.testing.assert_allclose(model.predict_proba(X[order], group=group), proba[order], rtol=1e-12)
        labels = model.predict(X, group=group)
        np.testing.assert_array_equal(model.predict(X[order], group=group), labels[order])
        score = model.score_samples(X, group=group)
        np.testing.assert_allclose(model.score_samples(X[order], group=group), score[order], rtol=1e-12)
        for batch in np.array_split(np.arange(X.size), 7):
            np.testing.assert_allclose(model.score_samples(X[batch], group=group), score[batch], rtol=1e-12)


def test_input_tags_are_those_of_a_one_variable_estimator():
    tags = ToleranceModel().__sklearn_tags__().input_tags
    assert tags.one_d_array and not tags.two_d_array and tags.positive_only


@parametrize_with_checks([ToleranceModel()])
def test_sklearn_compatible_estimator(estimator, check):
    # As for IsotonicRegression, the input tags tell the generic checks that X
    # is one variable; the checks they skip are the tests above.
    check(estimator)


class ToleranceModelOnAnyData(ToleranceModel):
    """Adapter that lets the generic scikit-learn 2-D checks reach the fit logic.

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
        tags.input_tags.one_d_array = False
        tags.input_tags.two_d_array = True
        tags.input_tags.positive_only = False
        return tags


@parametrize_with_checks([ToleranceModelOnAnyData()])
def test_sklearn_checks_on_the_fit_logic(estimator, check):
    check(estimator)

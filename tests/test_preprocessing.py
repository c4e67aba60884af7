import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import check_estimator

from skscale.preprocessing import ImageStandardizer


def images(dtype=np.float32, shape=(20, 6, 5), seed=0):
    return (3.0 + 2.0 * np.random.RandomState(seed).rand(*shape)).astype(dtype)


def test_one_mean_and_scale_for_all_pixels():
    X = images()
    standardizer = ImageStandardizer().fit(X)
    assert standardizer.mean_ == pytest.approx(X.mean(dtype=np.float64))
    assert standardizer.scale_ == pytest.approx(X.std(dtype=np.float64))
    assert standardizer.n_features_in_ == 30
    Xt = standardizer.transform(X)
    assert Xt.shape == X.shape and Xt.dtype == np.float32
    assert abs(Xt.mean()) < 1e-5 and Xt.std() == pytest.approx(1.0, rel=1e-5)
    # Unlike StandardScaler, every position gets the same affine map: a shift stays a shift,
    # so an image and its translate are standardised alike.
    np.testing.assert_allclose(Xt[0] - Xt[1], (X[0] - X[1]) / standardizer.scale_, rtol=1e-5)
    shifted = np.roll(X[:2], 1, axis=2)
    np.testing.assert_allclose(standardizer.transform(shifted), np.roll(Xt[:2], 1, axis=2), rtol=1e-6)
    np.testing.assert_allclose(standardizer.inverse_transform(Xt), X, rtol=1e-6)


def test_constant_images_and_switched_off_steps():
    assert ImageStandardizer().fit(np.full((3, 4, 4), 7.0)).scale_ == 1.0
    X = images(np.float64)
    centred = ImageStandardizer(with_std=False).fit(X)
    assert centred.scale_ == 1.0
    np.testing.assert_allclose(centred.transform(X), X - X.mean())
    scaled = ImageStandardizer(with_mean=False).fit(X)
    assert scaled.mean_ == 0.0
    np.testing.assert_allclose(scaled.transform(X), X / X.std())


def test_dtypes_and_channel_axes():
    X = images(np.float64, shape=(5, 2, 4, 4))
    assert ImageStandardizer().fit_transform(X).dtype == np.float64
    assert ImageStandardizer().fit_transform(X.astype(np.uint8)).dtype == np.float64
    assert ImageStandardizer().fit(X).n_features_in_ == 32


def test_errors_name_the_problem():
    X = images()
    with pytest.raises(NotFittedError):
        ImageStandardizer().transform(X)
    with pytest.raises(ValueError, match="X has 16 features, but ImageStandardizer is expecting 30 features"):
        ImageStandardizer().fit(X).transform(np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match="with_mean must be True or False, got 'yes'"):
        ImageStandardizer(with_mean="yes").fit(X)
    with pytest.raises(ValueError, match="with_std must be True or False, got 1"):
        ImageStandardizer(with_std=1).fit(X)
    with pytest.raises(ValueError, match="Expected 2D array, got 1D array"):
        ImageStandardizer().fit(np.zeros(5))
    X[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        ImageStandardizer().fit(X)


def test_feature_names_of_flattened_images():
    X = images(shape=(4, 2, 3))
    names = ImageStandardizer().fit(X).get_feature_names_out()
    assert list(names) == [f"x{i}" for i in range(6)]
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame(X.reshape(4, -1), columns=[f"pixel{i}" for i in range(6)])
    standardizer = ImageStandardizer().set_output(transform="pandas").fit(frame)
    out = standardizer.transform(frame)
    assert list(out.columns) == list(frame.columns)
    np.testing.assert_allclose(out.to_numpy(), ImageStandardizer().fit_transform(X).reshape(4, -1), rtol=1e-6)


def test_passes_scikit_learns_estimator_checks():
    results = check_estimator(ImageStandardizer(), on_fail=None)
    failed = [(r["check_name"], str(r["exception"])) for r in results if r["status"] == "failed"]
    assert failed == []
    assert sum(r["status"] == "passed" for r in results) >= 40

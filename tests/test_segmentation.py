"""Tests of ScaleEquivariantSegmenter (skscale.segmentation)."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV
from sklearn.utils.estimator_checks import parametrize_with_checks

from skscale import ScaleEquivariantSegmenter
from skscale.metrics import intersection_over_union, mean_intersection_over_union

from .conftest import smooth_noise

# Fast settings: the plain ResNet unless a test is about another network.
FAST = dict(architecture="resnet", n_filters=4, max_epochs=2, batch_size=8, random_state=0)

# sklearn's common checks pass 1-D targets (one label per sample); a segmenter needs one
# mask per image, so every check that fits or scores is refused with a ValueError about y.
# The properties they would check are tested below on masks (fit returns self, pickling,
# reproducibility, dtypes, NaN refused, n_features_in_, not-fitted errors ...).
_ONE_D_TARGET_CHECKS = (
    "check_fit_score_takes_y",
    "check_estimators_overwrite_params",
    "check_dont_overwrite_parameters",
    "check_estimators_fit_returns_self",
    "check_readonly_memmap_input",
    "check_n_features_in_after_fitting",
    "check_positive_only_tag_during_fit",
    "check_estimators_dtypes",
    "check_dtype_object",
    "check_pipeline_consistency",
    "check_estimators_nan_inf",
    "check_estimators_pickle",
    "check_f_contiguous_array_estimator",
    "check_methods_sample_order_invariance",
    "check_methods_subset_invariance",
    "check_fit2d_1sample",
    "check_fit2d_1feature",
    "check_dict_unchanged",
    "check_fit_idempotent",
    "check_fit_check_is_fitted",
    "check_n_features_in",
    "check_fit2d_predict1d",
)


def _expected_failures(estimator):
    failures = {
        name: "masks (n, height, width) are required; the check passes 1-D y" for name in _ONE_D_TARGET_CHECKS
    }
    failures["check_no_attributes_set_in_init"] = (
        "skorch's NeuralNet.__init__ sets history_, initialized_ and virtual_params_"
    )
    return failures


@parametrize_with_checks(
    [ScaleEquivariantSegmenter(**{**FAST, "max_epochs": 1}, image_shape="row")],
    expected_failed_checks=_expected_failures,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def bright_masks(n=12, size=14, seed=0, labels=(0, 1)):
    """Smooth images and masks: ``labels[1]`` where the image is bright, ``labels[0]`` elsewhere."""
    images = smooth_noise(n, size, sigma=1.5, seed=seed)[:, 0].numpy()
    masks = np.where(images > 0, labels[1], labels[0])
    return images.astype(np.float32), masks


def test_shapes_any_image_size_and_probabilities():
    X, y = bright_masks()
    seg = ScaleEquivariantSegmenter(**FAST).fit(X, y)
    assert seg.classes_.tolist() == [0, 1]
    assert seg.input_shape_ == (1, 14, 14) and seg.n_features_in_ == 196
    assert seg.predict(X).shape == y.shape
    larger = np.random.RandomState(0).rand(3, 21, 17).astype(np.float32)
    probabilities = seg.predict_proba(larger)
    assert probabilities.shape == (3, 2, 21, 17)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    # Channels-first input with one channel is the same images.
    np.testing.assert_array_equal(seg.predict(X[:, None]), seg.predict(X))


def test_learns_bright_regions():
    X, y = bright_masks(n=32)
    seg = ScaleEquivariantSegmenter(**{**FAST, "max_epochs": 8, "n_filters": 8}).fit(X, y)
    assert seg.score(X, y) > 0.8


def test_labels_of_any_type_and_ignored_label():
    X, y = bright_masks(labels=("sky", "road"))
    y = y.astype(object)
    y[:, :2] = "void"
    seg = ScaleEquivariantSegmenter(**FAST, ignore_label="void").fit(X, y)
    assert seg.classes_.tolist() == ["road", "sky"]
    predicted = seg.predict(X)
    assert predicted.shape == y.shape and set(np.unique(predicted)) <= {"road", "sky"}
    encoded = seg.encode_masks(y)
    assert (encoded[:, :2] == -100).all() and set(np.unique(encoded[:, 2:])) <= {0, 1}


def test_ignore_label_is_never_a_class_and_is_left_out_of_the_loss():
    X, y = bright_masks()
    y = y.copy()
    y[0] = 255  # a whole image without a class
    y[1, :5] = 255
    seg = ScaleEquivariantSegmenter(**FAST).fit(X, y)
    assert seg.classes_.tolist() == [0, 1]
    assert np.isfinite(seg.history[:, "train_loss"]).all()
    # The loss of a batch is the cross-entropy over its scored pixels only.
    images = torch.as_tensor(X[:2, None])
    targets = torch.as_tensor(seg.encode_masks(y[:2]))
    logits = seg.infer(images)
    scored = targets != -100
    by_hand = torch.nn.functional.cross_entropy(logits.permute(0, 2, 3, 1)[scored], targets[scored])
    assert seg.get_loss(logits, targets).item() == pytest.approx(by_hand.item(), rel=1e-5)
    with pytest.raises(ValueError, match="ignore_label"):
        ScaleEquivariantSegmenter(**FAST, classes=[0, 1, 255]).fit(X, y)
    # ignore_label=None: 255 is a class like any other.
    assert ScaleEquivariantSegmenter(**FAST, ignore_label=None).fit(X, y).classes_.tolist() == [0, 1, 255]


def test_score_is_the_mean_iou_by_hand():
    X, y = bright_masks(labels=(3, 7))
    y = y.copy()
    y[:, 0] = 255
    seg = ScaleEquivariantSegmenter(**FAST).fit(X, y)
    predicted = seg.predict(X)
    scored = y != 255
    ious = []
    for label in np.union1d(y[scored], predicted[scored]):
        true, guess = (y == label) & scored, (predicted == label) & scored
        ious.append((true & guess).sum() / (true | guess).sum())
    assert seg.score(X, y) == pytest.approx(np.mean(ious))
    assert seg.score(X, y) == pytest.approx(mean_intersection_over_union(y, predicted, ignore_label=255))


def test_intersection_over_union_counts_classes_present_in_either_mask():
    labels, ious = intersection_over_union([[1, 1, 2, 9]], [[1, 3, 2, 2]], ignore_label=9)
    assert labels.tolist() == [1, 2, 3]
    np.testing.assert_allclose(ious, [0.5, 1.0, 0.0])
    assert mean_intersection_over_union(np.array(["a", "b"]), np.array(["a", "a"])) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="same shape"):
        mean_intersection_over_union([1, 2], [1])
    with pytest.raises(ValueError, match="nothing to score"):
        mean_intersection_over_union([255], [1], ignore_label=255)


def test_pickling_keeps_predictions():
    X, y = bright_masks()
    seg = ScaleEquivariantSegmenter(**FAST).fit(X, y)
    restored = pickle.loads(pickle.dumps(seg))
    np.testing.assert_array_equal(restored.predict_proba(X), seg.predict_proba(X))


def test_random_state_reproduces_and_fit_returns_self():
    X, y = bright_masks()
    first = ScaleEquivariantSegmenter(**FAST)
    assert first.fit(X, y) is first
    second = ScaleEquivariantSegmenter(**FAST).fit(X, y)
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))


def test_grid_search_over_architectures():
    X, y = bright_masks(n=16)
    search = GridSearchCV(
        ScaleEquivariantSegmenter(**FAST), {"architecture": ["resnet", "dss_independent"]}, cv=2
    ).fit(X, y)
    assert search.best_params_["architecture"] in ("resnet", "dss_independent")
    assert search.predict(X).shape == y.shape
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


def test_scale_hyper_parameters_reach_the_encoder_decoder():
    X, y = bright_masks(n=8, size=12)
    seg = ScaleEquivariantSegmenter(
        architecture="sesn",
        n_filters=2,
        n_scales=2,
        init_sigma_basis=0.8,
        init_isr=1.5,
        max_epochs=1,
        random_state=0,
    ).fit(X, y)
    assert seg.scale_spec_.n_scales == 2 and seg.scales_.shape == (2,)
    assert seg.sigma_basis_ == pytest.approx(0.8, rel=0.2)
    assert (
        ScaleEquivariantSegmenter(**{**FAST, "architecture": "dss", "n_scales": 2})
        .fit(X, y)
        .module_.lifting.n_scales
        == 2
    )


def test_init_isr_auto_estimates_from_the_images():
    X, y = bright_masks(n=16, size=16)
    seg = ScaleEquivariantSegmenter(
        architecture="sesn", n_filters=2, init_isr="auto", max_epochs=1, random_state=0
    )
    seg.fit(X, y)
    assert seg.init_isr_ >= 1.25 and seg.scale_spec_.init_isr == seg.init_isr_


def test_flattened_rows_with_image_shape():
    X, y = bright_masks(size=10)
    seg = ScaleEquivariantSegmenter(**FAST, image_shape=(10, 10)).fit(
        X.reshape(len(X), -1), y.reshape(len(y), -1)
    )
    assert seg.input_shape_ == (1, 10, 10)
    assert seg.predict(X.reshape(len(X), -1)).shape == (len(X), 10, 10)


def _with_nan(images):
    images = images.copy()
    images[0, 0, 0] = np.nan
    return images


def test_errors_name_the_problem():
    X, y = bright_masks()
    seg = ScaleEquivariantSegmenter(**FAST)
    with pytest.raises(ValueError, match="one mask of shape"):
        seg.fit(X, y[:, :-1])
    with pytest.raises(ValueError, match="requires y"):
        seg.fit(X, None)
    with pytest.raises(ValueError, match="NaN"):
        seg.fit(_with_nan(X), y)
    with pytest.raises(ValueError, match="at least two classes"):
        seg.fit(X, np.zeros_like(y))
    seg.fit(X, y)
    with pytest.raises(ValueError, match="channels"):
        seg.predict(np.zeros((1, 3, 14, 14), dtype=np.float32))
    with pytest.raises(ValueError, match="not among the classes"):
        seg.partial_fit(X, np.full_like(y, 5))
    with pytest.raises(ValueError, match="sample_weight"):
        seg.score(X, y, sample_weight=np.ones(len(X)))
    with pytest.raises(ValueError, match="arrays of images"):
        seg.fit(torch.utils.data.TensorDataset(torch.as_tensor(X), torch.as_tensor(y)))
    with pytest.raises(ValueError, match="architecture must be one of"):
        ScaleEquivariantSegmenter(architecture="table1").fit(X, y)


def test_a_sweep_validates_candidate_isrs_per_pixel_and_keeps_the_best():
    X, y = bright_masks(n=20, size=12)
    y[:, 0, 0] = 255  # ignored pixels are left out of the validation error
    seg = ScaleEquivariantSegmenter(
        architecture="sesn",
        n_filters=2,
        n_scales=2,
        init_sigma_basis=0.8,
        max_epochs=3,
        batch_size=4,
        random_state=0,
        scale_selection="sweep",
        callbacks__scale_selection__n_candidates=3,
    ).fit(X, y)
    errors = seg.isr_validation_errors_
    assert seg.isr_candidates_.shape == (3,) and ((errors >= 0) & (errors <= 1)).all()
    (selected,) = np.flatnonzero(np.isclose(seg.isr_candidates_, seg.isr_, rtol=1e-4))
    assert errors[selected] == errors.min()  # ties go to the lower validation loss
    with pytest.raises(ValueError, match="scale_selection must be one of 'gradient', 'sweep'"):
        ScaleEquivariantSegmenter(**FAST, scale_selection="response").fit(X, y)

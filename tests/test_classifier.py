import io
import pickle
import warnings

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import parametrize_with_checks

from skscale import ScaleEquivariantClassifier, ToleranceModel, estimate_scales
from skscale.classifier import LargeKernelWarning
from skscale.datasets import make_mnist_scale
from skscale.nn import ScaleSpec, SESNNet

from .conftest import SMALL as NETWORK
from .conftest import blobs_images, invalid_values, valid_value

SMALL = {**NETWORK, "max_epochs": 6, "batch_size": 32}


@parametrize_with_checks(
    [ScaleEquivariantClassifier(**SMALL, image_shape="row")],
    expected_failed_checks=lambda estimator: {
        "check_no_attributes_set_in_init": (
            "skorch's NeuralNet.__init__ sets history_, initialized_ and virtual_params_"
        ),
    },
)
def test_scikit_learn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LargeKernelWarning)
        check(estimator)


@pytest.fixture(scope="module")
def scaled_digits():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = make_mnist_scale(n_train=400, n_val=10, n_test=200, source="bundled", random_state=0)
    return data


def test_fit_predict_score_and_fitted_attributes():
    X, y = blobs_images()
    clf = ScaleEquivariantClassifier(
        n_filters=4, init_sigma_basis=1.0, init_isr=2.0, max_epochs=8, lr=0.05, random_state=0
    ).fit(X, y)
    assert clf.score(X, y) > 0.9
    assert clf.n_features_in_ == 144 and clf.input_shape_ == (1, 12, 12)
    np.testing.assert_array_equal(clf.classes_, [0, 1])
    assert clf.scales_.shape == (3,) and clf.scales_.dtype == np.float64
    assert clf.sigma_basis_ == pytest.approx(clf.scales_[0])
    assert clf.isr_ == pytest.approx(clf.scales_[-1] / clf.scales_[0], rel=1e-5)
    history = clf.history
    assert len(history) == 8
    for key in ("sigma_basis", "isr", "scales"):
        assert len(history[:, key]) == 8
    assert history[-1, "scales"] == pytest.approx(clf.scales_.tolist())
    proba = clf.predict_proba(X[:5])
    assert proba.shape == (5, 2) and np.allclose(proba.sum(axis=1), 1)


@pytest.mark.parametrize("labels", [np.array(["small", "large"]), np.array([5, 6]), np.array([True, False])])
def test_labels_of_any_type_come_back_as_given(labels):
    X, y = blobs_images(n=20)
    clf = ScaleEquivariantClassifier(**SMALL).fit(X, labels[y])
    predicted = clf.predict(X)
    assert predicted.dtype == labels.dtype
    assert set(predicted) <= set(labels)
    np.testing.assert_array_equal(clf.classes_, np.sort(labels))


def test_input_layouts_give_the_same_model():
    X, y = blobs_images(n=20, size=8)
    three_d = ScaleEquivariantClassifier(**SMALL).fit(X, y)
    four_d = ScaleEquivariantClassifier(**SMALL).fit(X[:, None], y)
    flat = ScaleEquivariantClassifier(image_shape=(8, 8), **SMALL).fit(X.reshape(20, -1), y)
    integers = ScaleEquivariantClassifier(**SMALL).fit((X * 100).astype(np.int64), y)
    reference = three_d.predict_proba(X)
    np.testing.assert_allclose(four_d.predict_proba(X[:, None]), reference, rtol=1e-5)
    np.testing.assert_allclose(flat.predict_proba(X.reshape(20, -1)), reference, rtol=1e-5)
    assert integers.input_shape_ == (1, 8, 8)


def test_channels_last_rows_with_image_shape():
    rng = np.random.RandomState(0)
    images = rng.rand(10, 3, 6, 5).astype(np.float32)  # (N, C, H, W)
    rows = images.transpose(0, 2, 3, 1).reshape(10, -1)  # flattened channels-last
    y = np.arange(10) % 2
    from_rows = ScaleEquivariantClassifier(image_shape=(6, 5, 3), **SMALL).fit(rows, y)
    from_images = ScaleEquivariantClassifier(**SMALL).fit(images, y)
    assert from_rows.input_shape_ == (3, 6, 5)
    np.testing.assert_allclose(from_rows.predict_proba(rows), from_images.predict_proba(images), rtol=1e-5)


def test_tabular_rows_are_read_as_one_row_images_and_warn():
    X = np.random.RandomState(0).rand(20, 4)
    y = np.arange(20) % 2
    with pytest.warns(LargeKernelWarning, match="1 x 4"):
        clf = ScaleEquivariantClassifier(max_epochs=1, image_shape="row").fit(X, y)
    assert clf.input_shape_ == (1, 1, 4)
    with pytest.warns(LargeKernelWarning, match="2 x 2"):  # four values: a square 2 x 2 image
        assert ScaleEquivariantClassifier(max_epochs=1).fit(X, y).input_shape_ == (1, 2, 2)


def test_random_state_gives_identical_predictions_and_leaves_global_rng():
    X, y = blobs_images(n=30)
    state = torch.get_rng_state()
    first = ScaleEquivariantClassifier(**SMALL).fit(X, y)
    assert torch.equal(torch.get_rng_state(), state)
    second = ScaleEquivariantClassifier(**SMALL).fit(X, y)
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))
    np.testing.assert_array_equal(first.scales_, second.scales_)
    other = ScaleEquivariantClassifier(**{**SMALL, "random_state": 1}).fit(X, y)
    assert not np.array_equal(first.predict_proba(X), other.predict_proba(X))


def test_fixed_scales_stay_exactly_and_learned_ones_move_and_stay_valid():
    X, y = blobs_images(n=40)
    common = dict(n_filters=4, init_sigma_basis=1.0, init_isr=3.0, max_epochs=4, lr=0.05, random_state=0)
    fixed = ScaleEquivariantClassifier(parameterisation="fixed", **common).fit(X, y)
    np.testing.assert_array_equal(fixed.scales_, np.array([1.0, 3.0**0.5, 3.0], dtype=np.float32))
    assert fixed.history[:, "isr"] == [pytest.approx(3.0)] * 4
    initial = fixed.scales_
    for parameterisation in ("isr", "spacing", "direct"):
        learned = ScaleEquivariantClassifier(parameterisation=parameterisation, **common).fit(X, y)
        assert not np.allclose(learned.scales_, initial), parameterisation
        assert (learned.scales_ > 0).all()
        if parameterisation != "direct":
            assert (np.diff(learned.scales_) > 0).all()


def test_scale_learning_rate_and_warm_up():
    X, y = blobs_images(n=20)
    clf = ScaleEquivariantClassifier(**{**SMALL, "max_epochs": 4}, scale_lr=0.1, scale_warmup_epochs=2).fit(
        X, y
    )
    assert clf.history[:, "scale_lr"] == pytest.approx([0.0, 0.05, 0.1, 0.1])
    groups = {group.get("name"): group for group in clf.optimizer_.param_groups}
    assert groups["internal_scales"]["lr"] == pytest.approx(0.1)
    assert groups[None]["lr"] == pytest.approx(0.05)
    # During the first epoch the scales did not move (learning rate 0).
    assert clf.history[0, "scales"] == pytest.approx([0.5, 1.0])
    frozen = ScaleEquivariantClassifier(**SMALL, scale_lr=0.0).fit(X, y)
    np.testing.assert_allclose(frozen.scales_, [0.5, 1.0], rtol=1e-6)


def test_early_stopping_uses_a_seeded_stratified_split():
    X, _ = blobs_images(n=60)
    y = np.random.RandomState(0).randint(0, 2, size=60)  # random labels: validation loss soon rises
    clf = ScaleEquivariantClassifier(
        **{**SMALL, "max_epochs": 30}, early_stopping=True, n_iter_no_change=2, validation_fraction=0.2
    ).fit(X, y)
    history = clf.history
    assert "valid_loss" in history[-1]
    assert len(history) < 30  # stopped early
    again = ScaleEquivariantClassifier(
        **{**SMALL, "max_epochs": 30}, early_stopping=True, n_iter_no_change=2, validation_fraction=0.2
    ).fit(X, y)
    assert history[:, "valid_loss"] == again.history[:, "valid_loss"]
    assert "valid_loss" not in ScaleEquivariantClassifier(**SMALL).fit(X, y).history[-1]


def test_verbose_prints_the_epoch_table(capsys):
    X, y = blobs_images(n=20)
    table = ScaleEquivariantClassifier(**{**SMALL, "max_epochs": 2}, verbose=1).fit(X, y)
    out = capsys.readouterr().out
    assert "train_loss" in out and "isr" in out and "sigma_basis" in out
    ScaleEquivariantClassifier(**{**SMALL, "max_epochs": 2}).fit(X, y)
    assert capsys.readouterr().out == ""
    with_bar = ScaleEquivariantClassifier(**{**SMALL, "max_epochs": 1}, verbose=2).fit(X, y)
    assert "progress_bar" in dict(with_bar.callbacks_)
    assert "progress_bar" not in dict(table.callbacks_)


def test_pickle_joblib_and_clone_round_trips():
    X, y = blobs_images(n=20)
    clf = ScaleEquivariantClassifier(**SMALL).fit(X, np.array(["a", "b"])[y])
    expected = clf.predict_proba(X)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict_proba(X), expected)
    np.testing.assert_array_equal(restored.predict(X), clf.predict(X))
    buffer = io.BytesIO()
    joblib.dump(clf, buffer)
    buffer.seek(0)
    np.testing.assert_array_equal(joblib.load(buffer).predict_proba(X), expected)
    fresh = clone(clf)
    assert fresh.get_params()["init_isr"] == 2.0 and not hasattr(fresh, "scales_")
    np.testing.assert_array_equal(fresh.fit(X, np.array(["a", "b"])[y]).predict_proba(X), expected)


def test_grid_search_over_learned_and_fixed_isr_in_a_pipeline(scaled_digits):
    data = scaled_digits
    pipeline = Pipeline(
        [
            ("scale", FunctionTransformer(lambda X: X / X.max())),
            (
                "classifier",
                ScaleEquivariantClassifier(
                    n_filters=8, init_sigma_basis=1.0, max_epochs=8, lr=0.01, random_state=0
                ),
            ),
        ]
    )
    search = GridSearchCV(
        pipeline,
        {"classifier__parameterisation": ["fixed", "isr"], "classifier__init_isr": [1.5, 3.0]},
        cv=2,
        n_jobs=2,
    ).fit(data.X_train, data.y_train)
    assert len(search.cv_results_["params"]) == 4
    # Every candidate learns: chance is 0.1, whose binomial SE on a 200-image fold is 0.021.
    # (The scores, 0.28-0.38 at 8 epochs, move by a few points with float-level changes.)
    assert (search.cv_results_["mean_test_score"] > 0.2).all()
    best = search.best_estimator_.named_steps["classifier"]
    assert best.scales_.shape == (3,)
    assert search.score(data.X_test, data.y_test) > 0.5  # ten classes: chance is 0.1


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(architecture="resnet"), "architecture must be one of .* got 'resnet'"),
        (dict(parameterisation="eq5"), "parameterisation must be one of .* or None, got 'eq5'"),
        (dict(n_scales=0), "n_scales must be an integer >= 1 or None, got 0"),
        (dict(init_isr=1.0), "init_isr must be a finite number > 1 or one of 'auto' or None, got 1.0"),
        (dict(init_isr="Auto"), "init_isr must be a finite number > 1 or one of 'auto' or None, got 'Auto'"),
        (
            dict(init_isr=float("inf")),
            "init_isr must be a finite number > 1 or one of 'auto' or None, got inf",
        ),
        (dict(init_sigma_basis=-1.0), "init_sigma_basis must be a finite number > 0 or None, got -1.0"),
        (dict(kernel_extent=float("nan")), "kernel_extent must be a finite number > 0 or None, got nan"),
        (dict(lr=0), "lr must be a finite number > 0, got 0"),
        (dict(scale_lr=-0.1), r"scale_lr must be a finite number >= 0 or None, got -0.1"),
        (dict(scale_warmup_epochs=-1), "scale_warmup_epochs must be an integer >= 0, got -1"),
        (dict(validation_fraction=1.5), r"validation_fraction must be a finite number in \(0, 1\), got 1.5"),
        (dict(image_shape=(8,)), r"image_shape must be \(height, width\)"),
        (dict(image_shape=(4, 4)), r"X has 64 features per row, but image_shape=\(4, 4\) needs 16"),
        (dict(random_state="x"), r"random_state must be None, an int or a numpy RandomState, got 'x'"),
        (dict(criterion="foo"), r"criterion must be a class or callable .*CrossEntropyLoss\), got 'foo'"),
        (dict(optimizer="adam"), r"optimizer must be a class or callable .*Adam\), got 'adam'"),
        (dict(callbacks="foo"), r"callbacks must be None, 'disable' or a list .* got 'foo'"),
    ],
)
def test_invalid_hyper_parameters_fail_before_training(params, match):
    X = np.random.RandomState(0).rand(6, 64)
    y = np.arange(6) % 2
    clf = ScaleEquivariantClassifier(max_epochs=1, **params)
    with pytest.raises(ValueError, match=match):
        clf.fit(X, y)
    assert not hasattr(clf, "module_")


def _every_declared_constraint():
    """(name, value, valid) for a valid and every derived invalid value of each declared parameter."""
    for name, constraint in ScaleEquivariantClassifier._parameter_constraints.items():
        yield pytest.param(name, valid_value(constraint), True, id=f"{name}-valid")
        for index, value in enumerate(invalid_values(constraint)):
            yield pytest.param(name, value, False, id=f"{name}-invalid-{index}")


@pytest.mark.parametrize("name, value, valid", list(_every_declared_constraint()))
def test_every_declared_parameter_accepts_a_valid_value_and_refuses_invalid_ones_by_name(name, value, valid):
    # The table is read, not copied: a new entry of _parameter_constraints is covered here.
    assert name in ScaleEquivariantClassifier().get_params()
    X, y = blobs_images(n=20, size=8)
    if valid and name in ("lr", "scale_lr"):
        value = 0.05  # the table's typical 1.0 is valid but diverges (test_a_diverging_fit_...)
    clf = ScaleEquivariantClassifier(**{**SMALL, "max_epochs": 1, "batch_size": 4, name: value})
    if valid:
        clf.fit(X, y)
        assert clf.get_params()[name] is value and len(clf.history) >= 1
        return
    with pytest.raises(ValueError) as caught:
        clf.fit(X, y)
    message = str(caught.value)
    assert message.startswith(f"{name} must be ") and message.endswith(f", got {value!r}."), message
    assert not hasattr(clf, "module_")


@pytest.mark.parametrize("rates", [dict(lr=1.0), dict(lr=0.05, scale_lr=1.0)])
def test_a_diverging_fit_stops_with_an_error_naming_the_learning_rates(rates):
    # Adam at rate 1 drives the internal scales of this small network to NaN in the first epoch.
    X, y = blobs_images(n=20, size=8)
    clf = ScaleEquivariantClassifier(**{**SMALL, "max_epochs": 3, "batch_size": 4, **rates})
    with pytest.raises(ValueError) as caught:
        clf.fit(X, y)
    message = str(caught.value)
    assert message.startswith("Training diverged in epoch 1: the loss or the internal scales are no longer")
    assert f"lr={rates['lr']!r}, scale_lr={rates.get('scale_lr')!r}. Lower lr (or scale_lr" in message
    # At a sound rate the same fit trains on.
    ScaleEquivariantClassifier(**{**SMALL, "max_epochs": 3, "batch_size": 4}).fit(X, y)


def test_invalid_data_errors():
    X, y = blobs_images(n=10)
    clf = ScaleEquivariantClassifier(**SMALL)
    bad = X.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        clf.fit(bad, y)
    bad[0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="Input X contains infinity"):
        clf.fit(bad, y)
    with pytest.raises(ValueError, match="at least two classes, got 1 class"):
        clf.fit(X, np.zeros(10))
    with pytest.raises(ValueError, match="different numbers of samples"):
        clf.fit(X, y[:5])
    with pytest.raises(ValueError, match="requires y to be passed"):
        clf.fit(X, None)
    with pytest.raises(ValueError, match="5-D|2-D"):
        clf.fit(X[:, None, None], y)
    clf.fit(X, y)
    with pytest.raises(
        ValueError, match="X has 100 features, but ScaleEquivariantClassifier is expecting 144"
    ):
        clf.predict(X[:, :10, :10])
    with pytest.raises(ValueError, match="image_shape"):
        ScaleEquivariantClassifier(**SMALL, image_shape=(6, 6)).fit(X, y)


def test_partial_fit_continues_training():
    X, y = blobs_images(n=20)
    clf = ScaleEquivariantClassifier(**{**SMALL, "max_epochs": 1})
    clf.partial_fit(X, y)
    clf.partial_fit(X, y)
    assert len(clf.history) == 2
    with pytest.raises(ValueError, match=r"labels that are not among the classes \[0, 1\]: \[5, 6\]"):
        clf.partial_fit(X, y + 5)


def test_module_arguments_are_routed_to_the_architecture():
    X, y = blobs_images(n=20)
    clf = ScaleEquivariantClassifier(**SMALL, module__conv_kwargs={"stride": 2}).fit(X, y)
    assert clf.module_.conv.stride == 2


@pytest.mark.parametrize(
    "architecture, argument, read",
    [
        ("table1", {"module__max_order": 4}, lambda m: m.conv.weight.shape[-1] == 15),
        ("table1", {"module__pooled_size": 2}, lambda m: m.classifier.in_features == 4 * 2 * 2),
        ("sesn", {"module__hidden": 32}, lambda m: m.head[1].out_features == 32),
        ("cnn", {"module__hidden": 32}, lambda m: m.head[1].out_features == 32),
    ],
)
def test_no_module_argument_is_dropped(architecture, argument, read):
    X, y = blobs_images(n=20)
    clf = ScaleEquivariantClassifier(
        **{**SMALL, "architecture": architecture, "max_epochs": 1}, **argument
    ).fit(X, y)
    assert read(clf.module_)


def test_unknown_module_argument_names_itself():
    X, y = blobs_images(n=20)
    with pytest.raises(ValueError, match=r"module__bogus is not an argument of Table1Net.*max_order"):
        ScaleEquivariantClassifier(**SMALL, module__bogus=1).fit(X, y)


class TinyNet(torch.nn.Module):
    """A user's network: a builder like the registered ones (n_classes, in_channels, ...)."""

    def __init__(self, n_classes, in_channels=1, hidden=3, init_isr=None):
        super().__init__()
        self.init_isr = init_isr
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(in_channels, hidden, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1),
            torch.nn.Flatten(),
        )
        self.head = torch.nn.Linear(hidden, n_classes)

    def forward(self, x):
        return self.head(self.body(x))


def test_module_class_gets_classes_channels_and_module_arguments():
    X, y = blobs_images(n=20)
    clf = ScaleEquivariantClassifier(**SMALL, module=TinyNet, module__hidden=5).fit(
        X, np.array(["a", "b"])[y]
    )
    assert isinstance(clf.module_, TinyNet)
    assert clf.module_.head.out_features == 2 and clf.module_.head.in_features == 5
    assert clf.module_.init_isr == 2.0  # named in its signature, so the classifier's value reaches it
    assert clf.scales_ is None and clf.isr_ is None
    assert set(clf.predict(X)) <= {"a", "b"}


def test_module_instance_is_used_as_given():
    X, y = blobs_images(n=20)
    instance = TinyNet(2, hidden=4)
    clf = ScaleEquivariantClassifier(**SMALL, module=instance).fit(X, y)
    assert clf.module_ is instance
    rebuilt = ScaleEquivariantClassifier(**SMALL, module=TinyNet(2), module__hidden=6).fit(X, y)
    assert rebuilt.module_.head.in_features == 6


@pytest.mark.parametrize("module", ["table1", 3])
def test_module_that_is_not_a_network_is_refused(module):
    X, y = blobs_images(n=10)
    with pytest.raises(
        ValueError, match=f"module must be None, a torch.nn.Module class or instance.*got {module!r}"
    ):
        ScaleEquivariantClassifier(**SMALL, module=module).fit(X, y)


def test_huge_initial_isr_is_refused_before_allocating():
    X, y = blobs_images(n=10, size=16)
    clf = ScaleEquivariantClassifier(init_isr=1e6, max_epochs=1)
    with pytest.raises(ValueError, match=r"8000001 x 8000001 pixels .*init_isr=1000000.0.* GiB, more than"):
        clf.fit(X, y)
    assert not hasattr(clf, "module_")


def test_kernels_dwarfing_the_images_warn_only_for_networks_with_internal_scales():
    X = np.random.RandomState(0).rand(20, 4)
    y = np.arange(20) % 2
    with warnings.catch_warnings():
        warnings.simplefilter("error", LargeKernelWarning)
        ScaleEquivariantClassifier(max_epochs=1, module=TinyNet).fit(X, y)


@pytest.mark.parametrize("shape", [(6, 0, 5), (6, 5, 0), (6, 1, 0, 4)])
def test_empty_images_are_refused_naming_x(shape):
    with pytest.raises(ValueError, match=r"X of shape .* holds empty images"):
        ScaleEquivariantClassifier(**SMALL).fit(np.zeros(shape), np.arange(6) % 2)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a torch without CUDA")
def test_cuda_device_without_cuda_is_a_clear_error():
    X, y = blobs_images(n=10)
    with pytest.raises(ValueError, match=r"device='cuda' asks for a GPU, but CUDA is not available"):
        ScaleEquivariantClassifier(**SMALL, device="cuda").fit(X, y)
    with pytest.raises(ValueError, match=r"device must name a torch device.*got 'gpu0'"):
        ScaleEquivariantClassifier(**SMALL, device="gpu0").fit(X, y)


def test_save_params_load_params_round_trip(tmp_path):
    X, y = blobs_images(n=20)
    labels = np.array(["large", "small"])[y]
    trained = ScaleEquivariantClassifier(**SMALL).fit(X, labels)
    trained.save_params(f_params=tmp_path / "params.pt")
    with pytest.raises(ValueError, match=r"needs image_shape and classes.*image_shape=None"):
        ScaleEquivariantClassifier(**SMALL).initialize()
    fresh = ScaleEquivariantClassifier(**SMALL, image_shape=(12, 12), classes=["large", "small"]).initialize()
    np.testing.assert_allclose(fresh.scales_, [0.5, 1.0], rtol=1e-6)
    fresh.load_params(f_params=tmp_path / "params.pt")
    np.testing.assert_array_equal(fresh.scales_, trained.scales_)
    assert fresh.isr_ == trained.isr_ and fresh.sigma_basis_ == trained.sigma_basis_
    assert not np.allclose(fresh.scales_, [0.5, 1.0])
    np.testing.assert_array_equal(fresh.predict_proba(X), trained.predict_proba(X))
    np.testing.assert_array_equal(fresh.predict(X), trained.predict(X))


def test_prediction_batches_stay_within_working_memory():
    rng = np.random.RandomState(0)
    small, large = rng.rand(8, 12, 12).astype(np.float32), rng.rand(8, 96, 96).astype(np.float32)
    y = np.arange(8) % 2
    params = {**SMALL, "max_epochs": 1, "module__conv_kwargs": {"conv_impl": "direct"}}
    calls = []
    for X in (small, large):
        clf = ScaleEquivariantClassifier(**params).fit(X, y)
        unbounded = clf.predict_proba(X)
        limit = clf.set_params(working_memory=1.0).inference_batch_size()  # runs (and caches) the probe
        batch_sizes = []
        hook = clf.module_.register_forward_pre_hook(
            lambda module, inputs, sizes=batch_sizes: sizes.append(len(inputs[0]))
        )
        bounded = clf.predict_proba(X)
        hook.remove()
        np.testing.assert_allclose(bounded, unbounded, rtol=1e-5, atol=1e-7)
        calls.append((limit, batch_sizes))
    (small_limit, small_batches), (large_limit, large_batches) = calls
    assert small_batches == [8] and small_limit >= 8
    assert 1 <= large_limit < 8 and max(large_batches) == large_limit and sum(large_batches) == 8


class PairsDataset(torch.utils.data.Dataset):
    """(image, label) pairs, with or without a ``targets`` attribute."""

    def __init__(self, images, labels, with_targets=True):
        self.images, self.labels = torch.from_numpy(images), labels
        if with_targets:
            self.targets = labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        return self.images[index], self.labels[index]


def test_fit_on_a_dataset_equals_fit_on_arrays():
    X, y = blobs_images(n=30)
    labels = np.array(["large", "small"])[y]
    from_arrays = ScaleEquivariantClassifier(**SMALL).fit(X, labels)
    from_dataset = ScaleEquivariantClassifier(**SMALL).fit(PairsDataset(X, labels))
    np.testing.assert_array_equal(from_dataset.classes_, ["large", "small"])
    assert from_dataset.input_shape_ == (1, 12, 12) and from_dataset.n_features_in_ == 144
    np.testing.assert_array_equal(from_dataset.predict_proba(X), from_arrays.predict_proba(X))
    dataset = PairsDataset(X, labels)
    np.testing.assert_array_equal(from_dataset.predict(dataset), from_arrays.predict(X))
    assert from_dataset.score(dataset) == from_arrays.score(X, labels)


def test_dataset_without_targets_needs_classes():
    X, y = blobs_images(n=20)
    unlabelled = PairsDataset(X, y + 5, with_targets=False)
    with pytest.raises(ValueError, match=r"PairsDataset without a 'targets' attribute.*pass classes="):
        ScaleEquivariantClassifier(**SMALL).fit(unlabelled)
    clf = ScaleEquivariantClassifier(**SMALL, classes=[5, 6]).fit(unlabelled)
    assert set(clf.predict(unlabelled)) <= {5, 6}
    assert clf.score(unlabelled) == clf.score(X, y + 5)  # labels read sample by sample
    with pytest.raises(
        ValueError, match=r"sample 0 of the dataset has label 7, which is not one of the classes"
    ):
        ScaleEquivariantClassifier(**SMALL, classes=[5, 6]).fit(PairsDataset(X, y + 7, with_targets=False))
    with pytest.raises(ValueError, match="y must be None when X is a Dataset"):
        clf.fit(unlabelled, y)
    with pytest.raises(ValueError, match=r"sample 0 of the dataset is an image of shape \(1, 8, 8\)"):
        clf.predict(PairsDataset(X[:, :8, :8].copy(), y))


def test_dynamic_scale_mnist_streams_through_workers():
    from skscale.datasets import DynamicScaleMNIST, load_mnist

    mnist = load_mnist(source="bundled")
    chosen = np.random.RandomState(0).choice(len(mnist.target), 80, replace=False)
    images, labels = mnist.data[chosen], mnist.target[chosen]
    train = DynamicScaleMNIST(images, labels, canvas_size=28, scale_range=(1.0, 1.3))
    clf = ScaleEquivariantClassifier(**{**SMALL, "max_epochs": 2}, iterator_train__num_workers=1).fit(train)
    np.testing.assert_array_equal(clf.classes_, np.unique(labels))
    X, y, _ = train.to_arrays()
    assert clf.input_shape_ == (1, 28, 28)
    assert clf.score(train) == clf.score(X, y)
    assert len(clf.history) == 2 and len(clf.history[:, "isr"]) == 2


def test_warm_start_continues_training_with_the_first_classes():
    X, y = blobs_images(n=20)
    labels = np.array(["a", "b"])[y]
    clf = ScaleEquivariantClassifier(**{**SMALL, "max_epochs": 2}, warm_start=True).fit(X, labels)
    first_module = clf.module_
    clf.fit(X[labels == "a"], labels[labels == "a"])  # one class now: still the two of the first fit
    assert clf.module_ is first_module and len(clf.history) == 4
    np.testing.assert_array_equal(clf.classes_, ["a", "b"])
    cold = ScaleEquivariantClassifier(**{**SMALL, "max_epochs": 2}).fit(X, labels)
    assert len(cold.fit(X, labels).history) == 2


# ---------------------------------------------------------------------- init_isr="auto"
AUTO = dict(n_scales=3, n_filters=4, init_sigma_basis=1.0, max_epochs=1, batch_size=32, random_state=0)


def gaussian_blobs(n=40, side=48, octaves=(1.0, 2.5), seed=0):
    """Gaussian blobs of log-uniform widths (sigma in 2**octaves px) on pixel noise, 2 classes."""
    rng = np.random.default_rng(seed)
    sigma = 2.0 ** rng.uniform(*octaves, size=n)
    grid = np.arange(side) - (side - 1) / 2
    images = np.exp(-(grid[:, None] ** 2 + grid[None, :] ** 2) / (2 * sigma[:, None, None] ** 2))
    images += 0.02 * rng.standard_normal(images.shape)
    return images.astype(np.float32), np.arange(n) % 2, sigma


def test_auto_init_isr_starts_from_the_tolerance_model_of_the_estimated_scales():
    X, y, _ = gaussian_blobs()
    clf = ScaleEquivariantClassifier(init_isr="auto", scale_lr=0.0, **AUTO).fit(X, y)
    assert isinstance(clf.tolerance_, ToleranceModel) and isinstance(clf.init_isr_, float)
    expected = ToleranceModel(n_scales=3).fit(estimate_scales(X, y))
    assert clf.init_isr_ == pytest.approx(expected.isr_[0]) and clf.init_isr_ > 1.5
    assert clf.tolerance_.isr_[0] == pytest.approx(expected.isr_[0])
    # The network starts from it (scale_lr=0 keeps it) and its history records it.
    assert clf.isr_ == pytest.approx(clf.init_isr_, rel=1e-5)
    assert clf.history[0]["isr"] == pytest.approx(clf.init_isr_, rel=1e-5)
    assert clf.get_params()["init_isr"] == "auto"


def test_numeric_init_isr_sets_the_fitted_attributes_too():
    X, y, _ = gaussian_blobs(n=20)
    clf = ScaleEquivariantClassifier(init_isr=2.5, **AUTO).fit(X, y)
    assert clf.init_isr_ == 2.5 and clf.tolerance_ is None
    # Refitted with "auto" after a numeric init_isr, and back: the attributes follow.
    clf.set_params(init_isr="auto").fit(X, y)
    assert isinstance(clf.tolerance_, ToleranceModel) and clf.init_isr_ != 2.5
    clf.set_params(init_isr=3.0).fit(X, y)
    assert clf.init_isr_ == 3.0 and clf.tolerance_ is None


def test_auto_init_isr_reads_what_estimate_scales_returns(monkeypatch):
    X, y, _ = gaussian_blobs(n=30)
    calls = []
    scales = np.geomspace(1.0, 4.0, len(X))
    scales[[3, 7]] = np.nan  # images without an object are left out

    def fake_estimate(images, labels):
        calls.append((images.shape, np.asarray(labels).copy()))
        return scales[: len(images)]

    monkeypatch.setattr("skscale._init_isr.estimate_scales", fake_estimate)
    clf = ScaleEquivariantClassifier(init_isr="auto", **AUTO).fit(X, y)
    ((shape, labels),) = calls
    assert shape == (30, 1, 48, 48) and (labels == y).all()
    finite = scales[np.isfinite(scales)]
    np.testing.assert_allclose(clf.tolerance_.data_range_[0], [finite.min(), finite.max()])
    assert clf.init_isr_ == pytest.approx(ToleranceModel(n_scales=3).fit(finite).isr_[0])
    # A narrow distribution: the ISR is raised to the floor, so that learning can move it.
    monkeypatch.setattr("skscale._init_isr.estimate_scales", lambda images, labels: np.linspace(1, 1.01, 30))
    clf = ScaleEquivariantClassifier(init_isr="auto", **AUTO).fit(X, y)
    assert clf.tolerance_.isr_[0] < 1.25 and clf.init_isr_ == 1.25
    # No spread at all: a warning, the floor, and no tolerance model.
    monkeypatch.setattr("skscale._init_isr.estimate_scales", lambda images, labels: np.ones(len(images)))
    with pytest.warns(
        UserWarning, match="estimated scales of the 30 training images do not spread"
    ) as record:
        clf = ScaleEquivariantClassifier(init_isr="auto", **AUTO).fit(X, y)
    assert clf.init_isr_ == 1.25 and clf.tolerance_ is None
    assert record[0].filename == __file__  # the warning points at the user's fit


def test_auto_init_isr_reads_at_most_500_evenly_spaced_images(monkeypatch):
    seen = []

    def fake_estimate(images, labels):
        seen.append(len(images))
        return np.geomspace(1.0, 2.0, len(images))

    monkeypatch.setattr("skscale._init_isr.estimate_scales", fake_estimate)
    X = np.random.RandomState(0).rand(1200, 6, 6).astype(np.float32)
    y = np.arange(1200) % 3
    ScaleEquivariantClassifier(init_isr="auto", **AUTO).fit(X, y)
    assert seen == [500]


def test_auto_init_isr_is_deterministic_and_equal_on_arrays_and_datasets():
    X, y, _ = gaussian_blobs(n=30)
    labels = np.array(["a", "b"])[y]
    first = ScaleEquivariantClassifier(init_isr="auto", **AUTO).fit(X, labels)
    second = ScaleEquivariantClassifier(init_isr="auto", **AUTO).fit(X, labels)
    from_dataset = ScaleEquivariantClassifier(init_isr="auto", **AUTO).fit(PairsDataset(X, labels))
    assert first.init_isr_ == second.init_isr_ == from_dataset.init_isr_
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))
    np.testing.assert_array_equal(first.predict_proba(X), from_dataset.predict_proba(X))


def test_auto_init_isr_errors():
    blank = np.zeros((8, 16, 16), dtype=np.float32)
    clf = ScaleEquivariantClassifier(init_isr="auto", **AUTO)
    with (
        pytest.warns(UserWarning, match="hold no object"),
        pytest.raises(ValueError, match="init_isr='auto' found no object in the 8 training images"),
    ):
        clf.fit(blank, np.arange(8) % 2)
    assert not hasattr(clf, "module_")
    unfitted = ScaleEquivariantClassifier(init_isr="auto", image_shape=(16, 16), classes=[0, 1])
    message = r"init_isr='auto' estimates .*\.initialize\(\) before fit needs a number"
    with pytest.raises(ValueError, match=message):
        unfitted.initialize()


def test_auto_init_isr_in_a_pipeline_and_grid_search_estimates_per_fold(monkeypatch):
    X, y, _ = gaussian_blobs(n=40)
    sizes = []

    def recording_estimate(images, labels):
        sizes.append(len(images))
        return estimate_scales(images, labels)

    monkeypatch.setattr("skscale._init_isr.estimate_scales", recording_estimate)
    pipeline = Pipeline(
        [
            ("scale", FunctionTransformer(lambda X: X / X.max())),
            ("classifier", ScaleEquivariantClassifier(**AUTO)),
        ]
    )
    search = GridSearchCV(pipeline, {"classifier__init_isr": ["auto", 3.0]}, cv=2, refit=True).fit(X, y)
    assert [params["classifier__init_isr"] for params in search.cv_results_["params"]] == ["auto", 3.0]
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    # Two folds of 20 training images each, then the refit on all 40 if "auto" won.
    assert sizes[:2] == [20, 20]
    best = search.best_estimator_.named_steps["classifier"]
    assert sizes[2:] == ([40] if best.init_isr == "auto" else [])
    assert best.init_isr_ > 1.0


def test_default_scale_arguments_mean_the_architecture_own_and_given_values_win():
    sesn = ScaleEquivariantClassifier(architecture="sesn", image_shape=(28, 28), classes=[0, 1]).initialize()
    np.testing.assert_allclose(sesn.scales_, 1.5 * 2 ** (np.arange(4) / 3), rtol=1e-5)
    assert sesn.scale_spec_ == SESNNet.scale_defaults and sesn.init_isr_ == 2.0
    given = ScaleEquivariantClassifier(
        architecture="sesn", n_scales=3, init_isr=4.0, kernel_extent=4, image_shape=(28, 28), classes=[0, 1]
    ).initialize()
    np.testing.assert_allclose(given.scales_, [1.5, 3.0, 6.0], rtol=1e-5)
    assert given.scale_spec_ == ScaleSpec(n_scales=3, init_sigma_basis=1.5, init_isr=4.0, kernel_extent=4.0)
    table1 = ScaleEquivariantClassifier(image_shape=(12, 12), classes=[0, 1]).initialize()
    assert table1.scale_spec_ == ScaleSpec(init_sigma_basis=1.0, kernel_extent=4.0)
    assert table1.scales_.tolist() == pytest.approx([1.0, 3**0.5, 3.0])
    # module__ names a scale hyper-parameter: it updates the spec the network is built with.
    routed = ScaleEquivariantClassifier(
        architecture="sesn", module__n_scales=2, image_shape=(28, 28), classes=[0, 1]
    ).initialize()
    assert routed.scale_spec_.n_scales == 2 and routed.scales_.shape == (2,)
    plain = ScaleEquivariantClassifier(architecture="cnn", image_shape=(28, 28), classes=[0, 1]).initialize()
    assert plain.scale_spec_ is None and plain.scales_ is None


def test_repr_names_the_architecture_and_the_scales_used():
    clf = ScaleEquivariantClassifier(architecture="sesn", image_shape=(28, 28), classes=[0, 1])
    assert "architecture='sesn'" in repr(clf)
    assert "scale_spec_=ScaleSpec(n_scales=4" in repr(clf.initialize())
    own = ScaleEquivariantClassifier(module=torch.nn.Linear, module__in_features=4, module__out_features=2)
    assert "architecture" not in repr(own)

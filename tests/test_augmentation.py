import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from skscale import ScaleEquivariantClassifier
from skscale.augmentation import augmentation_generator, log_uniform_factors, rescale_batch

from .conftest import SMALL as NETWORK


def gaussian_blobs(n, size=16, radius=2.0):
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    blob = np.exp(-(yy**2 + xx**2) / (2 * radius**2)).astype(np.float32)
    return torch.from_numpy(np.broadcast_to(blob, (n, 1, size, size)).copy())


def spread(images):
    """Root mean square distance of the intensity from the image centre."""
    size = images.shape[-1]
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    weights = images[:, 0].numpy()
    return np.sqrt((weights * (yy**2 + xx**2)).sum(axis=(1, 2)) / weights.sum(axis=(1, 2)))


def test_rescale_batch_rescales_each_image_about_its_centre():
    blobs = gaussian_blobs(3, size=32)
    rescaled = rescale_batch(blobs, [1.0, 2.0, 0.5])
    assert rescaled.shape == blobs.shape
    torch.testing.assert_close(rescaled[0], blobs[0], atol=1e-5, rtol=0)
    ratios = spread(rescaled) / spread(blobs)
    np.testing.assert_allclose(ratios, [1.0, 2.0, 0.5], rtol=0.05)


def test_factors_are_log_uniform_and_reproducible():
    factors = log_uniform_factors(20_000, 0.5, 4.0, augmentation_generator(0))
    assert factors.min() >= 0.5 and factors.max() <= 4.0
    counts, _ = np.histogram(np.log(factors), bins=6, range=(np.log(0.5), np.log(4.0)))
    assert counts.min() > 0.9 * counts.mean()  # flat in log space
    np.testing.assert_array_equal(factors, log_uniform_factors(20_000, 0.5, 4.0, augmentation_generator(0)))
    later = log_uniform_factors(20_000, 0.5, 4.0, augmentation_generator(0, epochs_done=3))
    assert not np.array_equal(factors, later)


SMALL = {**NETWORK, "max_epochs": 3, "batch_size": 16, "iterator_train__shuffle": False}


def data(n=16, size=12):
    rng = np.random.RandomState(0)
    return rng.rand(n, 1, size, size).astype(np.float32), np.arange(n) % 2


def test_training_batches_are_rescaled_anew_every_epoch_and_prediction_is_not():
    X, y = data()
    seen = []
    clf = ScaleEquivariantClassifier(**SMALL, scale_augmentation=(0.5, 2.0))
    clf.fit(X, y)
    # Training steps only: the precise-BN pass at the end of partial_fit reads the images
    # as they are, in eval mode.
    hook = clf.module_.register_forward_pre_hook(
        lambda module, inputs: seen.append(inputs[0].clone()) if module.training else None
    )
    clf.partial_fit(X, y)  # three more epochs, one full batch each (no shuffling)
    hook.remove()
    training, predicted = seen, []
    clf.inference_batch_size()  # the memory probe, outside the recording
    hook = clf.module_.register_forward_pre_hook(lambda module, inputs: predicted.append(inputs[0].clone()))
    clf.predict_proba(X)
    hook.remove()
    for batch in training:
        assert not torch.allclose(batch, torch.from_numpy(X))
    assert not torch.allclose(training[0], training[1]) and not torch.allclose(training[1], training[2])
    torch.testing.assert_close(torch.cat(predicted), torch.from_numpy(X))


def test_augmentation_is_reproducible_with_random_state_and_changes_the_model():
    X, y = data()
    first = ScaleEquivariantClassifier(**SMALL, scale_augmentation=(0.5, 2.0)).fit(X, y)
    second = ScaleEquivariantClassifier(**SMALL, scale_augmentation=(0.5, 2.0)).fit(X, y)
    plain = ScaleEquivariantClassifier(**SMALL).fit(X, y)
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))
    np.testing.assert_array_equal(first.scales_, second.scales_)
    assert not np.array_equal(first.predict_proba(X), plain.predict_proba(X))
    np.testing.assert_array_equal(clone(first).fit(X, y).predict_proba(X), first.predict_proba(X))
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(first)).predict_proba(X), first.predict_proba(X))


def test_augmentation_in_grid_search():
    X, y = data(n=24)
    search = GridSearchCV(
        ScaleEquivariantClassifier(**SMALL), {"scale_augmentation": [None, (0.7, 1.4)]}, cv=2
    )
    search.fit(X, y)
    assert [params["scale_augmentation"] for params in search.cv_results_["params"]] == [None, (0.7, 1.4)]
    direct = ScaleEquivariantClassifier(**SMALL, **search.best_params_).fit(X, y)
    np.testing.assert_array_equal(search.best_estimator_.predict_proba(X), direct.predict_proba(X))


@pytest.mark.parametrize("value", [(2.0, 1.0), (0.0, 1.0), "wide", (1.0,)])
def test_invalid_augmentation_range(value):
    X, y = data()
    with pytest.raises(ValueError, match=r"scale_augmentation must be a pair \(low, high\)"):
        ScaleEquivariantClassifier(**SMALL, scale_augmentation=value).fit(X, y)

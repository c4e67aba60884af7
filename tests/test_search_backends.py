"""Tests of skscale.search_backends: loky and Dask backends, torch threads per worker."""

import os
import pickle
import subprocess
import sys

import joblib
import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from skscale import ScaleEquivariantClassifier
from skscale.progress import DaskProgressChannel, ScaleScorer
from skscale.search_backends import (
    _torch_threads_plugin,
    search_backend,
    set_torch_threads,
    torch_threads_in_this_process,
)

from .conftest import blobs_images


def tiny_search(channel):
    """A small search whose configurations score differently; refit on accuracy."""
    classifier = ScaleEquivariantClassifier(
        n_filters=4, init_sigma_basis=0.7, max_epochs=3, batch_size=16, random_state=0
    )
    return GridSearchCV(
        classifier,
        {"parameterisation": ["fixed", "isr"], "lr": [1e-4, 0.05]},
        scoring=ScaleScorer(channel),
        refit="accuracy",
        cv=StratifiedKFold(2, shuffle=True, random_state=0),
        error_score="raise",
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(backend="spark"), "backend must be one of 'loky', 'dask', got 'spark'"),
        (dict(n_jobs=0), "n_jobs must be an integer >= 1 or None, got 0"),
        (dict(torch_threads=1.5), "torch_threads must be an integer >= 1, got 1.5"),
        (dict(scheduler="tcp://127.0.0.1:8786"), "scheduler is only used by backend='dask'"),
    ],
)
def test_search_backend_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        with search_backend(**kwargs):
            pass


def test_set_torch_threads():
    before = torch.get_num_threads()
    try:
        assert set_torch_threads(1) == 1
        with pytest.raises(ValueError, match="n_threads must be an integer >= 1, got 0"):
            set_torch_threads(0)
    finally:
        torch.set_num_threads(before)
    with torch_threads_in_this_process(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_a_single_job_runs_here_with_the_requested_torch_threads():
    before = torch.get_num_threads()
    with search_backend("loky", n_jobs=1, torch_threads=1) as workers:
        assert torch.get_num_threads() == 1
        assert joblib.Parallel()(joblib.delayed(os.getpid)() for _ in range(2)) == [os.getpid()] * 2
    assert torch.get_num_threads() == before
    assert workers.description == "loky: this process x 1 torch thread"


def test_loky_workers_run_single_threaded_torch():
    with search_backend("loky", n_jobs=2, torch_threads=1) as workers:
        threads = joblib.Parallel()(joblib.delayed(torch.get_num_threads)() for _ in range(4))
    assert workers.n_workers == 2 and workers.torch_threads == 1
    assert workers.description == "loky: 2 worker processes x 1 torch thread"
    assert threads == [1, 1, 1, 1]


# joblib's own Dask backend warns that its apply_async interface is deprecated.
@pytest.mark.filterwarnings("ignore:`apply_async` is deprecated:DeprecationWarning")
def test_dask_local_cluster_matches_the_default_backend():
    pytest.importorskip("distributed", reason="the dask extra is not installed")
    X, y = blobs_images(n=48, noise=0.3)
    with search_backend("loky", n_jobs=2) as workers:
        reference = tiny_search(workers.channel).fit(X, y)
        reference_records = workers.channel.read_new()

    with search_backend("dask", n_jobs=2, torch_threads=1) as workers:
        assert isinstance(workers.channel, DaskProgressChannel)
        assert workers.n_workers == 2
        assert workers.description.startswith("dask: local cluster at tcp://")
        assert set(workers.client.run(torch.get_num_threads).values()) == {1}
        if "MALLOC_TRIM_THRESHOLD_" not in os.environ:  # dask's default would slow torch down
            assert set(workers.client.run(os.environ.get, "MALLOC_TRIM_THRESHOLD_").values()) == {None}
        search = tiny_search(workers.channel).fit(X, y)
        records = workers.channel.read_new()

    assert search.best_params_ == reference.best_params_
    np.testing.assert_allclose(
        search.cv_results_["mean_test_accuracy"], reference.cv_results_["mean_test_accuracy"], atol=1e-12
    )
    # The configurations really differ (lr=1e-4 barely trains), so the match is not a tie.
    assert np.ptp(reference.cv_results_["mean_test_accuracy"]) > 0.1
    assert len(records) == len(reference_records) == 8
    key = lambda record: (record["parameterisation"], record["accuracy"], record["isr"])  # noqa: E731
    assert sorted(map(key, records)) == sorted(map(key, reference_records))
    assert all(len(record["isr_history"]) == 3 for record in records)


def test_importing_the_module_does_not_import_dask():
    code = (
        "import sys, skscale.model_selection, skscale.search_backends, skscale.demo; "
        "print(sorted({'dask', 'distributed'} & set(sys.modules)))"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "[]"


def test_torch_threads_plugin_pickles_by_reference_and_sets_the_threads():
    pytest.importorskip("distributed", reason="the dask extra is not installed")
    from distributed.diagnostics.plugin import WorkerPlugin

    plugin = _torch_threads_plugin(1)
    assert isinstance(plugin, WorkerPlugin)
    # Workers unpickle it through the module-level factory, not a class defined in a function.
    assert b"_torch_threads_plugin" in pickle.dumps(plugin)
    restored = pickle.loads(pickle.dumps(plugin))
    assert type(restored) is type(plugin) and restored.n_threads == 1
    before = torch.get_num_threads()
    try:
        restored.setup(worker=None)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


# ------------------------------------------------------------------ issue 28: results for any n_jobs
def _cross_val(n_jobs, *, backend, torch_threads=None):
    from sklearn.model_selection import cross_val_predict, cross_val_score

    X, y = blobs_images(n=48, size=16, noise=0.3)
    classifier = ScaleEquivariantClassifier(
        n_filters=4, max_epochs=3, batch_size=16, lr=0.05, random_state=0, torch_threads=torch_threads
    )
    cv = StratifiedKFold(2, shuffle=True, random_state=0)
    if backend:
        with search_backend("loky", n_jobs=n_jobs):
            scores = cross_val_score(classifier, X, y, cv=cv, scoring="neg_log_loss")
            predicted = cross_val_predict(classifier, X, y, cv=cv, method="predict_proba")
    else:
        scores = cross_val_score(classifier, X, y, cv=cv, scoring="neg_log_loss", n_jobs=n_jobs)
        predicted = cross_val_predict(classifier, X, y, cv=cv, method="predict_proba", n_jobs=n_jobs)
    return scores, predicted


@pytest.mark.skipif(joblib.cpu_count() < 2, reason="joblib gives workers the parent's thread count on 1 core")
def test_cross_validation_inside_search_backend_is_the_same_for_any_n_jobs():
    # One worker runs the fits here with torch_threads threads, two workers with as many each.
    scores_1, predicted_1 = _cross_val(1, backend=True)
    scores_2, predicted_2 = _cross_val(2, backend=True)
    np.testing.assert_array_equal(scores_1, scores_2)
    np.testing.assert_array_equal(predicted_1, predicted_2)


def test_plain_cross_validation_is_the_same_for_any_n_jobs_with_fixed_torch_threads():
    # Without torch_threads the parent fits on torch's thread count and loky's workers on
    # cpu_count // n_jobs: the float sums, and so the last digits, differ (README).
    scores_1, predicted_1 = _cross_val(1, backend=False, torch_threads=1)
    scores_2, predicted_2 = _cross_val(2, backend=False, torch_threads=1)
    np.testing.assert_array_equal(scores_1, scores_2)
    np.testing.assert_array_equal(predicted_1, predicted_2)

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("accelerate")

from accelerate import Accelerator  # noqa: E402

from skscale.accelerate import AcceleratedClassifier  # noqa: E402
from skscale.callbacks import SCALE_PARAM_GROUP  # noqa: E402

WORKER = Path(__file__).with_name("_accelerate_worker.py")
SMALL = {"n_filters": 4, "init_sigma_basis": 1.0, "init_isr": 2.0, "max_epochs": 2, "random_state": 0}


def _data(n=40):
    rng = np.random.RandomState(0)
    X = rng.rand(n, 12, 12).astype("float32")
    y = np.where(X[:, 4:8, 4:8].mean(axis=(1, 2)) > 0.5, "bright", "dark")
    return X, y


def test_single_process_fit_predict_score():
    X, y = _data()
    clf = AcceleratedClassifier(**SMALL, accelerator=Accelerator(cpu=True)).fit(X, y)
    assert clf.predict(X).shape == (len(X),)
    assert set(clf.predict(X)) <= set(clf.classes_)
    assert 0 <= clf.score(X, y) <= 1
    assert clf.predict_proba(X).shape == (len(X), 2)
    # the classifier's hooks under the mixin: the scale group, the scale history, unwrapped after fit
    assert [group.get("name") for group in clf.optimizer_.param_groups][-1] == SCALE_PARAM_GROUP
    assert len(clf.history[:, "scales"]) == 2
    assert not isinstance(clf.module_, torch.nn.parallel.DistributedDataParallel)
    assert clf.scales_.shape == (3,)


def test_single_process_matches_the_classifier_hooks():
    # Same seed, same data: scale_augmentation and the seeding reach the mixin's training step.
    X, y = _data()
    settings = {**SMALL, "scale_augmentation": (0.8, 1.25)}
    first = AcceleratedClassifier(**settings, accelerator=Accelerator(cpu=True)).fit(X, y)
    second = AcceleratedClassifier(**settings, accelerator=Accelerator(cpu=True)).fit(X, y)
    np.testing.assert_array_equal(first.scales_, second.scales_)
    plain = AcceleratedClassifier(**SMALL, accelerator=Accelerator(cpu=True)).fit(X, y)
    assert not np.array_equal(first.scales_, plain.scales_)


def test_checks_hyper_parameters_and_is_silent(capsys):
    X, y = _data()
    with pytest.raises(ValueError, match="n_filters"):
        AcceleratedClassifier(n_filters=0, accelerator=Accelerator(cpu=True)).fit(X, y)
    AcceleratedClassifier(**SMALL, accelerator=Accelerator(cpu=True)).fit(X, y)
    assert capsys.readouterr().out == ""


def test_two_processes_end_with_the_same_weights_and_scales(tmp_path):
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(WORKER.parents[1])}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    result = subprocess.run(
        [*command, str(WORKER), str(tmp_path)], env=environment, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-4000:]
    info = [torch.load(tmp_path / f"rank{rank}-info.pt") for rank in (0, 1)]
    assert info[0]["n_processes"] == 2
    assert info[0]["predictions"] == info[1]["predictions"] and len(info[0]["predictions"]) == 64
    initial_scales = torch.tensor([1.0, 2**0.5, 2.0], dtype=torch.float64)
    previous = None
    for stage in ("fit", "partial_fit"):  # partial_fit: wrapped again, so still in step
        states = [torch.load(tmp_path / f"rank{rank}-{stage}.pt") for rank in (0, 1)]
        assert states[0].keys() == states[1].keys()
        for name, tensor in states[0].items():
            torch.testing.assert_close(tensor, states[1][name], rtol=0, atol=0, msg=f"{stage}: {name}")
        assert not torch.allclose(states[0]["scales"], initial_scales)
        if previous is not None:
            assert not torch.equal(states[0]["conv.weight"], previous["conv.weight"])
            assert not torch.equal(states[0]["scales"], previous["scales"])
        previous = states[0]

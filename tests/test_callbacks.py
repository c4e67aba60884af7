import numpy as np
import pytest
import torch
from skorch.callbacks import LRScheduler

from skscale import ScaleEquivariantClassifier
from skscale.callbacks import scale_history

from .conftest import SMALL as NETWORK

SMALL = {**NETWORK, "max_epochs": 4, "batch_size": 8}


def data(n=16, size=10):
    rng = np.random.RandomState(0)
    return rng.rand(n, size, size).astype(np.float32), np.arange(n) % 2


def scale_group(clf):
    return next(group for group in clf.optimizer_.param_groups if group.get("name") == "internal_scales")


def test_warm_up_is_a_per_step_multiplier():
    X, y = data()  # two steps per epoch
    clf = ScaleEquivariantClassifier(**SMALL, scale_lr=0.1, scale_warmup_epochs=2).fit(X, y)
    # last step of each epoch: (epoch + 1/2) / 2 of the rate, then the full rate
    assert clf.history[:, "scale_lr"] == pytest.approx([0.025, 0.075, 0.1, 0.1])
    assert scale_group(clf)["lr"] == pytest.approx(0.1)  # the multiplier leaves the group's rate alone


def test_a_users_lr_scheduler_changes_the_scale_rate():
    X, y = data()
    halve = LRScheduler(policy=torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5)
    clf = ScaleEquivariantClassifier(**SMALL, scale_lr=0.1, callbacks=[("halve", halve)]).fit(X, y)
    assert clf.history[:, "scale_lr"] == pytest.approx([0.1, 0.05, 0.025, 0.0125])
    assert scale_group(clf)["lr"] == pytest.approx(0.1 * 0.5**4)
    warmed = ScaleEquivariantClassifier(
        **SMALL, scale_lr=0.1, scale_warmup_epochs=2, callbacks=[("halve", halve)]
    ).fit(X, y)
    assert warmed.history[:, "scale_lr"] == pytest.approx([0.025, 0.075 * 0.5, 0.025, 0.0125])


def test_scale_history_reads_the_recorded_trajectory():
    X, y = data()
    clf = ScaleEquivariantClassifier(**SMALL).fit(X, y)
    isr = scale_history(clf)
    assert isr.shape == (4,) and isr[-1] == pytest.approx(clf.isr_)
    assert scale_history(clf.history, "sigma_basis")[-1] == pytest.approx(clf.sigma_basis_)
    with pytest.raises(ValueError, match="the history has no 'bogus' column"):
        scale_history(clf, "bogus")

"""The resumable fit runner of the benchmarks (harness.run_fits_resumable, baselines.run)."""

import json
import math

import numpy as np
import pytest
from skorch.callbacks import Callback

from benchmarks import baselines, config, harness


class CountingFit:
    """A fake fit: a record computed from its task, counting its calls; raises after ``fail_after``."""

    def __init__(self, fail_after=None):
        self.calls, self.fail_after = [], fail_after

    def __call__(self, seed, setting):
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise KeyboardInterrupt("stopped by the user")
        self.calls.append((seed, setting))
        return {"error": seed + 0.1 * setting, "val_history": [seed, seed / 3]}


TASKS = [(seed, setting) for seed in range(3) for setting in (0, 1)]
KEYS = [harness.fit_key(seed=seed, setting=setting) for seed, setting in TASKS]


def test_a_second_run_skips_the_finished_fits_and_returns_the_same(tmp_path):
    journal = tmp_path / "fits.jsonl"
    first_fit, second_fit = CountingFit(), CountingFit()
    first = harness.run_fits_resumable(first_fit, TASKS, KEYS, journal)
    second = harness.run_fits_resumable(second_fit, TASKS, KEYS, journal)
    assert first_fit.calls == TASKS and second_fit.calls == []
    assert second == first == [{"error": s + 0.1 * t, "val_history": [s, s / 3]} for s, t in TASKS]
    assert len(journal.read_text().splitlines()) == len(TASKS)  # nothing appended the second time
    # A new task (another seed) runs alone.
    more = [*TASKS, (3, 0)]
    third_fit = CountingFit()
    harness.run_fits_resumable(third_fit, more, [*KEYS, harness.fit_key(seed=3, setting=0)], journal)
    assert third_fit.calls == [(3, 0)]


def test_an_interrupted_run_resumes_where_it_stopped(tmp_path):
    journal = tmp_path / "fits.jsonl"
    interrupted = CountingFit(fail_after=4)
    with pytest.raises(KeyboardInterrupt):
        harness.run_fits_resumable(interrupted, TASKS, KEYS, journal)
    assert len(journal.read_text().splitlines()) == 4  # every finished fit is on disk
    # A write cut short by the interruption is ignored and its fit runs again.
    with journal.open("a") as stream:
        stream.write('{"key": "{\\"seed\\":2,\\"setting\\":0}", "result": {"err')
    resumed_fit = CountingFit()
    resumed = harness.run_fits_resumable(resumed_fit, TASKS, KEYS, journal)
    assert resumed_fit.calls == TASKS[4:]
    assert resumed == harness.run_fits_resumable(CountingFit(), TASKS, KEYS, tmp_path / "fresh.jsonl")


def test_resumable_fits_on_workers_write_each_result(tmp_path):
    journal = tmp_path / "fits.jsonl"
    tasks = [(4.0,), (9.0,), (1.0,)]
    keys = [harness.fit_key(x=x) for (x,) in tasks]
    assert harness.run_fits_resumable(math.sqrt, tasks, keys, journal, n_jobs=2, costs=[1, 3, 2]) == [2, 3, 1]
    assert {json.loads(line)["key"] for line in journal.read_text().splitlines()} == set(keys)

    def never(x):
        raise AssertionError("every fit is in the journal")

    assert harness.run_fits_resumable(never, tasks, keys, journal, n_jobs=2) == [2.0, 3.0, 1.0]


def test_keys_must_be_distinct_and_a_corrupt_journal_is_refused(tmp_path):
    with pytest.raises(ValueError, match="keys must be 2 distinct strings"):
        harness.run_fits_resumable(CountingFit(), TASKS[:2], [KEYS[0], KEYS[0]], tmp_path / "j.jsonl")
    journal = tmp_path / "corrupt.jsonl"
    journal.write_text("not json\n" + json.dumps({"key": KEYS[0], "result": 1}) + "\n")
    with pytest.raises(ValueError, match="line 1, is not a fit record"):
        harness.read_journal(journal)


def fake_fit_one(
    settings, dataset, seed, augmented, architecture, parameterisation, device="cpu", checkpoints=None
):
    fake_fit_one.calls += 1
    error = 1.0 + seed + 0.5 * augmented + 0.01 * len(architecture)
    return {
        "error": error,
        "val_error": error,
        "best_epoch": 1,
        "val_history": [error + 1.0] * (settings["max_epochs"] - 1) + [error],
        "fit_s": 1800.0,
        "predict_s": 360.0,
        "scales": [1.5, 3.0] if architecture == "sesn" else None,
        "parameters": 100,
        "n_test": settings["n_test"],
    }


def test_baselines_run_resumes_from_its_journal_keyed_by_the_protocol(tmp_path, monkeypatch):
    settings = {**config.PROFILES["smoke"].mnist_scale, "seeds": (0, 1), "max_epochs": 3}
    monkeypatch.setattr(baselines, "fit_one", fake_fit_one)
    journal = harness.journal_path(tmp_path / "baselines-smoke-mnist.md")
    assert journal.name == "baselines-smoke-mnist.fits.jsonl"
    fake_fit_one.calls = 0
    assert baselines.stored_fits(settings, "mnist", journal) == 0
    first, _ = baselines.run(settings, "mnist", journal=journal)
    n_fits = fake_fit_one.calls
    assert n_fits == 2 * 2 * len(first)
    assert baselines.resumed_sentence(first, 0) == ""
    assert baselines.stored_fits(settings, "mnist", journal) == n_fits
    second, _ = baselines.run(settings, "mnist", journal=journal)
    assert fake_fit_one.calls == n_fits and second == first
    # The report of a resumed run sums the fits' own times: 0.6 h each.
    assert f" {n_fits} of the {n_fits} fits were read" in baselines.resumed_sentence(second, n_fits)
    assert f"took {0.6 * n_fits:.1f} h summed over the fits" in baselines.resumed_sentence(second, n_fits)
    np.testing.assert_allclose(
        first["cnn/fixed"]["augmented"]["val_history"], [[2.53, 2.53, 1.53], [3.53, 3.53, 2.53]]
    )
    keys = [json.loads(json.loads(line)["key"]) for line in journal.read_text().splitlines()]
    assert {key["setting"] for key in keys} == {"plain", "augmented"} and {key["seed"] for key in keys} == {
        0,
        1,
    }
    # Another protocol setting is another fit.
    baselines.run({**settings, "lr": 1e-2}, "mnist", journal=journal)
    assert fake_fit_one.calls == 2 * n_fits
    # Only the seeds not yet fitted run.
    assert baselines.stored_fits({**settings, "seeds": (0, 1, 2)}, "mnist", journal) == n_fits
    baselines.run({**settings, "seeds": (0, 1, 2)}, "mnist", journal=journal)
    assert fake_fit_one.calls == 2 * n_fits + n_fits // 2


def test_fit_one_records_the_validation_error_of_every_epoch():
    settings = {**config.PROFILES["smoke"].mnist_scale, "max_epochs": 2}
    record = baselines.fit_one(settings, "mnist", 0, True, "cnn", "fixed")
    history = record["val_history"]
    assert len(history) == 2 and all(0 <= value <= 100 for value in history)
    assert record["val_error"] == pytest.approx(history[record["best_epoch"] - 1])
    assert record["val_error"] == pytest.approx(min(history))
    assert np.isfinite(record["error"])


def test_the_plus_rows_draw_uniform_factors_with_bicubic_resampling():
    settings = config.PROFILES["smoke"].mnist_scale
    augmented = baselines.make_classifier(settings, 0, True, "cnn", "fixed")
    assert augmented.scale_augmentation == (0.5, 2.0)
    assert augmented.scale_augmentation_draw == "uniform"
    assert augmented.scale_augmentation_interpolation == "bicubic"
    assert baselines.make_classifier(settings, 0, False, "cnn", "fixed").scale_augmentation is None
    assert any("RandomAffine" in why and "uniform" in why for _, why in config.PAPER_DIFFERENCES)


class FakeNet:
    """What ``harness.UntilConverged`` reads and writes: a skorch history and an optimiser."""

    def __init__(self):
        import torch
        from skorch.history import History

        from skscale.callbacks import SCALE_PARAM_GROUP

        weights, scales = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
        self.history = History()
        self.optimizer_ = torch.optim.SGD(
            [{"params": [weights]}, {"params": [scales], "lr": 0.5, "name": SCALE_PARAM_GROUP}], lr=1.0
        )

    def epoch(self, callback, val_error):
        self.history.new_epoch()
        self.history.record("valid_acc", 1.0 - val_error / 100.0)
        callback.on_epoch_end(self)

    def rates(self):
        return [group["lr"] for group in self.optimizer_.param_groups]


def test_until_converged_decays_both_rates_at_each_plateau_and_then_stops():
    net, callback = FakeNet(), harness.UntilConverged(2, 0.1, 0.75)
    # Falling by more than 0.5 points every epoch: no plateau, no decay.
    for error in (30.0, 20.0, 15.0, 12.0, 10.0):
        net.epoch(callback, error)
    assert net.rates() == [1.0, 0.5] and net.history[:, "lr_decays"] == [0] * 5
    # Three epochs without 0.5 points of gain: the first plateau decays both rates.
    for error in (9.8, 10.1, 9.9):
        net.epoch(callback, error)
    assert net.rates() == pytest.approx([0.1, 0.375]) and net.history[-1, "lr_decays"] == 1
    # The new rates get three epochs of their own before the next verdict, even flat ones:
    # the window then holds only epochs at the new rates.
    for error in (9.9, 9.9):
        net.epoch(callback, error)
        assert net.history[-1, "lr_decays"] == 1
    net.epoch(callback, 9.9)  # the second plateau
    assert net.rates() == pytest.approx([0.01, 0.28125]) and net.history[-1, "lr_decays"] == 2
    for error in (8.0, 7.0, 6.0, 6.2, 5.9):  # improving again at the lower rates
        net.epoch(callback, error)
        assert net.history[-1, "lr_decays"] == 2
    assert not any(net.history[:, "stop"])
    with pytest.raises(KeyboardInterrupt):  # the third plateau ends the fit (skorch catches this)
        net.epoch(callback, 6.1)
    assert net.history[-1, "lr_decays"] == 2 and net.rates() == pytest.approx([0.01, 0.28125])
    assert len(net.history) == 17 and net.history[-1, "stop"]
    # Deferred, the stop is only recorded: StopWhenRecorded, run after it, ends the fit.
    deferred = FakeNet()
    callback.set_params(defer_stop=True)
    for error in net.history[:, "valid_acc"]:
        deferred.epoch(callback, 100.0 * (1.0 - error))
    assert deferred.history[:, "stop"] == net.history[:, "stop"]
    with pytest.raises(KeyboardInterrupt):
        harness.StopWhenRecorded().on_epoch_end(deferred)


def _resumable_classifier(callbacks=()):
    from skorch.dataset import Dataset
    from skorch.helper import predefined_split

    from skscale import ScaleEquivariantClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 12, 12)).astype(np.float32)
    y = (X[:, 4:8, 4:8].mean(axis=(1, 2)) > 0).astype(np.int64)
    valid = Dataset(X[:32, None], y[:32])
    clf = ScaleEquivariantClassifier(
        architecture="cnn",
        n_filters=4,
        batch_size=16,
        lr=1e-2,
        train_split=predefined_split(valid),
        callbacks=list(callbacks) or None,
        random_state=0,
        verbose=0,
    )
    return clf, X, y


class Interrupt(Exception):
    pass


class EpochLog(Callback):
    """A skorch callback counting the epochs it saw begin; raises after ``fail_after`` of them."""

    def __init__(self, fail_after=None):
        self.fail_after = fail_after
        self.begun = 0

    def on_epoch_begin(self, net, **kwargs):
        self.begun += 1

    def on_epoch_end(self, net, **kwargs):
        if self.fail_after is not None and self.begun >= self.fail_after:
            raise Interrupt("the machine went away")


class Snapshots(Callback):
    """A skorch callback keeping a copy of the network's parameters after every epoch."""

    def __init__(self):
        self.weights = {}

    def on_epoch_end(self, net, **kwargs):
        self.weights[len(net.history)] = {
            name: value.detach().clone() for name, value in net.module_.named_parameters()
        }


def test_a_fit_cut_short_continues_from_its_last_saved_epoch(tmp_path):
    import torch

    folder = tmp_path / "fit"
    cut, before = EpochLog(fail_after=3), Snapshots()
    clf, X, y = _resumable_classifier([("snapshots", before), ("log", cut)])
    with pytest.raises(Interrupt):
        harness.resumable_fit(clf, X, y, folder, max_epochs=6)
    # The failing epoch ended before the last checkpoint saved it: two epochs are on disk.
    saved = json.loads((folder / "last_history.json").read_text())
    assert [row["epoch"] for row in saved] == [1, 2]
    log, after = EpochLog(), Snapshots()
    resumed, X, y = _resumable_classifier([("snapshots", after), ("log", log)])
    harness.resumable_fit(resumed, X, y, folder, max_epochs=6)
    assert log.begun == 4  # epochs 3 to 6 only
    assert resumed.history[:, "epoch"] == [1, 2, 3, 4, 5, 6]
    assert resumed.history[:2, "valid_acc"] == [row["valid_acc"] for row in saved]
    assert resumed.history[:2, "dur"] == [row["dur"] for row in saved]
    # It ends with the weights of its best-validation epoch (here not the last one), over both runs.
    accuracies = resumed.history[:, "valid_acc"]
    best = accuracies.index(max(accuracies)) + 1
    assert best < len(accuracies)
    snapshots = {**{epoch: w for epoch, w in before.weights.items() if epoch <= 2}, **after.weights}
    for name, value in resumed.module_.named_parameters():
        torch.testing.assert_close(value.detach(), snapshots[best][name])
    assert harness.best_epoch(resumed) == (best, pytest.approx(100.0 * (1.0 - max(accuracies))))
    journal = tmp_path / "baselines-cpu.fits.jsonl"
    assert harness.checkpoints_path(journal) == tmp_path / "baselines-cpu.checkpoints"


class CtrlC(Callback):
    """Raises ``KeyboardInterrupt`` at the end of epoch ``at``, as a Ctrl-C would."""

    def __init__(self, at):
        self.at = at

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.at:
            raise KeyboardInterrupt


def test_an_interrupted_fit_does_not_pass_for_a_finished_one(tmp_path):
    # skorch swallows KeyboardInterrupt (its own early stopping raises it): resumable_fit
    # tells an interruption from an end the history records.
    clf, X, y = _resumable_classifier([("ctrl_c", CtrlC(2))])
    with pytest.raises(KeyboardInterrupt, match="interrupted after epoch 2 of at most 4"):
        harness.resumable_fit(clf, X, y, tmp_path / "fit", max_epochs=4)
    resumed, X, y = _resumable_classifier()
    assert len(harness.resumable_fit(resumed, X, y, tmp_path / "fit", max_epochs=4).history) == 4


def test_a_real_fit_decays_at_its_plateaus_and_stops_converged(tmp_path):
    import torch

    from benchmarks import stats

    clf, X, y = _resumable_classifier([("until_converged", harness.UntilConverged(1, 0.1, 0.1))])
    harness.resumable_fit(clf, X, y, tmp_path / "fit", max_epochs=40)
    history = harness.val_history(clf)
    decays = clf.history[:, "lr_decays"]
    assert len(history) < 40 and stats.converged(history)  # stopped by the callback, not the cap
    assert decays[-1] == 1 and clf.optimizer_.param_groups[0]["lr"] == pytest.approx(1e-3)
    decay_epoch = decays.index(1) + 1
    assert stats.converged(history[:decay_epoch]) and len(history) - decay_epoch >= stats.CONVERGENCE_WINDOW
    # The epoch that ended the fit is saved: a rerun restores the best epoch and trains none.
    log = EpochLog()
    again, X, y = _resumable_classifier(
        [("until_converged", harness.UntilConverged(1, 0.1, 0.1)), ("log", log)]
    )
    harness.resumable_fit(again, X, y, tmp_path / "fit", max_epochs=40)
    assert log.begun == 0 and again.history[:, "valid_acc"] == clf.history[:, "valid_acc"]
    for name, value in again.module_.named_parameters():
        torch.testing.assert_close(value, dict(clf.module_.named_parameters())[name])


def test_progress_names_every_fit_finished_in_progress_or_not_started(tmp_path, monkeypatch):
    settings = {**config.PROFILES["smoke"].mnist_scale, "seeds": (0,), "max_epochs": 3}
    monkeypatch.setattr(baselines, "fit_one", fake_fit_one)
    journal = harness.journal_path(tmp_path / "baselines-smoke-mnist.md")
    runs, _ = baselines.configurations(settings["learned"])
    assert all(line.endswith("not started") for line in baselines.progress_lines(settings, "mnist", journal))
    fake_fit_one.calls = 0
    baselines.run(settings, "mnist", journal=journal)
    lines = baselines.progress_lines(settings, "mnist", journal)
    assert len(lines) == 2 * len(runs) and all("finished: test error" in line for line in lines)
    assert "seed 0 + cnn/fixed: finished: test error 1.53 % after ? epochs" in lines
    # Another protocol: nothing finished; a fit with a saved epoch is in progress.
    other = {**settings, "lr": 1.0}
    key = baselines.fit_key(other, "mnist", 0, True, "cnn", "fixed")
    folder = baselines.checkpoint_folder(harness.checkpoints_path(journal), key)
    folder.mkdir(parents=True)
    (folder / "last_history.json").write_text(json.dumps([{"valid_acc": 0.75, "lr_decays": 1}]))
    lines = baselines.progress_lines(other, "mnist", journal)
    assert "seed 0 + cnn/fixed: in progress: 1 epochs, validation error (last 4) 25.0 %, 1 decays" in lines
    assert sum(line.endswith("not started") for line in lines) == 2 * len(runs) - 1

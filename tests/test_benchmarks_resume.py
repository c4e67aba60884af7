"""The resumable fit runner of the benchmarks (harness.run_fits_resumable, baselines.run)."""

import json
import math

import numpy as np
import pytest

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


def fake_fit_one(settings, dataset, seed, augmented, architecture, parameterisation, device="cpu"):
    fake_fit_one.calls += 1
    error = 1.0 + seed + 0.5 * augmented + 0.01 * len(architecture)
    return {
        "error": error,
        "val_error": error,
        "best_epoch": 1,
        "val_history": [error + 1.0] * (settings["max_epochs"] - 1) + [error],
        "fit_s": 0.0,
        "predict_s": 0.0,
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
    first, _ = baselines.run(settings, "mnist", journal=journal)
    n_fits = fake_fit_one.calls
    assert n_fits == 2 * 2 * len(first)
    second, _ = baselines.run(settings, "mnist", journal=journal)
    assert fake_fit_one.calls == n_fits and second == first
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

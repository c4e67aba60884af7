"""Tests of skscale.progress: channels, the progress reporter and ScaleScorer."""

import io
import os
import re

import joblib
import numpy as np
import pytest

from skscale import ScaleEquivariantClassifier
from skscale.progress import (
    FileProgressChannel,
    ProgressReporter,
    ScaleScorer,
    _time_left,
    format_duration,
)


def test_format_duration():
    assert format_duration(0) == "0:00"
    assert format_duration(59.6) == "1:00"
    assert format_duration(3599) == "59:59"
    assert format_duration(3600 * 2 + 61) == "2:01:01"
    assert format_duration(None) == format_duration(float("inf")) == "?"


@pytest.mark.parametrize(
    "elapsed, done, total, n_workers, expected",
    [
        (10.0, 1, 4, 1, 30.0),  # one worker: elapsed per fit times fits left
        (10.0, 1, 18, 2, 85.0),  # two running at once: 17 fits left are 8.5 waves of 10 s
        (10.0, 2, 18, 2, 80.0),
        (20.0, 3, 18, 2, 75.0),  # the 3rd fit ends the 2nd wave
        (30.0, 4, 4, 2, 0.0),
        (5.0, 1, 2, 8, 2.5),  # more workers than fits: both run at once, half a wave left
    ],
)
def test_time_left_counts_waves_of_parallel_fits(elapsed, done, total, n_workers, expected):
    assert _time_left(elapsed, done, total, n_workers) == pytest.approx(expected)


def test_file_channel_reads_each_complete_record_once(tmp_path):
    channel = FileProgressChannel(tmp_path / "progress.jsonl")
    assert channel.read_new() == []  # nothing posted yet: no file
    channel.post({"fit": 1, "isr_history": [3.0, 3.5]})
    channel.post({"fit": 2})
    with open(channel.path, "ab") as file:
        file.write(b'{"fit": 3')  # a record being written: not read yet
    assert channel.read_new() == [{"fit": 1, "isr_history": [3.0, 3.5]}, {"fit": 2}]
    with open(channel.path, "ab") as file:
        file.write(b"}\n")
    assert channel.read_new() == [{"fit": 3}]
    assert channel.read_new() == []


def post_many(channel, start, count):
    for index in range(start, start + count):
        channel.post({"index": index, "pid": os.getpid(), "padding": "x" * 500})


def test_file_channel_collects_records_from_worker_processes(tmp_path):
    channel = FileProgressChannel(tmp_path / "progress.jsonl")
    joblib.Parallel(n_jobs=2, backend="loky")(
        joblib.delayed(post_many)(channel, start, 50) for start in range(0, 200, 50)
    )
    records = channel.read_new()
    assert sorted(record["index"] for record in records) == list(range(200))
    assert all(len(record["padding"]) == 500 for record in records)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(total=0), "total must be an integer >= 1, got 0"),
        (dict(total=2, n_workers=True), "n_workers must be an integer >= 1, got True"),
        (dict(total=2, interval=0), r"interval must be a finite number > 0, got 0"),
    ],
)
def test_progress_reporter_rejects_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        ProgressReporter(FileProgressChannel(tmp_path / "progress.jsonl"), **kwargs)


def test_progress_reporter_prints_one_line_per_fit(tmp_path):
    channel = FileProgressChannel(tmp_path / "progress.jsonl")
    out = io.StringIO()
    with ProgressReporter(
        channel,
        total=3,
        n_workers=2,
        describe=lambda r: f"fit {r['fit']}",
        stream=out,
        interval=0.05,
        prefix="  ",
    ) as progress:
        for fit in range(3):
            channel.post({"fit": fit})
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and len(progress.records) == 3
    pattern = r"  \[(\d)/3  elapsed \d+:\d\d  left ~\d+:\d\d\] fit (\d)"
    assert [re.fullmatch(pattern, line).groups() for line in lines] == [("1", "0"), ("2", "1"), ("3", "2")]
    assert lines[-1].split("left ~")[1].startswith("0:00]")


# --------------------------------------------------------------------------- scorer
def fitted_classifier(max_epochs=2):
    rng = np.random.RandomState(0)
    X = rng.rand(24, 10, 10).astype(np.float32)
    y = np.arange(24) % 2
    X[y == 1, 3:7, 3:7] += 1.0
    classifier = ScaleEquivariantClassifier(
        n_filters=2, init_sigma_basis=0.7, init_isr=2.0, max_epochs=max_epochs, lr=0.05, random_state=0
    )
    return classifier.fit(X, y), X, y


def test_scorer_reports_accuracy_and_learned_scales(tmp_path):
    classifier, X, y = fitted_classifier()
    channel = FileProgressChannel(tmp_path / "fits.jsonl")
    scores = ScaleScorer(channel)(classifier, X, y)
    assert scores == {
        "accuracy": pytest.approx(classifier.score(X, y)),
        "sigma_basis": pytest.approx(classifier.sigma_basis_),
        "isr": pytest.approx(classifier.isr_),
    }
    (record,) = channel.read_new()
    assert record["parameterisation"] == "isr" and record["init_isr"] == 2.0
    assert record["isr_history"] == pytest.approx(list(classifier.history[:, "isr"]))
    assert record["sigma_basis_history"] == pytest.approx(list(classifier.history[:, "sigma_basis"]))
    assert len(record["isr_history"]) == 2
    assert ScaleScorer()(classifier, X, y) == scores  # no channel: nothing posted
    assert channel.read_new() == []


def test_scorer_reads_the_last_step_of_a_pipeline_and_chosen_params(tmp_path):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from skscale.preprocessing import ImageStandardizer

    classifier, X, y = fitted_classifier(max_epochs=1)
    pipeline = make_pipeline(ImageStandardizer(), classifier).fit(X, y)
    channel = FileProgressChannel(tmp_path / "fits.jsonl")
    scores = ScaleScorer(channel, params=("lr",))(pipeline, X, y)
    assert scores["isr"] == pytest.approx(pipeline[-1].isr_)
    (record,) = channel.read_new()
    assert record["lr"] == 0.05 and "parameterisation" not in record

    # An estimator without internal scales: NaN scales and empty histories.
    flat = X.reshape(len(X), -1)
    plain = LogisticRegression().fit(flat, y)
    scores = ScaleScorer(channel, params=("C",))(plain, flat, y)
    assert np.isnan(scores["sigma_basis"]) and np.isnan(scores["isr"])
    (record,) = channel.read_new()
    assert record["C"] == 1.0 and record["isr_history"] == [] and record["sigma_basis_history"] == []

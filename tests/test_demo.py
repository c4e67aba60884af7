import csv
import re
import warnings

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from skorch.history import History  # noqa: E402

from skscale import ToleranceModel  # noqa: E402
from skscale.__main__ import main  # noqa: E402
from skscale.datasets import FASHION_MNIST_CLASSES, DatasetSizeWarning  # noqa: E402
from skscale.demo import (  # noqa: E402
    COMPARED_PARAMETERISATIONS,
    FIGURES,
    QUICK,
    DemoConfig,
    fit_tolerance_model,
    load_demo_data,
    make_param_grid,
    run_demo,
)
from skscale.plotting import plot_error_per_scale, plot_isr_trajectory  # noqa: E402

from .test_cli import write_idx_files  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# --------------------------------------------------------------------------- the quick demo
def test_quick_demo_prints_the_table_and_writes_every_file(tmp_path, capsys):
    output = tmp_path / "demo"
    assert main(["demo", "--quick", "--output", str(output), "--n-jobs", "2"]) == 0
    printed = capsys.readouterr().out

    # Progress: one line per cross-validation fit, counted up to the total.
    n_isr = len(make_param_grid(QUICK, 2.0)["classifier__init_isr"])
    total = 2 * n_isr * QUICK.cv
    progress = [line for line in printed.splitlines() if line.lstrip().startswith("[")]
    assert len(progress) == total
    assert progress[-1].lstrip().startswith(f"[{total}/{total}  elapsed ")
    assert "left ~0:00]" in progress[-1]

    # The table: one row per configuration, both parameterisations, learned scales shown.
    assert "1. Tolerance model of the training scales" in printed
    assert "recommended ISR = " in printed
    header = next(line for line in printed.splitlines() if line.split()[:3] == ["rank", "scales", "init"])
    rows = printed.splitlines()[printed.splitlines().index(header) + 1 :][: 2 * n_isr]
    ranks = [int(row.split()[0]) for row in rows]
    assert ranks[0] == 1 and ranks == sorted(ranks)  # ties share a rank
    assert {row.split()[1] for row in rows} == {"fixed", "learned"}
    assert all("+/-" in row for row in rows)
    assert "   best: " in printed
    assert "test error" in printed and "test error [%] per data scale:" in printed
    # The default classifier beside the grid's best: its test error and its cost, 1 fit against the grid's.
    per_half = QUICK.cv * n_isr
    assert (
        f"the grid search chose the best fixed and the best learned ISR with {2 * per_half} "
        "cross-validation fits"
    ) in printed
    assert f"({per_half} each) and 2 refits; the default classifier needed 1 fit" in printed
    tested_lines = [line.strip() for line in printed.splitlines() if re.search(r"test error +[\d.]+%", line)]
    assert len(tested_lines) == 3
    fixed_line, learned_line, default_line = tested_lines
    duration = r"\d+:\d\d"
    assert re.search(rf"^fixed ISR .* {per_half + 1} fits +{duration}", fixed_line), fixed_line
    assert re.search(rf"^learned ISR from .* {per_half + 1} fits +{duration}", learned_line), learned_line
    assert re.match(
        rf"default classifier \('gradient', ISR from 3.00\) +test error +[\d.]+% +1 fit +{duration} +"
        r"\(learned sigma_basis [\d.]+ px, ISR [\d.]+\)",
        default_line,
    ), default_line
    assert sum("<- best of the search" in line for line in tested_lines) == 1
    assert "<- best" not in default_line
    # The fitting time of each: the grid's half (its fits and refit) costs more than the one default fit.
    minutes, secs = zip(*(re.search(rf"fits? +({duration})", line)[1].split(":") for line in tested_lines))
    fixed_s, learned_s, default_s = (60 * int(m) + int(s) for m, s in zip(minutes, secs))
    assert fixed_s > default_s and learned_s > default_s
    assert "Done in " in printed

    # The files: three PNG figures and two CSV tables.
    for name in FIGURES:
        content = (output / name).read_bytes()
        assert content.startswith(PNG_SIGNATURE) and len(content) > 5000, name
    with open(output / "results.csv", newline="") as file:
        results = list(csv.DictReader(file))
    assert len(results) == 2 * n_isr
    assert list(results[0]) == [
        "rank",
        "parameterisation",
        "init_isr",
        "cv_accuracy",
        "cv_accuracy_std",
        "fit_time_s",
        "sigma_basis",
        "sigma_basis_std",
        "isr",
        "isr_std",
        "test_error",
    ]
    accuracies = [float(row["cv_accuracy"]) for row in results]
    assert accuracies == sorted(accuracies, reverse=True)
    assert max(accuracies) > 0.3  # ten classes: chance is 0.1
    fixed = [row for row in results if row["parameterisation"] == "fixed"]
    assert all(float(row["isr"]) == pytest.approx(float(row["init_isr"])) for row in fixed)
    # The best configuration of each parameterisation was refitted and tested.
    tested = [row for row in results if row["test_error"] != ""]
    assert sorted(row["parameterisation"] for row in tested) == ["fixed", "isr"]
    assert all(0.0 <= float(row["test_error"]) < 0.9 for row in tested)
    with open(output / "error_per_scale.csv", newline="") as file:
        per_scale = list(csv.DictReader(file))
    assert {row["fit"] for row in per_scale} == {"fixed", "isr", "default"}
    assert {row["parameterisation"] for row in per_scale} == {"fixed", "isr"}
    assert sum(row["fit"] == "default" for row in per_scale) == QUICK.error_bins
    assert sum(int(row["n_digits"]) for row in per_scale) == 3 * QUICK.n_test


# --------------------------------------------------------------------------- pieces
def test_param_grid_compares_fixed_and_learned_scales_around_the_tolerance_isr():
    config = DemoConfig(n_train=10, n_test=10, cv=2, max_epochs=1, init_isr=(4.0, 1.5))
    grid = make_param_grid(config, 2.4149)
    assert grid == {
        "classifier__parameterisation": ["fixed", "isr"],
        "classifier__init_isr": [1.5, 2.41, 4.0],
    }
    assert make_param_grid(config, 4.0)["classifier__init_isr"] == [1.5, 4.0]


def test_the_compared_forms_and_the_sources_are_declared_once():
    import skscale.demo
    from skscale.datasets import DATASET_SOURCES
    from skscale.nn import PARAMETERISATIONS

    assert COMPARED_PARAMETERISATIONS == ("fixed", "isr")
    assert set(COMPARED_PARAMETERISATIONS) <= set(PARAMETERISATIONS)
    assert (
        not hasattr(skscale.demo, "PARAMETERISATIONS") or skscale.demo.PARAMETERISATIONS is PARAMETERISATIONS
    )
    assert skscale.demo.DATASET_SOURCES is DATASET_SOURCES


def test_tolerance_model_follows_the_uniform_scales_of_mnist_scale():
    scales = np.random.RandomState(0).uniform(0.3, 1.0, size=2000)
    model = fit_tolerance_model(scales, n_scales=3)
    assert model.density == "kde"
    assert model.internal_scales_.shape == (1, 3)
    # Uniform in the scale is denser at large scales in log2: the internal scales crowd
    # there, so the ISR is smaller than for a log-uniform density over the same range.
    assert 1.5 < model.isr_[0] < ToleranceModel(n_scales=3, density="loguniform").fit(scales).isr_[0]


def test_a_too_small_source_is_a_one_line_note_not_a_warning(capsys):
    config = DemoConfig(n_train=3000, n_test=3000, cv=2, max_epochs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DatasetSizeWarning)
        data = load_demo_data(config, source="bundled")
    assert len(data.y_train) + len(data.y_test) <= 5000
    note = "note: source 'bundled' holds fewer digits than requested; using "
    assert capsys.readouterr().out.startswith(note)
    assert [str(name) for name in data.target_names] == [str(digit) for digit in range(10)]


def test_demo_data_of_fashion_mnist_is_named_by_its_classes(capsys, tmp_path):
    write_idx_files(tmp_path / "fashion-mnist", n_train=50, n_test=30)
    config = DemoConfig(n_train=100, n_test=60, cv=2, max_epochs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DatasetSizeWarning)
        data = load_demo_data(config, source="idx", data_home=tmp_path, dataset="fashion")
    assert data.dataset == "fashion" and data.source == "idx"
    assert len(data.y_train) + len(data.y_test) == 80
    assert list(data.target_names) == list(FASHION_MNIST_CLASSES)
    assert capsys.readouterr().out.startswith("note: source 'idx' holds fewer images than requested; using ")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"dataset": "cifar10"}, "dataset must be one of 'mnist', 'fashion', got 'cifar10'."),
        (
            {"dataset": "fashion", "source": "bundled"},
            "source (dataset='fashion') must be one of 'auto', 'debian', 'idx', 'openml', got 'bundled'.",
        ),
        (
            {"source": "debian"},
            "source (dataset='mnist') must be one of 'auto', 'idx', 'openml', 'bundled', got 'debian'.",
        ),
    ],
)
def test_run_demo_refuses_a_dataset_or_source_before_any_work(capsys, tmp_path, kwargs, message):
    output = tmp_path / "out"
    with pytest.raises(ValueError) as error:
        run_demo(QUICK, output=output, **kwargs)
    assert str(error.value) == message
    assert not output.exists() and capsys.readouterr().out == ""


# --------------------------------------------------------------------------- figures
def isr_history(values):
    history = History()
    for value in values:
        history.new_epoch()
        history.record("isr", value)
    return history


class Fitted:
    """Stands for a fitted classifier: anything with a skorch ``history``."""

    def __init__(self, history):
        self.history = history


def test_isr_trajectory_draws_one_line_per_run_and_a_colour_per_label():
    history = isr_history([3.0, 3.2, 3.3])
    ax = plot_isr_trajectory(
        [[1.5, 1.8, 2.0], Fitted(history), history],
        labels=["1.5", "3.0", "3.0"],
        reference_isr={"tolerance model": 2.2},
    )
    runs = [line for line in ax.lines if line.get_gid() == "isr_trajectory"]
    assert len(runs) == 3
    np.testing.assert_array_equal(runs[1].get_xdata(), [1, 2, 3])
    np.testing.assert_allclose(runs[1].get_ydata(), [3.0, 3.2, 3.3])
    assert runs[1].get_color() == runs[2].get_color() != runs[0].get_color()
    (reference,) = [line for line in ax.lines if line.get_gid() == "reference_isr"]
    np.testing.assert_allclose(reference.get_ydata(), [2.2, 2.2])
    assert ax.get_legend_handles_labels()[1] == ["1.5", "3.0", "tolerance model (2.2)"]

    ax = plot_isr_trajectory([[3.0, 3.5]], first_epoch=0, reference_isr=2.0)
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), [0, 1])
    assert ax.get_legend_handles_labels()[1] == ["reference (2)"]


@pytest.mark.parametrize(
    "histories, kwargs, match",
    [
        ([], {}, "at least one run"),
        ([[1.0, 2.0]], {"labels": ["a", "b"]}, "one entry per run: got 2 labels for 1 runs"),
        ([[[1.0], [2.0]]], {}, r"one isr value per epoch, got an array of shape \(2, 1\)"),
        ("isr", {}, "histories must be a sequence of runs, got str"),
    ],
)
def test_isr_trajectory_rejects_bad_input(histories, kwargs, match):
    with pytest.raises(ValueError, match=match):
        plot_isr_trajectory(histories, **kwargs)


def test_isr_trajectory_needs_a_recorded_column():
    history = History()
    history.new_epoch()
    with pytest.raises(ValueError, match="the history has no 'isr' column"):
        plot_isr_trajectory([history])


def test_error_per_scale_plot_draws_each_curve_in_percent():
    curves = {
        "fixed ISR": ([0.35, 0.5, 0.8], [0.3, 0.1, 0.05], [10, 10, 10]),
        "learned ISR": (np.array([0.35, 0.5, 0.8]), np.array([0.2, 0.1, 0.06])),
    }
    ax = plot_error_per_scale(curves)
    lines = [line for line in ax.lines if line.get_gid() == "error_per_scale"]
    assert len(lines) == 2
    np.testing.assert_allclose(lines[0].get_ydata(), [30.0, 10.0, 5.0])
    assert ax.get_xscale() == "log" and ax.get_ylabel() == "test error [%]"
    assert ax.get_legend_handles_labels()[1] == ["fixed ISR", "learned ISR"]

    ax = plot_error_per_scale(([0.4, 0.9], [0.2, 0.1]), percent=False)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [0.2, 0.1])
    assert ax.get_legend() is None


@pytest.mark.parametrize(
    "curves, match",
    [
        ({}, "at least one curve"),
        (([0.5, 1.0], [0.1]), "same length"),
        (([0.0, 1.0], [0.1, 0.2]), "bin_scales must be positive"),
        (5, r"each curve must be \(bin_scales, errors\[, counts\]\)"),
    ],
)
def test_error_per_scale_plot_rejects_bad_curves(curves, match):
    with pytest.raises(ValueError, match=match):
        plot_error_per_scale(curves)


def test_csv_files_hold_rounded_floats(tmp_path):
    import numpy as np

    from skscale.demo import CSV_DIGITS, _write_csv

    path = tmp_path / "rows.csv"
    value = float(np.float32(2.3))  # 2.299999952316284
    _write_csv(
        path,
        ["isr", "scale", "rank", "name"],
        [{"isr": value, "scale": np.float32(0.1), "rank": 3, "name": "x"}],
    )
    lines = path.read_text().splitlines()
    assert lines == ["isr,scale,rank,name", "2.3,0.1,3,x"]
    assert CSV_DIGITS == 6
    big = float(np.float32(1234.5678))
    _write_csv(path, ["v", "w"], [{"v": big, "w": float("nan")}])
    assert path.read_text().splitlines()[1] == "1234.57,nan"

"""End-to-end run of benchmarks/scale_selection.py on the smoke profile (issue 29)."""

import dataclasses
import json

import numpy as np
import pytest

from benchmarks import scale_selection
from skscale.datasets._idx import DEBIAN_FASHION_MNIST


def test_scale_selection_end_to_end(tmp_path):
    results = scale_selection.main(
        ["--profile", "smoke", "--distributions", "8", "--output-dir", str(tmp_path)]
    )
    entry = results["8"]
    assert set(entry) >= {"fixed", "gradient", "response", "sweep"}
    assert set(entry["gradient"]) == set(entry["response"]) == {"1.5", "3", "6"}
    (sweep,) = entry["sweep"]["3"]
    assert sweep["isr"] in sweep["candidates"]
    text = (tmp_path / "scale_selection-smoke.md").read_text()
    stored = json.loads((tmp_path / "scale_selection-smoke.json").read_text())["results"]
    assert stored["patience"] == scale_selection.PATIENCE
    # Every finding is what the code writes from the stored numbers.
    for line in scale_selection.findings(stored["results"]):
        assert f"- {line}\n" in text
    assert "patience 3 epochs" in text
    assert all(len(fit["val_history"]) == fit["epochs"] for fit in entry["gradient"]["3"])
    assert "## Convergence" in text and "target, gradient:" in text


def test_a_rerun_reads_every_fit_from_the_journal_and_a_partial_journal_reports_whole_groups(
    tmp_path, monkeypatch
):
    argv = ["--profile", "smoke", "--distributions", "8", "--output-dir", str(tmp_path)]
    first = scale_selection.main(argv)
    journal = tmp_path / "scale_selection-smoke.fits.jsonl"
    lines = journal.read_text().splitlines()
    assert len(lines) == 2 + 3 + 1 + 3  # smoke grid, gradient and response starts, one sweep

    def refuse(*args):
        raise AssertionError("a stored fit was run again")

    monkeypatch.setattr(scale_selection, "fit_one", refuse)
    again = scale_selection.main(argv)
    assert scale_selection.findings(again) == scale_selection.findings(first)

    # The journal without its last fit (the last "response" start): that group is left out.
    journal.write_text("\n".join(lines[:-1]) + "\n")
    partial = scale_selection.main([*argv, "--stored-only"])
    assert set(partial["8"]["response"]) == {"1.5", "3"} and partial["8"]["sweep"] == first["8"]["sweep"]
    text = (tmp_path / "scale_selection-smoke.md").read_text()
    assert "1 of 9 fits have not run yet" in text and "Written from the fit journal" in text
    # The command recorded is the one that ran the fits.
    (command,) = [line for line in text.splitlines() if line.startswith("- command: ")]
    assert command.startswith("- command: `python -m benchmarks.scale_selection --profile smoke ")
    assert "--stored-only" not in command


def _fit(error, isr, wall=10.0):
    return {"error": error, "val_error": error, "isr": isr, "wall_s": wall}


def _entry(high, grid, starts, shape="loguniform"):
    """A results entry of three seeds: ``grid`` and ``starts`` map an ISR to (errors, final ISR)."""
    entry = {"seeds": [0, 1, 2], "n_test": 100, "high": high, "shape": shape}
    entry["fixed"] = {isr: [_fit(e, float(isr)) for e in errors] for isr, errors in grid.items()}
    entry["gradient"] = {s: [_fit(e, final, 15.0) for e in errors] for s, (errors, final) in starts.items()}
    return entry


def test_a_mechanism_replaces_gradient_learning_only_where_it_dominates():
    grid = {"2": [9, 10, 11]}
    results = {
        "2.83": _entry(2.83, grid, {"3": ([8, 9, 10], 3.0)}),
        "8": _entry(8.0, grid, {"3": ([8, 9, 10], 3.0)}),
    }
    for entry, sweep in zip(results.values(), ([5, 6, 7], [8, 9, 10])):  # better, then tied
        entry["sweep"] = {"3": [_fit(e, 4.0) for e in sweep]}
    assert scale_selection.recommended_selection(results) == "sweep"
    results["8"]["sweep"]["3"] = [_fit(e, 4.0) for e in (11, 12, 13)]  # now worse on [1, 8]
    assert scale_selection.recommended_selection(results) == "gradient"
    assert scale_selection.default_line(results).endswith(
        "sweep is better than gradient learning from the same start on [1, 2.83] from ISR 3 and worse on "
        "[1, 8] from ISR 3"
    )


def test_targets_are_stated_with_their_numbers_and_verdicts():
    results = {
        "2.83": _entry(
            2.83, {"2": [5, 6, 7], "4": [8, 9, 10]}, {"1.5": ([5, 6, 7], 2.0), "6": ([5, 6, 7], 2.5)}
        ),
        "8": _entry(
            8.0, {"2": [9, 10, 11], "4": [5, 6, 7]}, {"1.5": ([5, 6, 8], 4.0), "6": ([5, 6, 7], 5.0)}
        ),
        "8 lognormal": _entry(8.0, {"2": [9, 9, 9], "4": [6, 6, 6]}, {}, shape="lognormal"),
    }
    lines = scale_selection.target_lines(results)
    assert (
        "target, gradient: the ISRs selected on [1, 8] from starts 1.5 and 6 differ by a factor 1.25 "
        "(target <= 1.4: met)" in lines
    )
    assert (
        "target, gradient: ISR selected on [1, 8] / on [1, 2.83], by start 1.5, 6: 2.00, 2.00 "
        "(target >= 1.5 from every start: met)" in lines
    )
    # From 1.5 on [1, 8]: +0.33 +- 0.33 points, within one SE; the three others are identical.
    assert (
        "target, gradient: within one paired SE of the validated grid in 4 of 4 (distribution, start) "
        "cases (met)" in lines
    )
    assert (
        "target, gradient: wall time of one fit / one fixed fit: 1.50, 1.50 by distribution "
        "(target <= 2: met)" in lines
    )
    assert scale_selection.describe(results["8 lognormal"]) == "[1, 8] lognormal"


def test_the_default_scale_selection_is_the_one_the_committed_measurement_supports():
    """The classifier's default is :func:`recommended_selection` of the committed run: a mechanism
    replaces gradient learning only where it is better beyond 2 paired SE and worse nowhere."""
    from pathlib import Path

    from skscale import ScaleEquivariantClassifier

    results = Path(__file__).parents[1] / "benchmarks/results"
    # Dynamic Scale MNIST on three distributions, and Fashion-MNIST items on two shapes of [1, 8].
    for name, distributions in [("cpu", {"2.83", "4.76", "8"}), ("cpu-fashion", {"8", "8 lognormal"})]:
        stored = json.loads((results / f"scale_selection-{name}.json").read_text())["results"]["results"]
        assert distributions <= set(stored)
        assert all({"fixed", "gradient", "sweep", "response"} <= set(entry) for entry in stored.values())
        recommended = scale_selection.recommended_selection(stored)
        assert ScaleEquivariantClassifier().scale_selection == recommended
        report = (results / f"scale_selection-{name}.md").read_text()
        assert f"- {scale_selection.default_line(stored)}\n" in report


@pytest.mark.skipif(
    not DEBIAN_FASHION_MNIST.is_dir(), reason="Debian's dataset-fashion-mnist is not installed"
)
def test_fashion_items_span_the_pixels_of_a_digit_at_every_scale():
    from benchmarks import harness
    from benchmarks.config import PROFILES

    profile = PROFILES["cpu"]
    digits, _, digit_fraction = harness.scale_objects(profile, "mnist")
    items, labels, item_fraction = harness.scale_objects(profile, "fashion")
    assert items.shape[1:] == (10, 10) and digits.shape[1:] == (14, 14) and item_fraction == 1.0
    assert items.shape[-1] * item_fraction == pytest.approx(digits.shape[-1] * digit_fraction)
    assert set(np.unique(labels)) == set(range(10))
    data = harness.dynamic_split(
        dataclasses.replace(profile, n_train=20, n_val=10, n_test=20),
        (1.0, 8.0),
        0,
        dataset="fashion",
        distribution="lognormal",
    )
    assert data["X_train"].shape == (20, 1, 84, 84) and data["s_test"].max() <= 8.0

"""benchmarks/defaults.py: the measurement that sets the classifier's defaults (issue 29)."""

import json

from benchmarks import defaults


def test_defaults_end_to_end_on_the_smoke_profile(tmp_path, monkeypatch):
    # Two learning rates, the current defaults of the rest (the report compares with them).
    current = defaults.current_defaults()
    grid = {"lr": (1e-3, 1e-2), **{name: (current[name],) for name in ("init_sigma_basis", "kernel_extent")}}
    monkeypatch.setattr(defaults, "GRID", grid)
    results = defaults.main(["--profile", "smoke", "--output-dir", str(tmp_path)])
    assert set(results) == {defaults.label(c) for c in defaults.combinations()} and len(results) == 2
    fit = results[defaults.label({**current, "lr": 1e-2})]["dynamic8"][0]
    assert len(fit["val_history"]) == fit["epochs"] <= defaults.EPOCH_CAP
    stored = json.loads((tmp_path / "defaults-smoke.json").read_text())["results"]
    assert stored["recommended"] == defaults.recommended(results)
    text = (tmp_path / "defaults-smoke.md").read_text()
    for line in defaults.findings(stored["results"], stored["reference"]):
        assert f"- {line}\n" in text
    assert (tmp_path / "defaults-smoke.fits.jsonl").read_text().count("\n") == 4


def _runs(val_errors, errors):
    return [{"val_error": v, "error": e} for v, e in zip(val_errors, errors)]


def test_the_recommendation_is_made_on_validation_errors_and_claims_need_two_se():
    results = {
        # Lowest test errors, but not the lowest validation errors: not recommended.
        "a": {"mnist_scale": _runs([5, 5, 5], [1, 1, 1]), "dynamic8": _runs([9, 9, 9], [2, 2, 2])},
        "b": {"mnist_scale": _runs([4, 4, 4], [3, 3.2, 3.4]), "dynamic8": _runs([8, 8, 8], [5, 6, 7])},
    }
    assert defaults.recommended(results) == "b"
    lines = defaults.findings(results, "a")
    assert lines[0] == "mnist_scale: b - a = +2.20 points, paired SE 0.12 over 3 seeds (worse)"
    assert lines[1] == "dynamic8: b - a = +4.00 points, paired SE 0.58 over 3 seeds (worse)"
    assert lines[-1] == "lowest mean validation error: b (6.00 %); the recommended defaults"


def test_the_current_defaults_are_read_from_the_code():
    from skscale import ScaleEquivariantClassifier
    from skscale.nn.models import Table1Net

    current = defaults.current_defaults()
    assert current["lr"] == ScaleEquivariantClassifier().lr
    assert current["kernel_extent"] == Table1Net.scale_defaults.kernel_extent
    assert defaults.label(current) in {defaults.label(c) for c in defaults.combinations()}


def test_the_classifier_defaults_are_the_ones_the_committed_measurement_recommends():
    """``lr``, ``init_sigma_basis`` and ``kernel_extent`` of ``ScaleEquivariantClassifier()``
    are the combination of lowest validation error in benchmarks/results/defaults-cpu.json."""
    from pathlib import Path

    results = Path(__file__).parents[1] / "benchmarks/results"
    stored = json.loads((results / "defaults-cpu.json").read_text())["results"]
    assert set(stored["results"]) == {defaults.label(c) for c in defaults.combinations()}
    assert all(len(runs) == 3 for by_dataset in stored["results"].values() for runs in by_dataset.values())
    assert stored["recommended"] == defaults.recommended(stored["results"])
    assert defaults.label(defaults.current_defaults()) == stored["recommended"]
    report = (results / "defaults-cpu.md").read_text()
    assert f"- lowest mean validation error: {stored['recommended']} (" in report

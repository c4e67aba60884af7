"""benchmarks/defaults.py: the measurement that sets the classifier's defaults (issue 29)."""

import json

from benchmarks import defaults


def test_defaults_end_to_end_on_the_smoke_profile(tmp_path, monkeypatch):
    monkeypatch.setattr(
        defaults, "GRID", {"lr": (1e-3, 1e-2), "init_sigma_basis": (2.0,), "kernel_extent": (2.0,)}
    )
    results = defaults.main(["--profile", "smoke", "--output-dir", str(tmp_path)])
    assert set(results) == {"lr 0.001, sigma 2, k 2", "lr 0.01, sigma 2, k 2"}
    fit = results["lr 0.01, sigma 2, k 2"]["dynamic8"][0]
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

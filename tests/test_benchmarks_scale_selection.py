"""End-to-end run of benchmarks/scale_selection.py on the smoke profile (issue 29)."""

import json

from benchmarks import scale_selection


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


def test_verdict_needs_two_standard_errors():
    assert scale_selection.verdict(0.5, 0.3) == "within 2 paired SE"
    assert scale_selection.verdict(0.7, 0.3) == "worse"
    assert scale_selection.verdict(-0.7, 0.3) == "better"
    assert scale_selection.verdict(0.7, float("nan")).startswith("one seed")


def test_the_default_scale_selection_is_the_one_the_committed_measurement_supports():
    """``scale_selection="gradient"`` stays the default: in the committed run no mechanism has
    a lower test error than gradient learning from the same start beyond 2 paired SE."""
    import json
    from pathlib import Path

    from benchmarks import stats
    from skscale import ScaleEquivariantClassifier

    results = json.loads(
        (Path(__file__).parents[1] / "benchmarks/results/scale_selection-cpu.json").read_text()
    )
    assert ScaleEquivariantClassifier().scale_selection == "gradient"
    compared = 0
    for runs in results["results"]["results"].values():
        gradient = {start: [fit["error"] for fit in fits] for start, fits in runs["gradient"].items()}
        for mechanism in ("response", "sweep"):
            for start, fits in runs[mechanism].items():
                errors = [fit["error"] for fit in fits]
                # A mechanism without that start is compared with every gradient start.
                references = [gradient[start]] if start in gradient else list(gradient.values())
                for reference in references:
                    gap, se, n = stats.paired_difference(errors, reference)
                    assert n >= 3 and not gap < -2 * se, (mechanism, start, gap, se)
                    compared += 1
    assert compared >= 4  # three starts of "response", one sweep per distribution

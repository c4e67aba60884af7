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

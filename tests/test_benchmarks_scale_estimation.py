"""benchmarks/scale_estimation.py run end-to-end on the ``smoke`` profile, and its pieces.

Every sentence the script writes from its numbers is checked against those numbers.
"""

import json
import re

import numpy as np
import pytest

from benchmarks import scale_estimation, stats


def test_smoke_profile_writes_the_report_and_its_numbers(tmp_path):
    output = tmp_path
    raw = scale_estimation.main(["--profile", "smoke", "--output-dir", str(output)])
    settings = scale_estimation.SETTINGS["smoke"]
    text = (output / "scale_estimation-smoke.md").read_text()
    assert "- command: `python -m benchmarks.scale_estimation --profile smoke" in text
    stored = json.loads((output / "scale_estimation-smoke.json").read_text())["results"]
    assert stored["settings"]["isr_grid"] == list(settings.isr_grid)

    # Part 1: one row per (range, background) of the smoke profile's two ranges, then MNIST-Scale.
    rows = raw["estimation"]
    assert [(row["data"], row["background"]) for row in rows] == [
        (f"[1, {high:g}]", background) for high in (2.83, 8.0) for background in scale_estimation.BACKGROUNDS
    ] + [("MNIST-Scale", "clean")]
    assert 0.3 <= rows[-1]["range"][0] < rows[-1]["range"][1] <= 1.0
    for row in rows:
        assert -1.0 <= row["spearman"] <= 1.0 and row["isr_true"] > 1.0 and row["isr_estimated"] > 1.0
        assert row["isr_error"] == pytest.approx(row["isr_estimated"] / row["isr_true"] - 1.0)
        if row["background"] == "clean":
            assert row["left_out"] == 0  # every clean canvas holds a visible digit
        assert f"| {row['data']} | {row['background']} | {row['spearman']:.3f} |" in text
    met = sum(scale_estimation.meets_target(row) for row in rows)
    assert f"is met in {met} of {len(rows)} settings." in text
    spearman = [row["spearman"] for row in rows]
    assert f"Spearman ranges from {min(spearman):.2f} to {max(spearman):.2f}" in text

    assert "; target: within 20%, " in text
    # Part 2: the grid against init_isr="auto", per seed, with the fits each needed.
    ((key, entries),) = raw["classifier"].items()
    assert key == "4.76" and [entry["seed"] for entry in entries] == [0]
    entry = entries[0]
    assert entry["grid_fits"] == len(settings.isr_grid) and entry["auto_fits"] == 1
    assert (entry["n_fit"], entry["n_validation"], entry["n_test"]) == (
        settings.n_train,
        settings.n_val,
        settings.n_test,
    )
    best = min(entry["grid"], key=lambda g: g["validation_error"])
    assert entry["best_isr"] == best["isr"] and entry["best_error"] == best["test_error"]
    assert entry["auto_isr"] >= 1.25
    difference = entry["auto_error"] - entry["best_error"]
    assert f"the paired difference (auto - grid) is {difference:+.2f} points on 1 seed" in text
    assert (
        f"init_isr='auto' reached a mean test error of {entry['auto_error']:.2f} % with 1 fit per seed, "
        f"against {entry['best_error']:.2f} % for the grid's best fixed ISR, which needed "
        f"{len(settings.isr_grid)} fits"
    ) in text
    se = stats.binomial_se(entry["auto_error"], entry["n_test"])
    assert f"{entry['auto_error']:.2f} ± {se:.2f}" in text


def test_paired_difference_of_auto_and_grid_over_seeds():
    entries = [{"auto_error": a, "best_error": b} for a, b in [(5.0, 4.0), (6.0, 6.0), (4.0, 5.0)]]
    mean, se = scale_estimation.paired(entries)
    assert mean == 0.0 and se == pytest.approx(1.0 / np.sqrt(3))
    assert np.isnan(scale_estimation.paired(entries[:1])[1])


def test_findings_say_within_or_outside_two_standard_errors():
    def entry(seed, auto, best):
        return {
            "seed": seed,
            "auto_error": auto,
            "best_error": best,
            "grid_fits": 3,
            "auto_isr": 3.0,
            "recommended_isr_true_scales": 2.5,
        }

    close = scale_estimation.classifier_findings({"8": [entry(0, 5.0, 4.0), entry(1, 4.0, 5.0)]})
    assert "is +0.00 ± 1.00 points over 2 seeds, within two standard errors of zero." in close
    assert (
        "The estimated ISR averaged 3.00, against 2.50 from the true training scales "
        "(+20%; target: within 20%, met)."
    ) in close
    apart = scale_estimation.classifier_findings({"8": [entry(0, 9.0, 4.0), entry(1, 9.5, 4.0)]})
    assert "is +5.25 ± 0.25 points over 2 seeds, outside two standard errors of zero." in apart
    wide = scale_estimation.classifier_findings({"8": [{**entry(0, 5.0, 4.0), "auto_isr": 4.0}]})
    assert "(+60%; target: within 20%, not met)." in wide and "on 1 seed (no standard error" in wide


def test_canvases_are_clean_or_cluttered():
    clean, labels, factors = scale_estimation.make_canvases(6, 2.83, 0, "clean")
    cluttered, labels2, factors2 = scale_estimation.make_canvases(6, 2.83, 0, "cluttered")
    assert clean.shape == (6, scale_estimation.CANVAS, scale_estimation.CANVAS)
    np.testing.assert_array_equal(labels, labels2)
    np.testing.assert_array_equal(factors, factors2)
    assert 1.0 <= factors.min() and factors.max() <= 2.83
    # Clean canvases are black around the digit; cluttered ones are not.
    assert np.median(clean) == 0.0 and clean.min() >= -1e-6
    assert np.abs(np.median(cluttered, axis=(1, 2))).max() > 0.0 and cluttered.std() > clean.std() / 2


def test_only_the_smoke_and_cpu_profiles(capsys):
    with pytest.raises(SystemExit):
        scale_estimation.main(["--profile", "paper"])
    error = capsys.readouterr().err
    assert re.search(r"--profile 'paper': this benchmark has the profiles smoke, cpu", error)


@pytest.mark.parametrize("background", ["bright", "gradient", "noisy", "distractors"])
def test_conditions_the_estimator_was_not_tuned_on(background):
    clean, labels, factors = scale_estimation.make_canvases(12, 4.76, 0, "clean")
    other, labels2, factors2 = scale_estimation.make_canvases(12, 4.76, 0, background)
    np.testing.assert_array_equal(factors, factors2)
    assert other.shape == clean.shape and not np.allclose(other, clean)
    if background == "bright":
        assert np.median(other) > 0.9  # dark digits on a white canvas
    row = scale_estimation.estimation_row(40, 4.76, 0, background)
    assert row["background"] == background and row["spearman"] > 0.85


def test_estimation_only_writes_part_one(tmp_path):
    raw = scale_estimation.main(["--profile", "smoke", "--estimation-only", "--output-dir", str(tmp_path)])
    assert "classifier" not in raw
    text = (tmp_path / "scale_estimation-smoke-estimation.md").read_text()
    assert "--estimation-only" in text and "2. init_isr" not in text
    assert {row["background"] for row in raw["estimation"]} == set(scale_estimation.BACKGROUNDS)


def test_network_findings_compare_the_correlations_per_seed_and_state_the_target():
    def entries(network, reference):
        return [{"network_spearman": a, "estimate_scales_spearman": b} for a, b in zip(network, reference)]

    lower = scale_estimation.network_findings(entries([0.1, 0.2, 0.3], [0.9, 0.95, 0.97]))
    assert lower[0] == "network - estimate_scales Spearman = -0.740, paired SE 0.038 over 3 seeds (worse)"
    assert lower[1].endswith("(not met: 0.200 against 0.940)")
    higher = scale_estimation.network_findings(entries([0.95, 0.96, 0.99], [0.9, 0.95, 0.97]))
    assert (
        higher[0].endswith("+0.027, paired SE 0.012 over 3 seeds (better)")
        and "(met: 0.967 against 0.940)" in higher[1]
    )


def test_network_part_end_to_end_on_a_few_canvases(tmp_path, monkeypatch):
    monkeypatch.setattr(
        scale_estimation,
        "NETWORK_SIZES",
        {"n_train": 40, "n_val": 20, "n_test": 30, "max_epochs": 2, "patience": 3},
    )
    raw = scale_estimation.main(["--profile", "smoke", "--network", "--output-dir", str(tmp_path)])
    (entry,) = raw["network"]
    assert entry["seed"] == 0 and 1 <= entry["epochs"] <= 2
    assert -1 <= entry["network_spearman"] <= 1 and entry["estimate_scales_spearman"] > 0.5
    text = (tmp_path / "scale_estimation-smoke-network.md").read_text()
    for line in scale_estimation.network_findings(raw["network"]):
        assert f"- {line}\n" in text

"""Tests of the benchmarks' statistics (benchmarks/stats.py) and of the findings written from
results JSON (benchmarks/findings.py), on made-up numbers in both directions."""

import json
import math

import numpy as np
import pytest

from benchmarks import findings, stats


# ---------------------------------------------------------------------------- stats
def test_sample_std_is_ddof_one_and_absent_for_one_value():
    assert stats.sample_std([1.0, 3.0]) == pytest.approx(math.sqrt(2.0))  # not 1.0, the population std
    assert stats.sample_std([2.0, 4.0, 6.0]) == pytest.approx(2.0)
    assert math.isnan(stats.sample_std([5.0]))
    assert stats.standard_error([2.0, 4.0, 6.0]) == pytest.approx(2.0 / math.sqrt(3.0))
    assert stats.mean_sd([1.0, 3.0]) == "2.00 ± 1.41" and stats.mean_sd([1.0]) == "1.00 ± –"
    for bad in ([], [1.0, float("nan")]):
        with pytest.raises(ValueError, match="values must be a non-empty sequence of finite numbers"):
            stats.sample_std(bad)


def test_paired_difference_pairs_by_seed():
    # A shared per-seed offset cancels in the pairs: the unpaired spread would be 1.0.
    learned, fixed = [3.1, 4.1, 5.1], [3.0, 4.0, 5.0]
    mean, se, n = stats.paired_difference(learned, fixed)
    assert (mean, n) == (pytest.approx(0.1), 3) and se == pytest.approx(0.0, abs=1e-12)
    mean, se, _ = stats.paired_difference([3.0, 4.0, 5.0], [2.0, 4.0, 4.0])
    assert mean == pytest.approx(2 / 3) and se == pytest.approx(np.std([1, 0, 1], ddof=1) / math.sqrt(3))
    assert math.isnan(stats.paired_difference([1.0], [2.0])[1])
    with pytest.raises(ValueError, match="one value per seed each, got 2 and 3"):
        stats.paired_difference([1.0, 2.0], [1.0, 2.0, 3.0])


def test_binomial_se_of_a_test_error():
    assert stats.binomial_se(2.5, 10000) == pytest.approx(100 * math.sqrt(0.025 * 0.975 / 10000))
    assert stats.binomial_se(0.025, 10000, percent=False) == pytest.approx(math.sqrt(0.025 * 0.975 / 10000))
    assert stats.binomial_se(0.0, 50) == 0.0
    assert stats.binomial_se(3.0, 500) > stats.binomial_se(3.0, 5000)
    with pytest.raises(ValueError, match="n_test must be"):
        stats.binomial_se(2.0, 0)
    with pytest.raises(ValueError, match="error must be"):
        stats.binomial_se(120.0, 100)


def test_within_k_se():
    assert stats.within_k_se(0.15, 0.15)  # 8.20 - 8.05 is 0.15 only up to rounding
    assert stats.within_k_se(8.20 - 8.05, 0.15)
    assert stats.within_k_se(-0.1, 0.15) and not stats.within_k_se(0.31, 0.15)
    assert stats.within_k_se(0.31, 0.15, k=2.1) and not stats.within_k_se(0.31, 0.15, k=2.0)
    assert not stats.within_k_se(0.0, float("nan"))  # one seed: no claim


# ---------------------------------------------------------------------------- findings
SEEDS = [0, 1, 2]
WIDTHS = ("2.83", "4.76", "8")


def _learn(isr_by_width, learned_errors, fixed_test, fixed_val):
    """A made-up learn_isr result: two fixed ISRs, three seeds."""
    return {
        "form": "authors",
        "learned": {
            key: {"seeds": SEEDS, "isr": list(isr_by_width[key]), "errors": list(learned_errors[key])}
            for key in WIDTHS
        },
        "sweep": {
            key: {
                "seeds": SEEDS,
                "n_test": 2000,
                "isr_grid": [2.0, 4.0],
                "errors": fixed_test[key],
                "val_errors": fixed_val[key],
            }
            for key in WIDTHS
        },
    }


def _init(final):
    """A made-up init result: ``final[width][(sigma, isr)]`` is the per-seed final ISR."""
    return {
        key: {
            f"{s:g},{i:g}": {"start": [s, i], "seeds": SEEDS, "isr": list(v)} for (s, i), v in starts.items()
        }
        for key, starts in final.items()
    }


FIXED_TEST = {key: [[3.0, 3.2, 3.4], [4.0, 4.1, 4.2]] for key in WIDTHS}
FIXED_VAL = {key: [[3.1, 3.1, 3.1], [4.2, 4.2, 4.2]] for key in WIDTHS}  # ISR 2 wins on validation

GOOD = (
    _learn(
        {"2.83": [2.0, 2.1, 1.9], "4.76": [3.0, 3.1, 2.9], "8": [4.0, 4.2, 3.8]},
        {key: [3.1, 3.1, 3.4] for key in WIDTHS},  # learned - best fixed: +0.0 +/- 0.1
        FIXED_TEST,
        FIXED_VAL,
    ),
    _init(
        {
            "2.83": {(2.0, 1.5): [2.0, 2.0, 2.0], (2.0, 6.0): [2.3, 2.3, 2.3]},
            "8": {(2.0, 1.5): [3.9, 3.9, 3.9], (2.0, 6.0): [4.3, 4.3, 4.3]},
        }
    ),
)
BAD = (
    _learn(
        {"2.83": [3.0, 3.1, 2.9], "4.76": [3.1, 3.2, 3.0], "8": [3.2, 3.3, 3.1]},
        {key: [4.0, 4.3, 4.5] for key in WIDTHS},  # learned - best fixed: +1.07, SE 0.09
        FIXED_TEST,
        FIXED_VAL,
    ),
    _init(
        {
            "2.83": {(2.0, 1.5): [1.6, 1.6, 1.6], (2.0, 6.0): [5.8, 5.8, 5.8]},
            "8": {(2.0, 1.5): [1.7, 1.7, 1.7], (2.0, 6.0): [5.9, 5.9, 5.9]},
        }
    ),
)


def test_target_holds_when_the_numbers_say_so():
    lines, numbers = findings.form_findings("authors", *GOOD)
    text = "\n".join(lines)
    assert numbers["overall"] == "met" and lines[0] == "**authors**: target met."
    assert numbers["target"] == {"starts": True, "width": True, "error": True}
    assert numbers["spread_across_distributions"] == pytest.approx(2.0)
    assert numbers["spread_across_starts"] == pytest.approx(4.3 / 3.9)
    assert "the data distribution moves the final ISR at least as much as the start does" in text
    # The best fixed ISR is the one of the lowest validation error, not of the lowest test error.
    assert all(row["best_isr"] == 2.0 for row in numbers["paired"].values())
    assert "[1, 8]: learned - best fixed (ISR 2, chosen on validation) = +0.00 points, paired SE 0.06" in text
    assert "within two paired SE" in text
    assert "factor 1.10" in text and "x1.95" in text


def test_target_fails_when_the_numbers_say_so():
    lines, numbers = findings.form_findings("authors", *BAD)
    text = "\n".join(lines)
    assert numbers["overall"] == "not met" and lines[0] == "**authors**: target not met."
    assert numbers["target"] == {"starts": False, "width": False, "error": False}
    assert numbers["spread_across_starts"] > numbers["spread_across_distributions"]
    assert "the start moves the final ISR more than the data distribution does" in text
    assert "worse than the best fixed by more than two paired SE" in text
    assert "within two paired SE" not in text
    assert "within a factor 1.4: no" in text and "from every start run on both: no" in text
    assert "(worse on [1, 2.83], [1, 4.76], [1, 8])" in text


def test_findings_claim_nothing_without_a_standard_error():
    learn, init = GOOD
    one_seed = json.loads(json.dumps(learn))
    for part in ("learned", "sweep"):
        for entry in one_seed[part].values():
            entry["seeds"] = [0]
            if part == "learned":
                entry["isr"], entry["errors"] = entry["isr"][:1], entry["errors"][:1]
            else:
                entry["errors"] = [e[:1] for e in entry["errors"]]
                entry["val_errors"] = [e[:1] for e in entry["val_errors"]]
    lines, numbers = findings.form_findings("authors", one_seed, init)
    text = "\n".join(lines)
    assert numbers["target"]["error"] is None and numbers["overall"] == "not established"
    assert "one seed: no standard error, no claim" in text and "within one paired SE" not in text
    # One distribution in init: the width condition is not measured, never claimed.
    only_wide = {"8": init["8"]}
    _, numbers = findings.form_findings("authors", learn, only_wide)
    assert numbers["target"]["width"] is None and numbers["overall"] == "not established"
    # Seeds that do not pair are refused.
    unpaired = json.loads(json.dumps(learn))
    unpaired["sweep"]["8"]["seeds"] = [3, 4, 5]
    with pytest.raises(ValueError, match=r"\[1, 8\]: the learned and fixed runs must share their seeds"):
        findings.form_findings("authors", unpaired, init)


def test_findings_script_reads_the_results_json(tmp_path):
    for form, (learn, init) in (("authors", GOOD), ("log", BAD)):
        (tmp_path / f"learn_isr-smoke-{form}.json").write_text(json.dumps({"results": learn}))
        (tmp_path / f"init-smoke-{form}.json").write_text(json.dumps({"results": init}))
    table4 = {
        "8": {
            "direct": {"form": "direct", "errors": [3.5, 3.6, 3.7]},
            "spacing": {"form": "ratios", "errors": [3.0, 3.1, 3.2]},
            "isr": {"form": "authors", "errors": [3.0, 3.1, 3.2]},
        }
    }
    (tmp_path / "parameterisation-smoke.json").write_text(json.dumps({"results": table4}))
    text, numbers = findings.main(
        ["--profile", "smoke", "--forms", "authors", "log", "isr", "--output-dir", str(tmp_path)]
    )
    assert numbers["authors"]["overall"] == "met" and numbers["log"]["overall"] == "not met"
    assert "Not run (no results): learn_isr-smoke-isr.json, init-smoke-isr.json" in text
    assert "direct - authors = +0.50 (paired SE 0.00, worse)" in text
    assert "ratios - authors = +0.00 (paired SE 0.00, within two paired SE)" in text
    written = (tmp_path / "findings-smoke.md").read_text()
    assert "**authors**: target met." in written and "**log**: target not met." in written
    assert (
        json.loads((tmp_path / "findings-smoke.json").read_text())["results"]["log"]["target"]["starts"]
        is False
    )

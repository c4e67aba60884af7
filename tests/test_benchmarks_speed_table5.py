"""Measurement 9 of benchmarks.speed: the training step of every Table-5 architecture (issue 30)."""

import json

import pytest

from benchmarks import config

ROWS = {"cnn", "sesn", "sicnn", "siconvnet", "sevf", "dss", "sscnn", "disco", "siconvnet, full pyramid"}


def test_speed_table5_runs_on_its_own_and_states_the_target(tmp_path):
    from benchmarks import speed

    output = tmp_path / "speed-table5-smoke.md"
    raw = speed.main(["--profile", "smoke", "--only", "table5", "--output", str(output)])
    text = output.read_text()
    size, batch = config.PROFILES["smoke"].speed.table5_batch
    assert (raw["image_size"], raw["batch"]) == (size, batch)
    assert ROWS | {"sesn again"} == set(raw["ratios"]) == set(raw["seconds"]) == set(raw["parameters"])
    assert raw["ratios"]["sesn"] == {"wall": 1.0, "cpu": 1.0}
    # The pyramid changes the cost, not the network: both have the SESN layout's size.
    assert raw["parameters"]["siconvnet"] == raw["parameters"]["siconvnet, full pyramid"] == 494_549
    si = raw["ratios"]["siconvnet"]
    target = speed.verdict(max(si.values()), speed.TABLE5_TARGET)
    assert (
        f"- SI-ConvNet / SESN training step: {si['wall']:.3f} in wall time, {si['cpu']:.3f} in CPU time "
        f"(target <= 1, {target})" in text
    )
    for name in ROWS:
        assert f"| `{name}` |" in text
    assert f"## {speed.TABLE5_HEADING}" in text and "- load average (1 min): " in text
    assert "- command: `python -m benchmarks.speed --profile smoke --only table5 --output PATH`" in text
    assert not output.with_suffix(".png").exists()
    stored = json.loads(output.with_suffix(".json").read_text())
    assert stored["results"]["command"] == raw["command"] and stored["results"]["threads"] >= 1
    assert stored["results"]["ratios"]["siconvnet"] == pytest.approx(si)
    assert stored["profile"]["speed"]["table5_batch"] == [size, batch]


def test_speed_table5_rows_are_the_registered_table5_architectures(monkeypatch):
    from benchmarks import baselines, speed

    rows = speed.table5_rows()
    assert set(rows) == ROWS | {"sesn again"}
    assert rows["siconvnet, full pyramid"] == ("siconvnet", {"pyramid": "full"})
    # The same architectures and scales as the Table-5 fits.
    assert set(baselines.EXPECTED) <= set(rows) and baselines.SESN_SCALES == config.table5_scales("sesn")
    assert (
        config.table5_scales("dss")["n_scales"] == 2
        and config.table5_scales("disco")["init_sigma_basis"] == 1.8
    )
    monkeypatch.delitem(speed.ARCHITECTURES, "sscnn")
    assert "sscnn" not in speed.table5_rows()


def test_speed_table5_summary_follows_the_ratios():
    from benchmarks import speed

    ratios = {
        "siconvnet": {"wall": 0.9, "cpu": 1.05},
        "siconvnet, full pyramid": {"wall": 2.0, "cpu": 2.1},
        "sesn again": {"wall": 1.01, "cpu": 0.99},
    }
    summary = speed.table5_summary(ratios)
    assert summary.startswith("- SI-ConvNet / SESN training step: 0.900 in wall time, 1.050 in CPU time")
    assert "(target <= 1, **not met**)" in summary  # the worse clock decides
    assert '(`pyramid="full"`) 2.000 and 2.100' in summary and "1.010 and 0.990 (the noise floor)" in summary
    ratios["siconvnet"]["cpu"] = 0.95
    assert "(target <= 1, met)" in speed.table5_summary(ratios)

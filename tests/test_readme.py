"""The README: the landing page's example runs as written, and its links lead somewhere."""

import re
import warnings
from pathlib import Path

from skscale import ScaleEquivariantClassifier

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_starts_with_the_two_commands():
    text = README.read_text()
    first_block = re.search(r"```(\w*)\n(.*?)```", text, flags=re.S)
    assert first_block.group(1) == "bash"
    commands = [line.split("#")[0].strip() for line in first_block.group(2).splitlines()]
    assert commands == ["make demo", "make test"]


def test_readme_has_one_short_example():
    blocks = python_blocks()
    assert len(blocks) == 1
    assert "ScaleEquivariantClassifier" in blocks[0] and len(blocks[0].splitlines()) <= 25


def test_readme_links_lead_to_files_of_the_repository():
    links = re.findall(r"\]\(([^)\s]+)\)", README.read_text())
    local = [link for link in links if "://" not in link]
    assert any(link.startswith("docs/") for link in local)
    missing = [link for link in local if not (ROOT / link).exists()]
    assert not missing, missing


def test_readme_example_runs_and_prints_what_it_says(capsys):
    namespace = {"__name__": "readme"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the bundled-data size warning is expected here
        for block in python_blocks():
            exec(compile(block, str(README), "exec"), namespace)
    out = capsys.readouterr().out
    accuracy = float(re.search(r"^test accuracy: (\d\.\d\d)$", out, re.M).group(1))
    assert accuracy > 0.5  # 10 classes: well above chance after ten epochs
    clf = namespace["clf"]
    # "the three internal scales after training (increasing, the smallest sigma_basis)"
    assert len(clf.scales_) == 3 and (clf.scales_[1:] > clf.scales_[:-1]).all()
    assert abs(clf.scales_[0] - clf.sigma_basis_) < 1e-6
    assert f"learned internal scales: {clf.scales_.round(2)} ISR: {round(clf.isr_, 2)}" in out
    # "the ISR after each of the ten epochs"; "every hyper-parameter is at its default"
    per_epoch = re.search(r"^ISR after each epoch: \[(.*)\]$", out, re.M).group(1).split(", ")
    assert len(per_epoch) == 10 and float(per_epoch[-1]) == round(clf.isr_, 2)
    assert {name: value for name, value in clf.get_params(deep=False).items() if name != "random_state"} == {
        name: value
        for name, value in ScaleEquivariantClassifier().get_params(deep=False).items()
        if name != "random_state"
    }

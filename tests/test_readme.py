"""The README's Python examples run as written."""

import re
import warnings
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_examples():
    blocks = python_blocks()
    assert len(blocks) >= 4
    joined = "\n".join(blocks)
    for name in ("ScaleEquivariantClassifier", "GridSearchCV", "ToleranceModel", "ScaleConvT2H"):
        assert name in joined


def test_readme_python_blocks_run_in_order(capsys):
    namespace = {"__name__": "readme"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the bundled-data size warning is expected here
        for block in python_blocks():
            exec(compile(block, str(README), "exec"), namespace)
    out = capsys.readouterr().out
    assert "test accuracy:" in out and "learned internal scales:" in out
    assert "'classifier__parameterisation'" in out
    # The numbers the README quotes in prose.
    assert "ISR = 4.29" in out
    assert "tau = 0.452 {'[1, 2.83]': 2.88, '[1, 4.76]': 4.31, '[1, 8]': 6.33}" in out
    assert "torch.Size([2, 16, 32, 32])" in out
    assert "rank correlation with the true scales: 0.95" in out
    assert "ISR from the images: 3.49, from the true scales: 3.24" in out
    assert namespace["clf"].init_isr == namespace["tolerance"].isr_[0]

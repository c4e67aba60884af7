"""The documentation's sources: every public name in the API reference, and every code
block of the user guide runs on its own and prints what its page says."""

import importlib
import re
import warnings
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = sorted([DOCS / "getting_started.rst", *(DOCS / "user_guide").glob("*.rst")])

#: The modules of the API reference, each documented under its own name.
DOCUMENTED_MODULES = (
    "skscale",
    "skscale.nn",
    "skscale.basis",
    "skscale.datasets",
    "skscale.metrics",
    "skscale.preprocessing",
    "skscale.callbacks",
    "skscale.plotting",
    "skscale.model_selection",
    "skscale.export",
    "skscale.accelerate",
)

#: What the pages say their examples print.
PRINTED = {
    "tolerance.rst": [
        "ISR = 4.29",
        "tau = 0.452 {'[1, 2.83]': 2.88, '[1, 4.76]': 4.31, '[1, 8]': 6.33}",
        "rank correlation with the true scales: 0.95",
        "ISR from the images: 3.49, from the true scales: 3.24",
    ],
    "layers.rst": ["torch.Size([2, 16, 32, 32])"],
    "classification.rst": ["test accuracy:", "'classifier__parameterisation'", "(3, 16, 12) channels_last"],
    "segmentation.rst": ["mean IoU:", "(2, 40, 40) (2, 4, 40, 40)"],
    "getting_started.rst": ["test accuracy:", "learned internal scales:"],
}


def python_blocks(page):
    """The ``.. code-block:: python`` blocks of ``page``, dedented."""
    blocks = re.findall(r"^\.\. code-block:: python\n\n((?:(?:   .*)?\n)+)", page.read_text(), flags=re.M)
    return ["\n".join(line[3:] for line in block.splitlines()) + "\n" for block in blocks]


def documented_names(module):
    """The names listed under ``.. currentmodule:: module`` in the API reference."""
    text = (DOCS / "api.rst").read_text()
    section = re.search(
        rf"^\.\. currentmodule:: {re.escape(module)}\n(.*?)(?=^\S[^\n]*\n=+\n|\Z)", text, re.M | re.S
    )
    assert section, f"api.rst has no section for {module}"
    return set(re.findall(r"^   (\w+)$", section.group(1), flags=re.M))


@pytest.mark.parametrize("module", DOCUMENTED_MODULES)
def test_the_api_reference_lists_every_public_name(module):
    public = set(importlib.import_module(module).__all__) - {"__version__"}
    assert documented_names(module) == public


def test_the_searches_document_every_name_of_their_two_modules():
    from skscale import progress, search_backends

    assert set(progress.__all__) | set(search_backends.__all__) <= documented_names("skscale.model_selection")


def test_every_page_with_code_is_checked():
    with_code = {page.name for page in PAGES if python_blocks(page)}
    assert set(PRINTED) <= with_code
    assert {"classification.rst", "tolerance.rst", "layers.rst", "datasets.rst", "export.rst"} <= with_code


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_code_block_runs_on_its_own(page, capsys):
    blocks = python_blocks(page)
    if not blocks:
        pytest.skip(f"{page.name} has no Python code")
    if any("onnxruntime" in block for block in blocks):
        pytest.importorskip("onnxruntime")
    if any("accelerate" in block for block in blocks):
        pytest.importorskip("accelerate")
    for block in blocks:
        namespace = {"__name__": "docs"}  # a fresh namespace: each block brings its imports
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the bundled-data size warning is expected here
            exec(compile(block, str(page), "exec"), namespace)
    out = capsys.readouterr().out
    for expected in PRINTED.get(page.name, []):
        assert expected in out, expected

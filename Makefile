PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
CONSTRAINTS := -c constraints.txt

.PHONY: test lint format demo venv clean wheel-check docs

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed: $(VENV)/bin/python pyproject.toml constraints.txt
	$(PIP) install --quiet $(CONSTRAINTS) -e ".[test,data,plot]"
	touch $@

$(VENV)/.docs-installed: $(VENV)/bin/python pyproject.toml constraints.txt
	$(PIP) install --quiet $(CONSTRAINTS) -e ".[data,plot,export,docs]"
	touch $@

venv: $(VENV)/.installed

test: venv lint
	$(PY) -m pytest

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

demo: venv
	$(PY) -m skscale demo

# The documentation site, warnings as errors: docs/_build/html/index.html.  The example
# gallery runs every docs/examples/plot_*.py (a few minutes on 2 cores).
docs: $(VENV)/.docs-installed
	$(PY) -m sphinx -W --keep-going -b html docs docs/_build/html

# The built wheel, installed with the pinned torch into a fresh virtual environment.
wheel-check:
	PYTHON=$(PYTHON) .ci/wheel-check

clean:
	rm -rf $(VENV) build *.egg-info docs/_build docs/auto_examples docs/gen_modules docs/sg_execution_times.rst

# EoS Lab: build the book, run the tests.
#
#   make book   build the book into _build/html (creates .venv on first use)
#   make student  the student edition: site and notebooks without solutions, in _build/student
#   make test   unit tests, nbval over the chapters, warnings-as-errors book build
#   make test-pinned  nbval over the chapters and the fast unit tests again, with the oldest torch the book is checked on (TORCH_PIN)
#   make lab    open the chapters in JupyterLab (pip install jupyterlab first)
#   make bench  run the curvature benchmarks
#   make notebooks  re-execute the chapters in place (after changing eoslab)
#   make clean  remove _build

PYTHON ?= python3
VENV ?= .venv
VENV_PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# `make test` takes the newest torch that pip finds; `make test-pinned` checks this one too.
TORCH_PIN ?= 2.13.0
PINNED ?= .venv-pinned

.PHONY: book student test test-pinned clean lab bench install install-pinned notebooks

install: $(STAMP)

$(VENV_PYTHON):
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the dependency list changes.
$(STAMP): pyproject.toml | $(VENV_PYTHON)
	$(VENV_PYTHON) -m pip install -e ".[book,test]"
	touch $(STAMP)

book: $(STAMP)
	$(VENV)/bin/jupyter-book build . --warningiserror --nitpick --keep-going
	@echo "The book is in _build/html/index.html"

student: $(STAMP)
	$(VENV_PYTHON) _ext/student_edition.py

# --durations lists the slowest cells and tests, so a slow chapter shows in the log.
test: $(STAMP)
	$(VENV_PYTHON) -m pytest --durations=25

# The chapters' stored outputs must hold with more than one torch: nbval over the chapters and the
# fast unit tests, in a second environment with torch $(TORCH_PIN). The book build and the slow unit
# tests (long runs checked against tolerances, not stored digits) run once, in `make test`.
$(PINNED)/.installed: pyproject.toml
	$(PYTHON) -m venv $(PINNED)
	$(PINNED)/bin/python -m pip install "torch==$(TORCH_PIN)"
	$(PINNED)/bin/python -m pip install -e ".[test]"
	touch $@

install-pinned: $(PINNED)/.installed

test-pinned: $(PINNED)/.installed
	$(PINNED)/bin/python -m pytest -m "not book and not slow" --durations=25

clean:
	rm -rf _build

# JupyterLab is not a dependency: run `$(VENV_PYTHON) -m pip install jupyterlab` once.
lab: $(STAMP)
	$(VENV)/bin/jupyter lab chapters

bench: $(STAMP)
	$(VENV_PYTHON) benchmarks/bench_curvature.py

# Re-execute every chapter notebook in place, storing fresh outputs for nbval and the web pages, with the
# live panels' precomputed twins (EOSLAB_STATIC_PANELS). Cell timing metadata is dropped, so that re-runs give
# clean diffs, and so is the widget state: the pages show the twins, and a notebook's widgets live in its kernel.
notebooks: $(STAMP)
	for nb in chapters/*.ipynb; do EOSLAB_STATIC_PANELS=1 $(VENV)/bin/jupyter-execute --inplace "$$nb" || exit 1; done
	$(VENV_PYTHON) _ext/store_outputs.py chapters/*.ipynb

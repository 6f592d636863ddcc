# genedu: `make book` builds the course, `make test` checks everything.
# Every target sets itself up from a clean clone (.venv, npm assets) and skips what is done.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH := torch==2.13.0
# Where pip takes torch from: PyPI unless told. PyPI's Linux wheel is the multi-GB CUDA
# build; the book needs only the CPU one, so on a Linux laptop say
# `make book TORCH_INDEX=https://download.pytorch.org/whl/cpu`.
TORCH_INDEX ?=
VENDOR := book/_static/vendor
BOOK_FLAGS := --warningiserror --keep-going
# Notebook kernels must draw inline: a MPLBACKEND=Agg from the shell would silently drop
# every figure from the book (the unit tests pick their own backend in conftest.py).
unexport MPLBACKEND
# `make book` uses the quick budgets (seconds per chapter on 2 cores) and
# the shipped reference checkpoints for showcase figures; `make book FULL=1` trains for real.
ifeq ($(FULL),1)
  QUICK :=
else
  QUICK := GENEDU_QUICK=1
endif
# `make book HIDE_SOLUTIONS=1` builds a students' copy, every solution left out, into
# _build/students/_build/html (book/_ext/genedu_book.py reads GENEDU_HIDE_SOLUTIONS).
STUDENTS := _build/students
# book-check's two builds share one execution cache (emptied first): every chapter runs
# once, and the students' copy reuses those runs (book/_ext/genedu_book.py).
RUNS_CACHE := _build/.execution-cache
ifeq ($(HIDE_SOLUTIONS),1)
  BOOK_OUT := GENEDU_HIDE_SOLUTIONS=1
  BOOK_PATH := --path-output $(STUDENTS)
  BOOK_HTML := $(STUDENTS)/_build/html
else
  BOOK_OUT :=
  BOOK_PATH :=
  BOOK_HTML := _build/html
endif
# Run one stage: say what it is, run it, say how long it took.
stage = echo "==> $(1)"; t0=$$(date +%s); $(2); rc=$$?; echo "<== $(1): $$(( $$(date +%s) - t0 )) s"; [ $$rc -eq 0 ]

.PHONY: help setup book test lint unit notebooks book-check browser lab bench clean

help:
	@echo "make book    build the book into _build/html, executing every notebook (FULL=1, HIDE_SOLUTIONS=1)"
	@echo "make test    ruff, unit tests, notebooks (nbval, quick), book build, browser check"
	@echo "make lab     open the chapters in JupyterLab"
	@echo "make bench   run the benchmarks into benchmarks/results/"
	@echo "make clean   remove _build, .venv, node_modules and the vendored assets"

setup: $(VENV)/.installed $(VENDOR)/.installed

$(VENV)/.installed: pyproject.toml
	@echo "==> setting up $(VENV) (pinned CPU $(TORCH), then genedu with its extras)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install --quiet -e ".[book,test,lab]"
	touch $@

$(VENDOR)/.installed: package.json package-lock.json
	@echo "==> installing the book's JavaScript (MathJax, widgets) from npm into $(VENDOR)"
	npm ci --no-audit --no-fund --loglevel=error
	rm -rf $(VENDOR) && mkdir -p $(VENDOR)/html-manager
	cp -r node_modules/mathjax/es5 $(VENDOR)/mathjax
	cp node_modules/@jupyter-widgets/html-manager/dist/*.{js,woff,woff2,ttf,eot,svg} $(VENDOR)/html-manager/
	touch $@

book: setup
	@$(call stage,book build ($(if $(QUICK),quick,full) budgets),$(QUICK) $(BOOK_OUT) $(BIN)/jupyter-book build . $(BOOK_FLAGS) $(BOOK_PATH))
	@echo "open $(BOOK_HTML)/index.html"

lint: setup
	@$(call stage,1/5 ruff (lint and format),$(BIN)/ruff check . && $(BIN)/ruff format --check .)

unit: setup
	@$(call stage,2/5 unit tests,GENEDU_QUICK=1 $(BIN)/python -m pytest -q -m "not browser")

notebooks: setup
	@$(call stage,3/5 notebooks (nbval; quick budgets),GENEDU_QUICK=1 $(BIN)/python -m pytest -q --nbval-lax --nbval-current-env --nbval-cell-timeout=300 notebooks/)

book-check: setup
	@rm -rf _build/html _build/.doctrees
	@rm -rf $(STUDENTS) $(RUNS_CACHE)
	@$(call stage,4/5 book build (quick budgets; warnings are errors; then the students' copy from the same runs),GENEDU_QUICK=1 GENEDU_BOOK_CACHE=$(RUNS_CACHE) $(BIN)/jupyter-book build . $(BOOK_FLAGS) && GENEDU_QUICK=1 GENEDU_HIDE_SOLUTIONS=1 GENEDU_BOOK_CACHE=$(RUNS_CACHE) $(BIN)/jupyter-book build . $(BOOK_FLAGS) --path-output $(STUDENTS))

browser: setup
	@$(call stage,5/5 browser check of _build/html (Debian chromium via Playwright) and of the executed chapters' outputs,$(BIN)/python -m pytest -q -m browser tests/test_browser.py tests/test_book_truth.py)

test:
	@t0=$$(date +%s); $(MAKE) --no-print-directory lint unit notebooks book-check browser \
	  && echo "make test: everything passed in $$(( $$(date +%s) - t0 )) s"

lab: setup
	$(BIN)/jupyter lab notebooks/

bench: setup
	@for b in $(filter-out benchmarks/common.py,$(wildcard benchmarks/*.py)); do echo "==> $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf _build $(VENV) node_modules $(VENDOR) .pytest_cache .ruff_cache

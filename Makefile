# freight: `make demo` shows the whole job on the built-in example,
# `make check` runs the test suite. Both install what is missing first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The distribution's python: rpm, dnf, createrepo_c and pystemd are its bindings.
SYSTEM_PYTHON ?= /usr/bin/python3
VENV := .venv
PY := $(VENV)/bin/python
FREIGHT := $(VENV)/bin/freight
DEMO_REPO := build/demo-repo
PYTEST_ARGS ?=

.PHONY: help deps setup demo demo-repo check test-fast bench clean

help:
	@echo "make demo    build the demo repository and the demo container (installs what is missing)"
	@echo "make check   run the whole test suite (installs what is missing)"
	@echo "make setup   install system packages and the virtual environment only"
	@echo "make clean   remove build outputs and the virtual environment"

deps:
	@./tools/install-deps

$(VENV)/.installed: setup.cfg pyproject.toml
	$(SYSTEM_PYTHON) -m venv --system-site-packages $(VENV)
	$(VENV)/bin/pip install --quiet --no-build-isolation --no-deps -e .
	@touch $@

setup: deps $(VENV)/.installed

$(DEMO_REPO)/repodata/repomd.xml: $(wildcard specs/demo/*.spec) | setup
	rm -rf $(DEMO_REPO) examples/webapp/manifest.lock
	$(PY) -m freight.demorepo $(DEMO_REPO)

demo-repo: setup $(DEMO_REPO)/repodata/repomd.xml

demo: demo-repo
	$(FREIGHT) build examples/webapp/manifest.yaml --output-dir repo
	@echo
	@echo "Built into repo/:"; ls -l repo/*.rpm
	@echo "Inspect it with: rpm -qpi repo/container-webapp-*.rpm; rpm -qp --provides repo/container-webapp-*.rpm"

check: setup
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

clean:
	rm -rf build $(VENV) repo/*.rpm repo/repodata examples/webapp/manifest.lock

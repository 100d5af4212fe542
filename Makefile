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
# The demo's signing key: made on first use, kept outside the source tree and repo/.
DEMO_GNUPGHOME ?= $(HOME)/.local/share/freight/demo-gnupg
DEMO_KEY := demo-signer@freight.invalid
PYTEST_ARGS ?=
# make bench SIZE=small: the CI smoke size (see bench/run.py for the presets)
SIZE ?= default

.PHONY: help deps setup demo demo-build demo-update demo-repo check soak lint-imports test-fast bench bench-profile clean rpms host-repo testhost-image demo-host demo-host-down

help:
	@echo "make demo    build, sign and publish the demo container into repo/, then dnf install it in a booted"
	@echo "             demo host and fetch its page (needs root; the host stays up: make demo-host-down)"
	@echo "make check   run the whole test suite (installs what is missing)"
	@echo "make soak    the long sweeps make check runs reduced (every kill point of dnf on a host)"
	@echo "make bench   freight against the floor, one table (SIZE=small for the quick one)"
	@echo "make setup   install system packages and the virtual environment only"
	@echo "make clean   remove build outputs and the virtual environment"
	@echo "make rpms    build freight itself as RPMs (freight, freight-host) into build/rpms"
	@echo "make demo-build      the build half of make demo only: build, sign and publish into repo/ (no host)"
	@echo "make demo-update     publish a newer demo-www with a security advisory into the demo repository,"
	@echo "                     so freight outdated examples/webapp/manifest.yaml has something to report"
	@echo "make demo-host       boot a Debian test host with freight-host installed (stays up)"
	@echo "make demo-host-down  stop it"

deps:
	@./tools/install-deps

$(VENV)/.installed: setup.cfg pyproject.toml tools/requirements.txt
	$(SYSTEM_PYTHON) -m venv --system-site-packages $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/requirements.txt
	$(VENV)/bin/pip install --quiet --no-build-isolation --no-deps -e .
	@touch $@

setup: deps $(VENV)/.installed

$(DEMO_REPO)/repodata/repomd.xml: $(wildcard specs/demo/*.spec) | setup
	rm -rf $(DEMO_REPO) examples/webapp/manifest.lock
	$(PY) -m freight.dist.demorepo $(DEMO_REPO)

demo-repo: setup $(DEMO_REPO)/repodata/repomd.xml

# A distribution's security update, in the demo repository: demo-www 1.1 and its advisory.
# Undone by rm -rf build/demo-repo (the next make demo-repo builds it afresh).
demo-update: demo-repo
	$(PY) -m freight.dist.demorepo --update $(DEMO_REPO)

# The build half: the demo key (made on first use), both containers built, signed and published.
demo-build: export FREIGHT_GNUPGHOME := $(DEMO_GNUPGHOME)
demo-build: demo-repo
	@$(FREIGHT) key list | grep -q '^sec .*<$(DEMO_KEY)>' || \
		$(FREIGHT) key generate --name "freight demo signer" --email $(DEMO_KEY)
	$(FREIGHT) build examples/webapp/manifest.yaml --output-dir repo --sign $(DEMO_KEY)
	$(FREIGHT) build examples/webapp-prod/manifest.yaml --output-dir repo --sign $(DEMO_KEY)
	$(FREIGHT) publish repo --sign-key $(DEMO_KEY)
	$(FREIGHT) verify repo/*.rpm
	@echo
	@echo "Built, signed and published into repo/:"; ls -l repo/*.rpm repo/repodata
	@echo "Inspect them with: rpm -qpi repo/container-webapp-prod-*.rpm; rpm -qp --provides repo/container-webapp-1*.rpm"
	@echo "Hosts use it with: $(FREIGHT) repo-file --name freight-demo --baseurl file://$(CURDIR)/repo"
	@echo

demo: demo-build
	@# A booted Debian host (made afresh: a running one is replaced) with freight-host from build/host-repo,
	@# repo/ at /srv/freight-repo; then dnf install container-webapp container-webapp-prod in it, and their pages over HTTP.
	$(MAKE) --no-print-directory demo-host
	$(PY) -m freight.testhost.demo --name freight-demo --repo /srv/freight-repo

# The import contracts first (seconds): a layering mistake fails before the suite runs.
check: setup lint-imports
	$(PY) -m pytest $(PYTEST_ARGS)

# What make check samples, whole: dnf killed at every phase of install, upgrade and remove.
soak: setup
	FREIGHT_SOAK=1 $(PY) -m pytest tests/test_host_faults.py $(PYTEST_ARGS)

lint-imports: setup
	$(VENV)/bin/lint-imports --no-logo --no-cache

test-fast: setup
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

# Generated repositories are cached in build/bench and reused while their parameters hold.
bench: setup
	$(PY) -m bench.run --size $(SIZE)

bench-profile: setup
	$(PY) -m bench.profile --size $(SIZE)

clean:
	rm -rf build $(VENV) examples/webapp/manifest.lock
	find repo -mindepth 1 -maxdepth 1 ! -name .gitkeep -exec rm -rf {} +

# freight itself as RPMs, from the working tree (specs/freight.spec).
rpms: setup
	rm -rf build/rpms
	$(PY) -m freight.dist.rpms rpms build/rpms

# The same plus debian-host-provides, with repodata: what a Debian test host installs from.
host-repo: setup
	rm -rf build/host-repo
	$(PY) -m freight.dist.rpms host-repo build/host-repo

# The test host's cached Debian root (debootstrap, once per package list).
testhost-image: setup
	$(PY) -m freight.testhost image

# A booted test host that stays up, with freight and freight-host installed by
# dnf and the published repository at /srv/freight-repo.
demo-host: host-repo
	$(PY) -m freight.testhost down freight-demo --missing-ok
	$(PY) -m freight.testhost up --name freight-demo --freight-repo build/host-repo --bind $(CURDIR)/repo:/srv/freight-repo

demo-host-down: setup
	$(PY) -m freight.testhost down freight-demo --missing-ok

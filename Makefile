# StoreSCP for AWS HealthImaging. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# dcmtk: DICOM peers in tests; orthanc + orthanc-dicomweb: the DICOMweb server behind the
# HealthImaging proxy and the storage-commitment modality in tests; graphviz: the release's
# architecture diagram. The rest builds, runs, pushes and serves the SCP image (tests use
# Debian's docker-registry as a local registry).
APT_PACKAGES := dcmtk orthanc orthanc-dicomweb graphviz buildah podman runc skopeo mmdebstrap docker-registry
# IMAGE=0 releases without building the SCP image; BASE_IMAGE=python:3.11-slim-bookworm (say)
# builds it on a registry image instead of the Debian base made from packages.
IMAGE ?= 1

.PHONY: help deps system-deps test lint release publish lock snapshot docs run demo bench fargate-sizing reliability mutate

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk -F ':.*?## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

system-deps: ## Install the Debian packages the tests, the release and the image build use, when missing
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing"; \
		$(SUDO) apt-get -o DPkg::Lock::Timeout=600 update -qq && DEBIAN_FRONTEND=noninteractive \
			$(SUDO) apt-get -o DPkg::Lock::Timeout=600 install -y -qq $$missing >/dev/null; \
	fi

MUTATION_STAMP := $(VENV)/.mutation-installed
$(MUTATION_STAMP): pyproject.toml $(STAMP)
	$(PY) -m pip install --quiet -e '.[mutation]'
	touch $@

CHECKOV := $(VENV)/checkov/bin/checkov
$(CHECKOV): $(STAMP)  # checkov pins conflict with moto/boto3: it gets its own virtualenv
	$(PY) -c 'from generator.release.gates import checkov_command; checkov_command()'

deps: $(STAMP) $(CHECKOV) system-deps ## Create .venv (and .venv/checkov) and install Python and system dependencies

# Two workers: most tests wait on real peers and processes, not on the CPU. A module's tests run
# on one worker, and so do the modules sharing the build caches (tests/support/scheduling.py);
# modules are handed out in collection order, not most tests first, so that a long module of
# one test is not left to run alone at the end (338 s against 368 s here).
test: deps ## Run every test (installs what it needs first)
	$(PY) -m ruff check scp lambdas generator tests bench
	$(PY) -m pytest -n 2 --no-loadscope-reorder

lint: deps ## ruff over the code
	$(PY) -m ruff check scp lambdas generator tests bench
	$(PY) -m ruff format --check scp lambdas generator tests bench

release: deps ## Build the Marketplace bundle and the SCP image into dist/<version>/ with every gate (IMAGE=0: no image)
	$(PY) -m generator.release $(if $(filter 0,$(IMAGE)),--no-image) $(if $(BASE_IMAGE),--base-image $(BASE_IMAGE))

publish: deps ## Push the released image: make publish REGISTRY=host[/path] [TAG=tag] [TLS_VERIFY=false]
	@test -n "$(REGISTRY)" || { echo "usage: make publish REGISTRY=123456789012.dkr.ecr.us-east-1.amazonaws.com [TAG=...]"; exit 2; }
	$(PY) -m generator.release.publish --registry $(REGISTRY) $(if $(TAG),--tag $(TAG)) $(if $(filter false,$(TLS_VERIFY)),--no-tls-verify)

lock: deps ## Re-resolve the image's locked Python packages (requirements*.lock) after a dependency change
	$(PY) -m generator.release.lock

snapshot: deps ## Regenerate the template snapshot (tests/generator/snapshots) and the README tables from config/product.yaml
	$(PY) -m generator.release.snapshot
	$(PY) -m scp.settings

docs: deps ## Regenerate docs/ (deployment guide, troubleshooting, Conformance Statement, security pages, runbook, cost estimate) and SECURITY.md
	$(PY) -m generator.documents

run: deps ## Run the SCP on this machine (folder store ./received, port 11112)
	$(PY) -m scp --storage ./received --bind 127.0.0.1

demo: deps ## Run the whole pipeline locally (moto, SCP, import workflow, HealthImaging fake); Ctrl-C stops
	$(PY) -m tests.e2e.demo

bench: deps ## Benchmark our SCP against dcmtk, Orthanc, pynetdicom, then cloud vs edge across a WAN, then retrieve vs dcmqrscp (BENCH_ARGS/WAN_ARGS/RETRIEVE_ARGS="--help")
	$(MAKE) --no-print-directory system-deps APT_PACKAGES="dcmtk orthanc orthanc-dicomweb"
	$(PY) -m bench $(BENCH_ARGS)
	$(PY) -m bench.wan $(WAN_ARGS)
	$(PY) -m bench.retrieve $(RETRIEVE_ARGS)

fargate-sizing: deps ## Measure the image under Fargate CPU quotas (TaskCPU 256-2048); writes bench/fargate-sizing.json
	$(MAKE) --no-print-directory system-deps
	$(PY) -m bench --fargate $(BENCH_ARGS)

reliability: deps ## Full reliability suite: 300 associations, 10,000 malformed inputs, 10,000 outgoing C-STOREs, 300 import batches, faults
	RELIABILITY_FULL=1 $(PY) -m pytest tests/reliability -q -o timeout=1200

mutate: deps $(MUTATION_STAMP) ## Mutation testing of the modules that keep our promises, one by one (MODULES="scp/slots.py ..." for some); prints the survivors
	$(PY) -m bench.mutation $(MODULES)

# The two commands: `make demo` and `make test`. Both install what they need and start the stack
# (`farm stack up` apt-installs the Debian packages it runs when their binaries are missing).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
FARM := $(VENV)/bin/farm
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
STACK_ENV = eval "$$($(FARM) stack env)"

.PHONY: demo demo-cluster test test-unit check bench stack down venv tools buildkit kubernetes kaniko kustomize clean mutation

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[worker,test]'
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

# Go-built tools, cached under ~/.cache/farm/<tool>-<version>: a warm machine skips each at once.
tools: buildkit kubernetes kaniko kustomize

buildkit:
	bash scripts/install-buildkit.sh

kubernetes:
	bash scripts/install-kubernetes.sh

kaniko:
	bash scripts/install-kaniko.sh

kustomize:
	bash scripts/install-kustomize.sh

stack: venv
	$(FARM) stack up

demo: venv
	$(FARM) stack up --with worker
	@$(STACK_ENV) && $(FARM) build --project config/examples/demo

# In-cluster building: a real cluster in the stack (control plane + a kubelet), the Kaniko executor image
# in its registry, the stack's worker on the kubernetes runtime; each Build is an executor Pod on the node.
demo-cluster: venv kubernetes kaniko
	$(FARM) stack up --with kubernetes --with worker --project config/examples/demo-cluster
	@$(STACK_ENV) && $(FARM) build --project config/examples/demo-cluster

# The architecture (import contracts in pyproject.toml) and the types, before any test runs.
check: venv
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

test: venv tools check
	$(FARM) stack up --with buildkitd
	@$(STACK_ENV) && $(PY) -m pytest -q -p no:cacheprovider tests

test-unit: venv
	$(PY) -m pytest -q tests/unit tests/conformance

bench: venv buildkit
	$(FARM) stack up --with buildkitd
	@$(STACK_ENV) && for b in version_hash context_sync builders multi_platform submissions overhead publish; do echo "== bench/$$b.py"; $(PY) bench/$$b.py || exit 1; done

# Mutation testing of the pure core (README "Mutation testing"); no service needed.
# `make mutation SAMPLE=25` runs 25 mutants per module (a few minutes); MODULES=farm/version.py picks modules.
mutation: venv
	@$(PY) -c "import mutmut" 2>/dev/null || $(VENV)/bin/pip install -q -e '.[mutation]'
	nice -n 15 $(PY) tests/mutation/run.py $(if $(SAMPLE),--sample $(SAMPLE)) $(MODULES)

down:
	$(FARM) stack down

clean: down
	rm -rf .farm

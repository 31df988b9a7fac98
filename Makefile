# The two commands: `make demo` and `make test`. Both install what they need and start the stack
# (`farm stack up` apt-installs the Debian packages it runs when their binaries are missing).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
FARM := $(VENV)/bin/farm
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
STACK_ENV = eval "$$($(FARM) stack env)"

.PHONY: demo test test-unit check bench stack down venv tools buildkit kubernetes kaniko kustomize clean

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

down:
	$(FARM) stack down

clean: down
	rm -rf .farm

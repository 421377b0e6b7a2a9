# Two commands for a fresh machine (Python 3.11+, Node.js):
#   make run    the whole system on its embedded defaults
#   make test   the whole test suite (lint, types, tests)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast prerequisites lint typecheck venv clean lock frontend-test e2e

$(STAMP): pyproject.toml requirements/constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip uv
	$(BIN)/uv pip install --python $(BIN)/python -q -c requirements/constraints.txt -e '.[schemas,dev]'
	touch $(STAMP)

venv: $(STAMP)

# The web app is built once (when frontend/dist is missing and npm is there); without it the
# API still runs and `fmn run` says how to build the app.
run: $(STAMP)
	@if [ ! -f frontend/dist/index.html ] && command -v npm >/dev/null; then \
		(cd frontend && npm ci && npm run build) || echo "the web app did not build: the API runs without it"; \
	fi
	$(BIN)/fmn run --builtin-login

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# The real OIDC provider of the API tests (node's oidc-provider, pinned by its lock file).
OIDC_MODULES := tests/harness/oidc_provider/node_modules/.package-lock.json

$(OIDC_MODULES): tests/harness/oidc_provider/package.json tests/harness/oidc_provider/package-lock.json
	cd tests/harness/oidc_provider && npm ci --no-audit --no-fund

# The web app: installed as its lock file pins, unit tests, eslint and type-check, build (frontend/dist).
frontend-test: export CI := true
frontend-test:
	cd frontend && npm ci --no-audit --no-fund && npm test && npm run lint && npm run build

# The browser tests of the built app in headless Chromium (Debian's), against a `fmn run` on a free
# port and a temporary directory that they start and stop (frontend/e2e/run.mjs).
e2e: export CI := true
e2e: $(STAMP) frontend-test
	cd frontend && npm run e2e

# PostgreSQL, Redis, RabbitMQ answering; InspIRCd, Atheme, Chromium, systemd-analyze installed:
# started or installed as root, otherwise the exact command to run (no test skips without them).
prerequisites:
	scripts/ensure-prerequisites

test: prerequisites $(STAMP) $(OIDC_MODULES) lint typecheck frontend-test e2e
	$(BIN)/pytest -n auto --dist loadgroup -q

# The tests that need no service (see README, "Testing"): anywhere, in about a minute.
test-fast: $(STAMP)
	$(BIN)/pytest -m "not services" -n auto -q

# Refresh the constraints file after changing dependencies in pyproject.toml.
lock:
	$(BIN)/uv pip compile -q --extra schemas --extra dev pyproject.toml -o requirements/constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

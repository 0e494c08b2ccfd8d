# The two Quickstart commands: `make demo` and `make test`. Each installs what
# it needs into .venv first (once, and again when the package metadata changes).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint system-deps bench bench-deps

# The real OpenID provider the tests start (oidc-provider, pinned in tests/oidc).
tests/oidc/node_modules/.package-lock.json: tests/oidc/package-lock.json
	cd tests/oidc && npm ci --no-audit --no-fund

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed-%: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[$*]'
	touch $@

# Apache (for mod_wsgi) and memcached: installed when run as root with apt-get.
system-deps: | $(BIN)/python
	scripts/system-deps $(BIN)/python

# mod_wsgi compiles against this Python and needs Apache's headers (apxs); a
# cached wheel may have been built for another Python, hence --no-cache-dir.
$(VENV)/.installed-mod_wsgi: | $(VENV)/.installed-test system-deps
	if command -v apxs >/dev/null; then \
		$(BIN)/python -m pip install -q --no-cache-dir mod_wsgi && touch $@; \
	else echo "mod_wsgi not built: no apxs (apt-get install apache2-dev)"; fi

demo: $(VENV)/.installed-demo
	$(BIN)/restauth demo

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: system-deps lint tests/oidc/node_modules/.package-lock.json $(VENV)/.installed-mod_wsgi
	$(BIN)/pytest

# The benchmarks (docs/performance.md): each prints its table and rewrites that page.
BENCHMARKS := inprocess peers gunicorn_load upstream revocation

bench-deps: $(VENV)/.installed-bench
	scripts/system-deps $(BIN)/python wrk

bench-%: bench-deps
	$(BIN)/python -m benchmarks.$*

bench: $(addprefix bench-,$(BENCHMARKS))

# Every target sets up .venv by itself; only Python 3.11+ and make are needed.
# Installs use uv (from PATH, or bootstrapped once into .tools from PyPI), else pip.
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3.13 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TOOLS := .tools
DEMO_DIR := demo-state
# uv on PATH, else the one bootstrapped into .tools (empty when neither works: pip is used)
UV = $(shell command -v uv 2>/dev/null || { test -x $(TOOLS)/bin/uv && echo $(TOOLS)/bin/uv; })

.PHONY: venv test lint demo demo-serve bench clean

# Re-installs only when pyproject.toml changed since the last install.
$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "make: no python3 found; install Python 3.11 or newer" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "make: $(PYTHON) is older than 3.11; install Python 3.11 or newer" >&2; exit 1; }
	@command -v uv >/dev/null || test -x $(TOOLS)/bin/uv || { \
		echo "make: getting uv (a fast installer) into $(TOOLS) ..."; \
		$(PYTHON) -m pip install -qq --disable-pip-version-check --target $(TOOLS) uv \
		|| { echo "make: no uv; installing with pip instead (slower)"; rm -rf $(TOOLS); }; }
	@$(MAKE) --no-print-directory venv-install
	@touch $(STAMP)

# Called by the rule above in a new make, which sees the uv just bootstrapped; `uv pip`
# shows progress and takes seconds where pip takes minutes.
.PHONY: venv-install
venv-install:
ifneq ($(UV),)
	@echo "make: installing syncd and its dev tools into $(VENV) with $(UV)"
	@test -x $(BIN)/python || $(UV) venv --quiet --python $(PYTHON) $(VENV)
	@bash -o pipefail -c "$(UV) pip install --python $(BIN)/python -e '.[dev]' 2>&1 | { grep --line-buffered -v '^ [+-] ' || true; }"
else
	@echo "make: installing syncd and its dev tools into $(VENV) with pip"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip --version >/dev/null 2>&1 || $(BIN)/python -m ensurepip --upgrade --default-pip
	@$(BIN)/python -m pip install --disable-pip-version-check --progress-bar on -e '.[dev]'
endif

venv: $(STAMP)

test: venv
	$(BIN)/ruff check .
	$(BIN)/pytest

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The bundled fake Entra ID, Okta and Google tenants synced into SQLite under ./demo-state.
demo: venv
	$(BIN)/syncd demo --state-dir $(DEMO_DIR)

# The same, then the fake IdPs stay up (Ctrl-C stops) for plan, run --once and login-sync.
demo-serve: venv
	$(BIN)/syncd demo --state-dir $(DEMO_DIR) --keep-running

bench: venv
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) $(TOOLS) $(DEMO_DIR) build dist .pytest_cache .ruff_cache *.egg-info

# The two commands a newcomer needs: `make lab` (open the tutorials in JupyterLab) and
# `make test` (every test). Both create .venv/ at the repository root and install what they
# need; `make demo` is the terminal tour.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8888
FIRST := notebooks/tutorials/01-hello-workflow.ipynb
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup lab demo test graphviz chromium bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[jupyter,lab,dev]'
	$(PY) -m kernel_ext._early --install
	touch $@

setup: $(VENV)/.installed

# Debian's graphviz renders the history graphs; installed only where `dot` is missing.
graphviz:
	@command -v dot >/dev/null 2>&1 || { \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends graphviz >/dev/null; }

# Debian's chromium runs the browser tests (driven by playwright, never `playwright install`).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

# JupyterLab from .venv (its kernel is .venv's python) at the first tutorial. A browser opens
# only where there is a display; else open the URL printed first (JupyterLab's own URL lines
# name its root, not the tutorial). A busy port is an error, not a silent move to another.
lab: setup graphviz
	@TOKEN=$$($(PY) -c 'import secrets; print(secrets.token_hex(24))'); \
	echo "durable-lab: open http://$(HOST):$(PORT)/lab/tree/$(FIRST)?token=$$TOKEN"; \
	exec $(VENV)/bin/jupyter lab --ip=$(HOST) --port=$(PORT) --ServerApp.port_retries=0 \
	  --IdentityProvider.token=$$TOKEN \
	  --ServerApp.root_dir=. --ServerApp.default_url=/lab/tree/$(FIRST) \
	  $$( [ -n "$$DISPLAY" ] || echo --no-browser ) $$( [ "$$(id -u)" != 0 ] || echo --allow-root )

demo: setup
	$(PY) -m engine.demo

# lint-imports checks the import contracts of pyproject.toml (the engine's layers, no cycles)
# before the tests run; docs/architecture.md draws them.
test: setup graphviz chromium
	$(PY) -m mypy engine kernel_ext
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -q -p no:cacheprovider

bench: setup
	$(PY) benchmarks/throughput.py
	$(PY) benchmarks/replay.py
	$(PY) benchmarks/disk.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .mypy_cache

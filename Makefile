# Two commands a newcomer needs: `make demo` (watch the engine) and `make test` (every test).
# Both create .venv/ at the repository root and install what they need.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test graphviz bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[jupyter,dev]'
	touch $@

setup: $(VENV)/.installed

# Debian's graphviz renders the history graphs; installed only where `dot` is missing.
graphviz:
	@command -v dot >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends graphviz >/dev/null; }

demo: setup
	$(PY) -m engine.demo

test: setup graphviz
	$(PY) -m mypy engine kernel_ext
	$(PY) -m pytest -q -p no:cacheprovider

bench: setup
	$(PY) benchmarks/throughput.py
	$(PY) benchmarks/replay.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .mypy_cache

# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
DEMO_ARGS ?=             # e.g. make demo DEMO_ARGS="--duration 60 --mes-port 8080"

.PHONY: demo test lint install clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

demo: install            ## simulated factory + gateway + embedded MQTT + MES on SQLite (until Ctrl-C)
	$(VENV)/bin/edgefab demo $(DEMO_ARGS)

test: install            ## the whole test suite (real servers on loopback)
	@# A test that fails is run once more after 2 s: fault tests kill and restart real servers, and a
	@# timing flake must not hide the rest. A rerun shows as R and in the summary ("N rerun").
	$(PY) -m ruff check .
	$(PY) -m pytest -n auto --dist loadgroup -q --reruns 1 --reruns-delay 2 -ra -rR

lint: install
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info

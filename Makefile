# Every target sets itself up on a fresh machine: system packages through .ci/prerequisites
# (installed as root on Debian/Ubuntu, otherwise named in one line), the virtual environment on first use.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: demo test bench drills lint clean system-demo system-test

demo: system-demo $(STAMP)  ## run the whole system locally (Ctrl-C stops it)
	$(VENV)/bin/tower demo

test: system-test $(STAMP)  ## lint, then the test suite against a real mosquitto
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -q

bench: system-demo $(STAMP)  ## performance figures, each next to its baseline measured in the same run
	$(PY) -m benchmarks.ingest
	$(PY) -m benchmarks.simulator
	$(PY) -m benchmarks.alerts
	$(PY) -m benchmarks.dashboard
	$(PY) -m benchmarks.dashboard_browser
	$(PY) -m benchmarks.api

system-demo system-test:
	@.ci/prerequisites $(subst system-,,$@)

drills: $(STAMP)  ## fault drills at full size: kills, outages, a full disk; published / acked / stored / lost
	$(PY) -m benchmarks.drills

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

clean:
	rm -rf $(VENV) var .pytest_cache test-artifacts

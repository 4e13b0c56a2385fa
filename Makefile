# navale set-up and entry points. `make demo` and `make test` do all set-up on a
# fresh machine: they create .venv from the pinned lock file on first use.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench soak lock clean-venv

$(STAMP): requirements.lock pyproject.toml
	@test -n "$(PY)" || { echo "python3.11+ not found: set PY=/path/to/python3.11"; exit 1; }
	$(PY) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "navale needs Python >= 3.11 ($(PY) is older)"; exit 1; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

# Main job: HTML performance report of the Battle Navale backtest on the embedded (synthetic) default data set.
demo: $(STAMP)
	$(BIN)/navale report performance

# the suite runs on every core (pytest-xdist; one test file per worker so module fixtures are built once)
test: $(STAMP)
	$(BIN)/python -m pytest -q -n auto --dist loadfile

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_load.py
	$(BIN)/python benchmarks/bench_signals.py
	$(BIN)/python benchmarks/bench_sweep.py
	$(BIN)/python benchmarks/bench_report.py
	$(BIN)/python benchmarks/bench_ml.py
	$(BIN)/python benchmarks/bench_paper.py
	$(BIN)/python benchmarks/bench_collect.py
	$(BIN)/python benchmarks/bench_quality_monitor.py
	$(BIN)/python benchmarks/bench_backup.py

# Long proofs of the live loop (minutes): 100 kill -9 + restarts over the whole synthetic replay, the
# collector tailing a .scid for 48 simulated hours through 50 faults, and the live loop against the
# backtest on all 32 real contracts when ../shared/data is there.
soak: $(STAMP)
	$(BIN)/python benchmarks/soak_restart.py --kills 100
	$(BIN)/python benchmarks/soak_collect.py --hours 48 --faults 50 --speed 500 --quiet
	$(BIN)/python benchmarks/soak_restart.py --kills 30 --days 3 --ticks
	@if [ -d ../shared/data/es-5m ]; then $(BIN)/python benchmarks/paper_parity.py; fi

# Re-pin every dependency (needs network and `uv`; commit the new lock and environment.yml).
lock:
	uv pip compile requirements.in --universal --python-version 3.11 --generate-hashes -q -o requirements.lock --custom-compile-command "make lock"
	$(PY) tools/environment_yml.py

clean-venv:
	rm -rf $(VENV)

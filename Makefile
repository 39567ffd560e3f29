# Two commands on a fresh machine: `make run` (demo switch) and `make test` (the suite).
# Both create the virtual environment and install what they need.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
CONFIG ?= conf/softswitch.toml

.PHONY: run test peers lint bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

run: $(BIN)/.installed
	$(BIN)/softswitch run --config $(CONFIG)

# Real peers the tests drive (SIPp from Debian); installed when we are root and they are missing.
peers:
	@scripts/install-peers

test: $(BIN)/.installed peers
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check softswitch acd media reporting tests benchmarks
	$(BIN)/mypy softswitch

# Benchmarks (not tests): figures go to benchmarks/RESULTS.md by hand, with the command.
bench: $(BIN)/.installed peers
	@command -v rtpengine >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || \
		(apt-get install -y -qq rtpengine-daemon >/dev/null && systemctl disable --now rtpengine 2>/dev/null; true)
	$(BIN)/python benchmarks/bench_parser.py
	$(BIN)/python benchmarks/bench_transaction.py
	$(BIN)/python benchmarks/bench_core.py
	$(BIN)/python benchmarks/bench_directory.py
	$(BIN)/python benchmarks/bench_media.py
	$(BIN)/python benchmarks/bench_acd.py
	$(BIN)/python benchmarks/bench_register.py --targets softswitch,kamailio --duration 30
	$(BIN)/python benchmarks/bench_calls.py setup --rate 150 --duration 60
	$(BIN)/python benchmarks/bench_calls.py relay --calls 500 --duration 60

clean:
	rm -rf $(VENV) var .pytest_cache

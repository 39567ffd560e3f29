# Two commands on a fresh machine: `make run` (demo switch) and `make test` (the suite).
# Both create the virtual environment and install what they need.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
CONFIG ?= conf/softswitch.toml

.PHONY: run test peers lint bench clean native

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

# The SIP hot path compiled with mypyc (softswitch/_native.py); when it cannot be built, or
# its sources change after the build, the same modules run as plain Python.
NATIVE_SRC = softswitch/_native.py $(wildcard softswitch/sip/*.py) softswitch/core.py \
	softswitch/registrar.py softswitch/location.py softswitch/directory.py

build/native.stamp: $(BIN)/.installed $(NATIVE_SRC)
	@mkdir -p build
	@echo "compiling the SIP hot path (mypyc, ~1 min; log in build/native.log)"
	@$(BIN)/python -m softswitch._native build > build/native.log 2>&1; tail -n 1 build/native.log
	@touch $@

native: build/native.stamp

run: $(BIN)/.installed native
	$(BIN)/softswitch run --config $(CONFIG)

# Real peers the tests drive (SIPp from Debian); installed when we are root and they are missing.
peers:
	@scripts/install-peers

test: $(BIN)/.installed peers native
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check softswitch acd media reporting tests benchmarks
	$(BIN)/mypy softswitch acd media reporting

# Benchmarks (not tests): figures go to benchmarks/RESULTS.md by hand, with the command.
bench: $(BIN)/.installed peers native
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
	-$(PYTHON) -m softswitch._native clean
	rm -rf $(VENV) var .pytest_cache build

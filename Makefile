# whisper-tune — two commands do all the set-up on a fresh machine:
#   make demo   install into .venv and run the end-to-end demo (no network needed at run time)
#   make test   install and run lint, type check and the default test tier
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
SYSSTAMP:= $(VENV)/.system-packages
TORCH   ?= torch==2.13.0
# Where the CPU torch comes from. Empty: pip's configured indexes (this workplace's mirror serves the
# CPU build). On public PyPI, Linux torch wheels are CUDA builds (several GB): pass
#   make test TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=
EXTRAS  ?= dev,datasets,s3
PYTEST_ARGS ?=

.PHONY: install system-deps demo test lint typecheck unit integration slow bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q -U pip wheel setuptools

# The CPU build of torch is pinned first so nothing pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH)"
	@$(BIN)/python -c 'import torch; c = torch.version.cuda; print("torch", torch.__version__, "(CPU build)" if c is None else f"(CUDA {c} build: for a CPU-only machine set TORCH_INDEX, see the Makefile)")'
	$(BIN)/pip install -q -e ".[$(EXTRAS)]"
	touch $(STAMP)

# Debian packages: espeak-ng (speech synthesis), chromium + driver (browser test), the real-speech
# guard's recordings; ffmpeg-free decoding comes from soundfile. Degrades with a clear message
# without apt/root. Re-runs when the script's package list changes.
$(SYSSTAMP): scripts/system-deps.sh | $(BIN)/python
	@PYTHON=$(PY) bash scripts/system-deps.sh
	@touch $(SYSSTAMP)

install: $(STAMP) $(SYSSTAMP)

system-deps:
	@PYTHON=$(PY) bash scripts/system-deps.sh

demo: install
	$(BIN)/whisper-tune demo $(DEMO_ARGS)

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install
	$(BIN)/mypy

test: install lint typecheck
	$(BIN)/python -m pytest $(PYTEST_ARGS)

unit: install
	$(BIN)/python -m pytest -m "not integration and not slow and not gpu" $(PYTEST_ARGS)

integration: install
	$(BIN)/python -m pytest -m integration $(PYTEST_ARGS)

slow: install
	$(BIN)/python -m pytest -m "slow" $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist src/*.egg-info

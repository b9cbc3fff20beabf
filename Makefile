# fxq_explore: two commands on a fresh machine -- `make lab` and `make test`.
# Every target creates .venv if it is missing and installs what it needs into it.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
export UV_PYTHON_DOWNLOADS := never
NBVAL_TIMEOUT ?= 300
PORT ?= 8888

.PHONY: lab test test-fast install-lab install-test install-lint lint lint-notebooks format bench asan book test-browser clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip uv

install-lab: $(PY)
	$(UV) pip install --python $(PY) -q -e '.[lab,compare]'

install-test: $(PY)
	$(UV) pip install --python $(PY) -q -e '.[test,compare]'
	@# torch only from pip: its CPU wheel lies on disk (uv would fetch a multi-GB CUDA build)
	$(PY) -c "import torch" 2>/dev/null || $(VENV)/bin/pip install -q torch==2.13.0 || \
	    echo "torch==2.13.0 not installable: the torch comparisons are skipped"
	@# user-mode QEMU runs ONNX Runtime on an emulated AVX2-only CPU (tests/engines/test_emulated_cpu.py)
	@command -v qemu-x86_64 >/dev/null || { apt-get update -qq >/dev/null 2>&1 && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user >/dev/null 2>&1; } || \
	    echo "qemu-user not installable: the emulated-CPU engine checks are skipped"

install-lint: $(PY)
	$(UV) pip install --python $(PY) -q -e '.[lint]'

LINT_PY := fxq_explore tests benchmarks scripts csrc/build_ffi.py book/filter_toc.py
LINT_C := $(wildcard csrc/*.c csrc/*.h)

## make lint: the static gate (first step of .ci/run): ruff, ruff format, mypy, import-linter, clang-format
# The chapters are linted as the notebooks jupytext makes of them (ruff reads .ipynb cells).
LINT_NB := build/lint/notebooks
CHAPTER_SOURCES = $(sort $(wildcard notebooks/[0-9][0-9]_*.md))
lint-notebooks: install-lint
	rm -rf $(LINT_NB) && mkdir -p $(LINT_NB)
	for f in $(CHAPTER_SOURCES); do $(VENV)/bin/jupytext -q --to ipynb -o $(LINT_NB)/$$(basename $$f .md).ipynb $$f || exit 1; done

lint: install-lint lint-notebooks
	$(VENV)/bin/ruff check $(LINT_PY) $(LINT_NB)
	$(VENV)/bin/ruff format --check $(LINT_PY) $(LINT_NB)
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(VENV)/bin/clang-format --dry-run --Werror $(LINT_C)

## make format: apply ruff's fixes and formatting and clang-format in place
format: install-lint lint-notebooks
	$(VENV)/bin/ruff check --fix $(LINT_PY)
	$(VENV)/bin/ruff format $(LINT_PY)
	$(VENV)/bin/ruff check --fix -q $(LINT_NB) || true
	$(VENV)/bin/ruff format -q $(LINT_NB)
	for f in $(CHAPTER_SOURCES); do $(VENV)/bin/jupytext -q --to myst -o $$f $(LINT_NB)/$$(basename $$f .md).ipynb || exit 1; done
	$(VENV)/bin/clang-format -i $(LINT_C)

# JupyterLab opens the MyST chapters (notebooks/*.md) as notebooks on double-click: jupytext's
# JupyterLab extension provides the "Jupytext Notebook" viewer, and this settings override (in the
# venv, never the user's ~/.jupyter) makes it the default viewer for Markdown files.
LAB_OVERRIDES := $(VENV)/share/jupyter/lab/settings/overrides.json
$(LAB_OVERRIDES): mk/lab_overrides.json
	mkdir -p $(dir $@) && cp $< $@

## make lab: JupyterLab on notebooks/ (headless; works as root); double-click a chapter to open it
lab: install-lab $(LAB_OVERRIDES)
	$(PY) -m jupyter lab --no-browser --allow-root --ip=127.0.0.1 --port=$(PORT) \
	    --ServerApp.root_dir=notebooks

## make test: unit, property, kernel and widget tests, doctests, and every chapter (nbval)
# The chapters are MyST sources; jupytext converts each into build/notebooks/ (not committed) for nbval.
CHAPTERS = $(sort $(wildcard notebooks/[0-9][0-9]_*.md))
NB_BUILD := build/notebooks
test: install-test
	MPLBACKEND=Agg $(PY) -m pytest -q -m 'not slow' tests fxq_explore
	rm -rf $(NB_BUILD) && mkdir -p $(NB_BUILD)
	for f in $(CHAPTERS); do $(VENV)/bin/jupytext -q --to ipynb -o $(NB_BUILD)/$$(basename $$f .md).ipynb $$f || exit 1; done
	MPLBACKEND=Agg $(PY) -m pytest -q --nbval --nbval-cell-timeout=$(NBVAL_TIMEOUT) \
	    --nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider $(NB_BUILD) \
	    -o addopts='' -o testpaths=''

test-fast: install-test
	MPLBACKEND=Agg $(PY) -m pytest -q -x -m 'not slow' tests fxq_explore

clean:
	rm -rf $(VENV) build *.egg-info fxq_explore/*.so fxq_explore/_kernels.c book/_build

include mk/book.mk

## make asan: the kernel tests against an AddressSanitizer build of the C extension (in .asan/)
ASAN_LIB = $(shell gcc -print-file-name=libasan.so)
asan: $(PY)
	rm -rf .asan && mkdir -p .asan/fxq_explore .asan/tests
	cp -r fxq_explore/. .asan/fxq_explore/ && rm -f .asan/fxq_explore/*.so
	cp -r tests/kernels .asan/tests/
	for f in tests/__init__.py tests/conftest.py; do [ ! -f $$f ] || cp $$f .asan/tests/; done
	cd .asan && FXQ_EXTRA_CFLAGS="-fsanitize=address -fno-omit-frame-pointer -g" \
	    FXQ_EXTRA_LDFLAGS="-fsanitize=address" \
	    ../$(PY) -c "import sys; sys.path.insert(0, '../csrc'); import build_ffi; \
	    build_ffi.ffibuilder.compile(tmpdir='.', verbose=False)"
	cd .asan && LD_PRELOAD=$(ASAN_LIB) ASAN_OPTIONS=detect_leaks=0 \
	    ../$(PY) -c "import fxq_explore._kernels as k, sys; \
	    assert k.__file__.startswith('$(CURDIR)/.asan/'), k.__file__; print('asan build:', k.__file__)"
	cd .asan && LD_PRELOAD=$(ASAN_LIB) ASAN_OPTIONS=detect_leaks=0 \
	    FXQ_EXPECT_EXTENSION_DIR=$(CURDIR)/.asan/ FXQ_EXACT_WORKSPACE=1 \
	    ../$(PY) -m pytest -q -p no:cacheprovider -o addopts='' --rootdir=. tests/kernels

## make bench: the kernel benchmark (fxq C kernels vs ONNX Runtime, LiteRT XNNPACK and torch, one thread)
BENCH_ARGS ?=
bench: $(PY)
	$(UV) pip install --python $(PY) -q -e '.[compare]' ai-edge-litert tflite
	$(PY) -c "import torch" 2>/dev/null || $(VENV)/bin/pip install -q torch==2.13.0 || \
	    echo "torch not installed: the benchmark runs without it"
	$(PY) benchmarks/seed_layer.py $(BENCH_ARGS)

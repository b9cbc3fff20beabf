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

.PHONY: lab test test-fast install-lab install-test bench asan book test-browser clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip uv

install-lab: $(PY)
	$(UV) pip install --python $(PY) -q -e '.[lab]'

install-test: $(PY)
	$(UV) pip install --python $(PY) -q -e '.[test]'

## make lab: JupyterLab on notebooks/ (headless; works as root)
lab: install-lab
	$(PY) -m jupyter lab --no-browser --allow-root --ip=127.0.0.1 --port=$(PORT) \
	    --ServerApp.root_dir=notebooks

## make test: unit, property, kernel and widget tests, doctests, and every notebook (nbval)
test: install-test
	MPLBACKEND=Agg $(PY) -m pytest -q -m 'not slow' tests fxq_explore
	MPLBACKEND=Agg $(PY) -m pytest -q --nbval --nbval-cell-timeout=$(NBVAL_TIMEOUT) \
	    --nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider notebooks \
	    -o addopts='' -o testpaths=''

test-fast: install-test
	MPLBACKEND=Agg $(PY) -m pytest -q -x -m 'not slow' tests fxq_explore

clean:
	rm -rf $(VENV) build *.egg-info fxq_explore/*.so fxq_explore/_kernels.c book/_build

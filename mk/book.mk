# The Jupyter Book site and the browser checks (issue 6). Included from the Makefile, which defines
# SHELL, VENV, PY, UV and the $(PY) rule that creates .venv.
#
#   make book          build book/_build/html (Jupyter Book 1.x; chapters = notebooks/, executed; -W)
#   make test-browser  JupyterLab (chapter opened by double-click) slider check + screenshots/asserts of the built book, in headless Chromium
#
BOOK_BUILD := book/_build
BOOK_HTML := $(BOOK_BUILD)/html
# -W: any warning fails the build; --keep-going: report all of them first. BOOK_ALL=1 re-reads every page.
BOOK_FLAGS ?= -W --keep-going $(if $(BOOK_ALL),--all,)
CHROMIUM ?= /usr/bin/chromium

.PHONY: book install-book install-browser test-browser

install-book: $(PY)
	$(UV) pip install --python $(PY) -q -e '.[book]'

## make book: the Jupyter Book site in book/_build/html (open book/_build/html/index.html)
book: install-book
	bash scripts/fetch_book_assets.sh
	$(PY) book/filter_toc.py book/_toc.yml $(BOOK_BUILD)/_toc.yml
	MPLBACKEND=module://matplotlib_inline.backend_inline \
	    $(VENV)/bin/jupyter-book build . --config book/_config.yml --toc $(BOOK_BUILD)/_toc.yml \
	    --path-output book $(BOOK_FLAGS)
	@echo "book: open $(BOOK_HTML)/index.html"

install-browser: $(PY)
	$(UV) pip install --python $(PY) -q -e '.[browser]'
	@# Debian's chromium; never `playwright install` (it downloads a browser build and fails offline).
	@test -x $(CHROMIUM) || { apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@$(CHROMIUM) --version 2>/dev/null | tail -1

## make test-browser: JupyterLab on 127.0.0.1 + the built book, in headless Chromium (screenshots/)
test-browser: install-browser $(LAB_OVERRIDES)
	@test -f $(BOOK_HTML)/index.html || $(MAKE) book
	FXQ_BROWSER=1 FXQ_CHROMIUM=$(CHROMIUM) $(PY) -m pytest -q -p no:cacheprovider \
	    -o addopts='-ra' -o testpaths='' -s tests/browser

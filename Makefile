# Two commands do all the set-up on a fresh machine:
#   make demo   create/reuse .venv, install, run the whole pipeline on the embedded synthetic corpus
#   make test   same venv, lint (ruff) and run the test suite (CI: .ci/run)
#   make docs   the documentation (docs/, API reference from the docstrings) into site/, warnings as errors
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DOCS_STAMP := $(VENV)/.docs-installed-stamp
DEMO_OUT ?= results/demo
PYTEST_ARGS ?=

.PHONY: demo test lint docs clean-demo

# tools/install.py installs with uv (the same releases as pip, from pip's configured indexes; 20 s instead of
# pip's 65 s on 2 cores), with pip if uv is not available.  Neither byte-compiles: compileall on every core
# does it in less time than pip's single process (a fresh pip install: 107 s -> 88 s on 2 cores).  Like pip,
# it skips files that do not compile.  The packages' own test folders (4,071 of 13,688 .py files, never
# imported; matched below site-packages only, so a clone inside a folder named tests is unaffected) are left
# out: 23 s -> 15 s.
$(STAMP): setup.cfg pyproject.toml tools/install.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python tools/install.py '.[test,dask]'
	$(BIN)/python -c "import compileall, re, sysconfig; sp = sysconfig.get_path('purelib'); compileall.compile_dir(sp, quiet=2, workers=0, rx=re.compile(re.escape(sp) + r'.*[/\\\\]tests?[/\\\\]'))"
	touch $(STAMP)

$(DOCS_STAMP): $(STAMP)
	$(BIN)/python tools/install.py '.[test,dask,docs]'
	touch $(DOCS_STAMP)

demo: $(STAMP)
	$(BIN)/scatterxai run --out $(DEMO_OUT)

lint: $(STAMP)
	$(BIN)/ruff check .

# every test, paper-size ones (marker "slow") included; PYTEST_ARGS='-m "not slow"' skips those
test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# mkdocs + mkdocstrings (numpydoc); --strict: any warning (a broken link, a docstring griffe cannot parse) fails
docs: $(DOCS_STAMP)
	$(BIN)/mkdocs build --strict --site-dir site

clean-demo:
	rm -rf $(DEMO_OUT)

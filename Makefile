# Two commands on a fresh machine:  `make demo` (set up + default training), `make test` (set up +
# lint + type check + documentation site + whole test suite). `constraints.txt` pins the CPU torch wheel.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_WORKERS ?= 2

.PHONY: setup demo test lint docs bench clean chromium

setup: $(VENV)/.installed chromium

chromium:
	@# the dashboard's browser test drives Debian's chromium: installed when missing and apt is
	@# usable (root); elsewhere that test skips (outside CI) with a reason
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || \
	      (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium chromium-driver \
	       >/dev/null 2>&1) || echo "note: could not install chromium (dashboard test skips)"; \
	  else echo "note: chromium missing and apt unavailable (dashboard browser test skips)"; fi; \
	fi

$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $@

demo: setup
	$(VENV)/bin/hypergraph train

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks tools
	$(VENV)/bin/mypy

# The documentation site (mkdocs.yml), warnings as errors; open build/site/index.html.
docs: setup
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet -d build/site

# HYPERGRAPH_MATRIX=full: every tag-valid module combination trains one epoch (about 3 min on
# 2 cores); plain `pytest` runs the pair-wise subset.
test: lint docs
	HYPERGRAPH_MATRIX=full $(PY) -m pytest -n $(PYTEST_WORKERS) -q

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache

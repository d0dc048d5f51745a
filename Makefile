# fastdl: two commands do everything — `make demo` (train the MNIST CNN) and `make test`.
# Each creates (or reuses) the virtual environment .venv with fastdl and its dev tools.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
comma := ,
# Data sets: $FASTDL_DATA if set, else ../shared/data when it exists (else the loaders'
# own search: user cache, then download).
FASTDL_DATA ?= $(shell [ -d ../shared/data ] && cd ../shared/data && pwd)
export FASTDL_DATA

.PHONY: demo test smoke bench-check lint clean

# torch first, pinned: the interop tests need it, and an unpinned request would fetch a
# several-GB CUDA build (TORCH= skips it; the torch tests then skip and say so).
TORCH ?= torch==2.13.0
EXTRAS ?= dev,scipy,plot,progress,tensorboard,mpi,torch,onnx,safetensors

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(if $(TORCH),$(BIN)/python -m pip install -q '$(TORCH)')
	$(BIN)/python -m pip install -q -e '.[$(if $(TORCH),$(EXTRAS),$(subst $(comma)torch,,$(EXTRAS)))]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/fastdl train mnist-cnn

test: $(BIN)/.installed
	$(BIN)/python -m pytest -q

smoke: $(BIN)/.installed
	@set -e; for ex in examples/*.py examples/book/ch*.py; do echo "== $$ex --smoke"; $(BIN)/python $$ex --smoke; done

bench-check: $(BIN)/.installed
	cd asv_bench && ../$(BIN)/asv check --python=same

lint: $(BIN)/.installed
	$(BIN)/ruff check fastdl tests examples asv_bench

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

# -- documentation and release (issue 18) ----------------------------------------------------

.PHONY: docs docs-check release-check

$(BIN)/.docs-installed: $(BIN)/.installed pyproject.toml
	$(BIN)/python -m pip install -q -e '.[docs]'
	touch $@

# The site, from scratch every time (the gallery runs every example in its --smoke mode):
# docs/_build/html; warnings are errors. SPHINXOPTS= adds options (e.g. -D plot_gallery=0).
docs: $(BIN)/.docs-installed
	rm -rf docs/_build/html docs/_build/doctrees docs/gallery docs/api/generated docs/api/ref \
	    docs/_gallery_src docs/sg_execution_times.rst
	@start=$$(date +%s); \
	$(BIN)/python -m sphinx -b html -W --keep-going -d docs/_build/doctrees $(SPHINXOPTS) docs docs/_build/html && \
	echo "docs: built in $$(( $$(date +%s) - start )) s ($$(find docs/_build/html -name '*.html' | wc -l) pages)"

# The built site in headless Chromium on 127.0.0.1, no other network: maths rendered, internal
# links resolve, search finds "im2col"; screenshots in docs/_build/screenshots/.
docs-check: $(BIN)/.docs-installed
	@[ -f docs/_build/html/index.html ] || { echo "docs-check: run make docs first" >&2; exit 1; }
	$(BIN)/python docs/check_site.py docs/_build/html

# sdist + wheel, twine check, then a fresh virtual environment installs the wheel alone and
# trains the CNN from it, outside the source tree (the check fails if fastdl is imported from
# anywhere but that environment's site-packages).
RELEASE_DIR ?= build/release-check
release-check: $(BIN)/.installed
	rm -rf $(RELEASE_DIR) && mkdir -p $(RELEASE_DIR)
	$(BIN)/python -m pip install -q build twine
	$(BIN)/python -m build --outdir $(RELEASE_DIR)/dist .
	$(BIN)/python -m twine check --strict $(RELEASE_DIR)/dist/*
	$(PYTHON) -m venv $(RELEASE_DIR)/venv
	$(RELEASE_DIR)/venv/bin/python -m pip install -q $(RELEASE_DIR)/dist/fastdl-*.whl
	cd $(RELEASE_DIR) && venv/bin/python -I -c "import fastdl, sys; \
	    assert '/venv/lib/' in fastdl.__file__, fastdl.__file__; \
	    print('release-check: fastdl', fastdl.__version__, 'from', fastdl.__file__)"
	cd $(RELEASE_DIR) && venv/bin/fastdl train mnist-cnn --smoke
	@echo "release-check: $$(ls $(RELEASE_DIR)/dist) pass twine check; the wheel trained from a fresh venv"

# -- speed history (issue 15) ------------------------------------------------------------------

.PHONY: bench-history bench-history-quick bench-history-check

# asv over 16 commits since the compiled kernels landed (both ends; ~45-60 min on the 2-core
# machine), published to asv_bench/html with asv's scripts vendored (opens offline); redraws
# docs/images/asv_history_cnn.png. Open: python -m http.server --bind 127.0.0.1 --directory asv_bench/html 8080
bench-history: $(BIN)/.installed
	$(BIN)/python asv_bench/history.py --plot docs/images/asv_history_cnn.png

# 4 commits, asv --quick, the CNN step and inference and the matmul ceiling: ~6 min
bench-history-quick: $(BIN)/.installed
	$(BIN)/python asv_bench/history.py --quick

# the published history in headless Chromium, no network but 127.0.0.1: no request off the
# machine, graphs drawn, the regressions table; screenshots in asv_bench/history_screenshots/
bench-history-check: $(BIN)/.installed
	@[ -f asv_bench/html/index.html ] || { echo "bench-history-check: run make bench-history or bench-history-quick first" >&2; exit 1; }
	$(BIN)/python asv_bench/check_history.py

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

# pc3d: the two entry points are `make demo` and `make test` (both set up .venv first when needed).
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
# pip warns about every absent local index folder of this machine's pip.conf: keep the log readable.
QUIET_PIP := 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# Builds the C++ sources two at a time (the machines here have 2 cores).
export MAX_JOBS ?= 2
STAMP := $(VENV)/.pc3d-installed
CSRC := $(shell find csrc -name '*.cpp' -o -name '*.h' -o -name '*.cu' -o -name '*.py' 2>/dev/null)
PYTEST_ARGS ?=

.PHONY: setup build demo test test-all bench check-cuda clean

setup: $(STAMP) build

# Dependencies: re-run only when the requirement files change.
$(STAMP): requirements.txt requirements-test.txt $(wildcard requirements/*.txt)
	@command -v apt-get >/dev/null && ! ldconfig -p | grep -q libusb-1.0 && \
	  { apt-get install -y -q libusb-1.0-0 >/dev/null 2>&1 || \
	    (apt-get update -q >/dev/null && apt-get install -y -q libusb-1.0-0 >/dev/null) || \
	    echo "warning: could not install libusb-1.0-0 (open3d needs it)"; } || true
	@# A torch that the system python already imports is reused; otherwise the CPU build 2.13.0.
	@if [ ! -x $(PY) ]; then \
	  if python3 -c 'import torch' 2>/dev/null; then python3 -m venv --system-site-packages $(VENV); \
	  else python3 -m venv $(VENV); fi; fi
	$(PIP) install -q --upgrade pip setuptools wheel ninja $(QUIET_PIP)
	$(PY) -c 'import torch' 2>/dev/null || $(PIP) install -q torch==2.13.0 $(QUIET_PIP)
	@# Pin the torch that is now installed so nothing below can swap it for a CUDA build.
	$(PY) -W ignore -c 'import torch; print("torch==" + torch.__version__.split("+")[0])' > $(VENV)/torch-pin.txt
	$(PIP) install -q -c $(VENV)/torch-pin.txt -r requirements.txt -r requirements-test.txt $(QUIET_PIP)
	@# The official nuScenes eval, for the equality tests: --no-deps bypasses its numpy<2 pin.
	$(PIP) install -q -c $(VENV)/torch-pin.txt --no-deps nuscenes-devkit==1.2.0 $(QUIET_PIP)
	@# torch-scatter has no wheel on PyPI: it builds against the installed torch (set
	@# PC3D_WHEELHOUSE to a folder with a prebuilt wheel to skip the ~11 min build).
	$(PIP) install -q -c $(VENV)/torch-pin.txt --no-build-isolation \
	  $(if $(PC3D_WHEELHOUSE),--find-links $(PC3D_WHEELHOUSE)) torch-scatter==2.1.2 $(QUIET_PIP)
	touch $@

# The compiled op library pc3d._C (incremental through ninja).
build: $(STAMP) build/.pc3d-built

build/.pc3d-built: $(STAMP) setup.py $(CSRC)
	@mkdir -p build
	@echo "building pc3d._C (log: build/install.log)"
	@$(PIP) install --no-build-isolation --no-deps -e . > build/install.log 2>&1 || { tail -60 build/install.log; exit 1; }
	@$(PY) -c 'import pc3d.ops' || { echo "pc3d._C failed to build or load"; exit 1; }
	@touch $@

demo: setup
	$(PY) tools/demo.py

test: setup
	@if command -v nvcc >/dev/null; then $(PY) tools/check_cuda.py; else echo "nvcc not found: CUDA compile check skipped"; fi
	$(PY) -m pytest -q tests $(PYTEST_ARGS)

test-all: setup
	$(PY) -m pytest -q tests --runslow $(PYTEST_ARGS)

bench: setup
	$(PY) tools/benchmark.py --out benchmark.json

check-cuda: setup
	$(PY) tools/check_cuda.py

clean:
	rm -rf build pc3d/*.so *.egg-info

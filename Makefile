# Quick start:  make demo   (sets up .venv, renders the built-in demo bag into demo-out/)
#               make test   (sets up .venv, runs the test suite)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: demo test test-slow bench gvxr-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/xraybag render demo -n 4 -o demo-out
	$(BIN)/xraybag preview demo-out -o demo-out/preview.png

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

# gVirtualXray for the side-by-side check (tests/test_gvxr.py, benchmarks/gvxr_compare.py):
# Debian's Mesa EGL libraries let it run headless on the CPU.
gvxr-deps: $(STAMP)
	apt-get install -y -q libegl1 libgl1-mesa-dri libxcb-res0 libxcb-ewmh2 libxcb-composite0 \
	    libxcb-xinerama0 libxcb-keysyms1 libxcb-icccm4
	$(BIN)/python -m pip install --quiet -e '.[test,gvxr]'

bench: $(STAMP)
	$(BIN)/python benchmarks/render_throughput.py

clean:
	rm -rf $(VENV) demo-out .pytest_cache

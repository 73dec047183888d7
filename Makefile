# Quick start:  make demo   (sets up .venv, renders the built-in demo bag into demo-out/)
#               make test   (sets up .venv, runs the test suite)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: demo test test-slow test-gpu device-inputs bench bench-learn bench-apsam bench-value bench-xsyn gvxr-deps mmdet-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/xraybag render demo -n 4 -o demo-out
	$(BIN)/xraybag preview demo-out

# the suite (what CI runs): the 15 slowest tests are printed, so a slow one shows the day it appears.
# TEST_JOBS pytest-xdist workers (one per core of the 2-core reference machine; each file's tests
# stay in one worker, so module fixtures are built once); TEST_JOBS=0 runs in this process.
TEST_JOBS ?= 2
test: $(STAMP)
	$(BIN)/python -m pytest -q --durations=15 -n $(TEST_JOBS) --dist loadfile

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

# exactly the tests marked gpu, on a machine with CUDA (they skip where there is none)
test-gpu: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,gpu]'
	$(BIN)/python -m pytest -q -m gpu -rs

# what benchmarks/device_check.sh needs on a GPU host (the device tool's, Python 3.12, no pybullet,
# spekpy or internet): the packed checked_ct bag as a concrete scene, the recorded spectra, and
# wheels of the packages that host lacks, pinned to this venv's versions. Carry .device-inputs.
DEVICE_WHEELS := annotated-types manifold3d platformdirs pydantic pydantic_core rtree ruamel.yaml \
	SQLAlchemy trimesh typing-inspection xraydb
device-inputs: $(STAMP)
	$(BIN)/python benchmarks/device_inputs.py --out .device-inputs
	$(BIN)/python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
	    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
	    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .device-inputs/whl \
	    $$($(BIN)/python -c "import importlib.metadata as m; print(' '.join(n + '==' + m.version(n) for n in '$(DEVICE_WHEELS)'.split()))")

# gVirtualXray for the side-by-side check (tests/test_gvxr.py, benchmarks/gvxr_compare.py):
# Debian's Mesa EGL libraries let it run headless on the CPU.
gvxr-deps: $(STAMP)
	apt-get install -y -q libegl1 libgl1-mesa-dri libxcb-res0 libxcb-ewmh2 libxcb-composite0 \
	    libxcb-xinerama0 libxcb-keysyms1 libxcb-icccm4
	$(BIN)/python -m pip install --quiet -e '.[test,gvxr]'

# mmdet 3.3 for the LAATSSHead registration (xraybag/learners/mmdet_la.py, tests/test_mmdet_la.py):
# PyPI has no mmcv wheel, so mmcv 2.1.0 is compiled here (C++20: torch 2.14's headers need it).
MMCV := mmcv-2.1.0
mmdet-deps: $(STAMP)
	$(BIN)/python -m pip install --quiet 'setuptools<70' ninja mmengine
	rm -rf build/$(MMCV) && mkdir -p build
	$(BIN)/python -m pip download --quiet --no-deps --no-binary :all: --no-build-isolation \
	    -d build mmcv==2.1.0
	tar -xzf build/$(MMCV).tar.gz -C build
	sed -i 's/-std=c++1[47]/-std=c++20/g' build/$(MMCV)/setup.py
	cd build/$(MMCV) && MMCV_WITH_OPS=1 MAX_JOBS=$$(nproc) ../../$(BIN)/python -m pip install \
	    --quiet --no-build-isolation .
	$(BIN)/python -m pip install --quiet mmdet==3.3.0

# figures, not tests: each script prints JSON (see README, "Benchmarks")
bench: $(STAMP)
	$(BIN)/python benchmarks/render_throughput.py
	$(BIN)/python benchmarks/packing.py
	$(BIN)/python benchmarks/ct_bag.py

# the PIDray-style learning figure of docs/learners.md: 400 bags rendered, the small CPU detector
# trained and scored (about 25 minutes on 2 cores)
bench-learn: $(STAMP)
	$(BIN)/python benchmarks/pidray_learn.py --work bench-out/pidray

# APSAM's ablation of docs/learners.md: 90 xseg bags, 5 variants x 3 seeds of the tiny preset
bench-apsam: $(STAMP)
	test -f bench-out/xseg90/annotations.json || $(BIN)/xraybag render xseg -n 90 -o bench-out/xseg90 -q
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/apsam_compare.py --data bench-out/xseg90 --out bench-out/apsam \
	    --seeds 0 1 2 --jobs 2 --opt epochs=4 --opt val_every=0

# what synthetic data is worth on another scanner (docs/learners.md): atss trained on pidray (source),
# on pidray + tip composites into pidray_vendor_b's benign bags, on pidray + its cyclegan translation,
# and on pidray_vendor_b's labels, each scored on pidray_vendor_b's test split; 3 seeds (about 50 min on 2 cores)
bench-value: $(STAMP)
	$(BIN)/python benchmarks/learning_value.py --work bench-out/learning_value --seeds 0 1 2 --jobs 2 \
	    --xsyn-opt steps=15 --xsyn-opt window=128 --xsyn-opt max_images=60 \
	    --json bench-out/learning_value.json --markdown

clean:
	rm -rf $(VENV) demo-out bench-out .pytest_cache build

# Xsyn on the toy set (docs/learners.md, "xsyn"): 200 one-object bags, the crop classifier, the CAR
# segmenter, a tiny generator (about 30 min on one core), then variant M as asked and with the two
# classes swapped, three generation seeds each, scored by benchmarks/xsyn_toy.py evaluate
XSYN := bench-out/xsyn_toy
XSYN_GEN := --opt checkpoint=$(XSYN)/run/pipeline --opt segmenter_weights=$(XSYN)/sam/weights.pt \
            --opt car_compare=0,2 --opt bom=false --opt max_images=40 --opt threads=1
bench-xsyn: $(STAMP)
	test -f $(XSYN)/data/annotations.json || $(BIN)/xraybag render benchmarks/xsyn_toy.yaml -n 200 -o $(XSYN)/data
	test -f $(XSYN)/classifier.pt || $(BIN)/python benchmarks/xsyn_toy.py classifier --data $(XSYN)/data --out $(XSYN)/classifier.pt
	test -f $(XSYN)/sam/weights.pt || $(BIN)/python benchmarks/xsyn_toy.py segmenter --data $(XSYN)/data --out $(XSYN)/sam
	test -f $(XSYN)/run/pipeline/model_index.json || $(BIN)/xraybag learn train xsyn --data $(XSYN)/data \
	    -o $(XSYN)/run --opt iterations=4500 --opt lr=3e-4 --opt guidance=5 --opt val_every=1000 --opt threads=1 --quiet
	for s in 0 1 2; do for r in "" "knife:bottle,bottle:knife"; do \
	    o=$(XSYN)/gen_s$$s$${r:+_swap}; rm -rf $$o; \
	    $(BIN)/xraybag learn synthesize xsyn --data $(XSYN)/data -o $$o $(XSYN_GEN) --opt seed=$$s \
	        $${r:+--opt relabel=$$r} && \
	    $(BIN)/python benchmarks/xsyn_toy.py evaluate --source $(XSYN)/data --generated $$o \
	        --classifier $(XSYN)/classifier.pt > $$o.json; done; done

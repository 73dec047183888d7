#!/usr/bin/env bash
# The GPU checks of the performance issue in one run, on a GPU host (the device tool), writing
# JSON and logs to $OUT (default: device-out/). Prepare here first: `make device-inputs` (the
# packed checked_ct bag as a concrete scene, the recorded spectra, wheels of the packages the
# host lacks), then on the host, with `.device-inputs` carried:
#
#     bash benchmarks/device_check.sh
#
# Steps: the `gpu` tests (2D tracer, spectral pass and whole detection, pseudo-colour, CT projectors, and every stage of the GPU CT:
# mesh tracer, detection filters, decomposition, SSRB + FBP, labels, against the CPU); the 2D
# views on the GPU beside the CPU (trace_gpu.py); the DEBISim-sized CT bag with --device cuda,
# then --device cpu, on the same machine, and their volumes compared voxel by voxel (same seed:
# the CT's counter-based draws are the same on both devices).
set -u -o pipefail
OUT=${OUT:-device-out}
mkdir -p "$OUT"
IN=.device-inputs
export PYTHONUNBUFFERED=1 XRAYBAG_SPECTRA_DIR="$PWD/$IN/spectra"
PY=${PYTHON:-python3}
if ! $PY -c "import pydantic, ruamel.yaml, trimesh, xraydb" 2>/dev/null; then  # the host's own Python
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$IN"/whl/*.whl || exit 1
    export PYTHONPATH="/tmp/site:$PWD"
else
    export PYTHONPATH="$PWD"
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > "$OUT/gpu.txt" 2>&1
$PY -c "import numba, numpy; from numba import cuda; print(numba.__version__, numpy.__version__, cuda.is_available())" | tee -a "$OUT/gpu.txt"
step() {  # name, command...: run, keep the log, carry on after a failure
    local name=$1; shift
    local t0=$SECONDS
    "$@" > "$OUT/$name.out" 2> "$OUT/$name.log"
    echo "$name: exit $? in $((SECONDS - t0)) s" | tee -a "$OUT/steps.txt"
}
step test_gpu $PY -m pytest -q -m gpu -rs -p no:cacheprovider tests/test_trace_cuda.py tests/test_detect_cuda.py \
    tests/test_ct_project.py tests/test_ct_forward_cuda.py tests/test_filters_cuda.py tests/test_decompose_cuda.py \
    tests/test_ssrb_cuda.py tests/test_voxelize_cuda.py tests/test_colour_cuda.py
step trace_gpu $PY benchmarks/trace_gpu.py --bags 3 --repeat 5
VOL=/tmp/device-ct  # the two runs' volumes, compared voxel by voxel (not brought back: GBs)
step ct_bag_cuda $PY benchmarks/ct_bag.py --scene "$IN/checked_ct_bag0.yaml" --device cuda --repeat 2 --out $VOL/cuda
step ct_bag_cpu $PY benchmarks/ct_bag.py --scene "$IN/checked_ct_bag0.yaml" --device cpu --out $VOL/cpu
step ct_compare $PY benchmarks/ct_compare.py $VOL/cuda $VOL/cpu
tail -n 3 "$OUT"/test_gpu.out

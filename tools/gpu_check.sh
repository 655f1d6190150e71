#!/usr/bin/env bash
# One script for a machine with one GPU (e.g. an H100 lent through the device tool): builds the CUDA kernels, runs
# the CUDA tests, trains the demo config for a few hundred iterations on the GPU, and times each paper-scale detector
# at batch 1 on a 150k-point frame (fp32 and AMP). Writes JSON under OUT (default gpu_check/); about 8 minutes.
#   tools/gpu_check.sh [OUT]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-${OUT:-gpu_check}}"
PY="${PY:-python}"
mkdir -p "$OUT"
start=$(date +%s)
step() { echo "[gpu_check $(( $(date +%s) - start ))s] $*"; }

step "build the CUDA kernels"
"$PY" -c 'import torch; assert torch.cuda.is_available(), "no CUDA device"; print(torch.__version__, torch.cuda.get_device_name(0))' \
  | tee "$OUT/device.txt"
FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}" MAX_JOBS="${MAX_JOBS:-16}" \
  "$PY" setup.py build_ext --inplace > "$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; }

step "CUDA tests"
"$PY" -m pytest -q tests/test_cuda_ops.py tests/test_boxes.py -k "cuda or CUDA" --junitxml "$OUT/cuda_tests.xml" \
  2>&1 | tail -5 | tee "$OUT/cuda_tests.txt"

step "train the demo config on the GPU"
if [ ! -f data/gpu_check/train_infos.json ]; then
  "$PY" tools/create_data.py synthetic --out data/gpu_check --train 32 --val 0 --workers 8 > "$OUT/simulate.log" 2>&1
fi
"$PY" tools/gpu_check.py train --data-root data/gpu_check --iters "${ITERS:-300}" --out "$OUT/train.json"

step "detector latency, batch 1, 150k points, fp32 and AMP"
"$PY" tools/gpu_check.py latency --out "$OUT/latency.json"
step "done: $OUT/{device.txt,cuda_tests.txt,train.json,latency.json}"

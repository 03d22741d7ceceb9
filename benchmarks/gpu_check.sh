#!/usr/bin/env bash
# The prepared GPU check (one command, about 7 minutes on one H100/H200, 9 at most by its timeouts): the CUDA
# tests, then the speed, CUDA-graph, scaling and bf16-autocast benchmarks on the GPU. Results land in
# benchmarks/results/*-cuda.json and cuda-graph.json
# and, with the device tool, in $OUT (copied back to the workstation).
#   bash benchmarks/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-/tmp/gpu_check}"
mkdir -p "$out"
source benchmarks/gpu_env.sh
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$out/gpu.txt"
start=$(date +%s)
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_devices.py tests/test_cli.py -k "cuda" 2>&1 \
  | tail -5 | tee "$out/cuda_tests.txt"
timeout 120 python3 benchmarks/speed.py --device cuda --rounds 5 --steps 100 --ll-points 200 \
  --out benchmarks/results/speed-cuda.json 2>&1 | tail -40 | tee "$out/speed.txt"
timeout 100 python3 benchmarks/cuda_graph.py 2>&1 | tail -2 | tee "$out/cuda_graph.txt"
timeout 60 python3 benchmarks/scaling.py --device cuda --procs 1 --steps 200 2>&1 | tail -3 | tee "$out/scaling.txt"
timeout 60 python3 benchmarks/autocast.py --device cuda --rounds 3 --steps 20 \
  --out benchmarks/results/autocast-cuda.json 2>&1 | tail -4 | tee "$out/autocast.txt"
cp benchmarks/results/speed-cuda.json benchmarks/results/scaling.json benchmarks/results/autocast-cuda.json \
  benchmarks/results/cuda-graph.json "$out/" \
  2>/dev/null
echo "gpu_check finished in $(( $(date +%s) - start )) s" | tee -a "$out/gpu.txt"

#!/usr/bin/env bash
# Runs on the GPU host from the repository root, with .carry/gpu carried over by
# benchmarks/gpu/prepare.sh (as .carry/gpu.tar.gz): device list, the GPU-vs-CPU self-test, then the benchmarks.
# Everything is also written under $OUT (when set) for the record.
set -uo pipefail
carry=.carry/gpu
if [[ ! -x "$carry/wavemamba" ]]; then tar -C .carry -xzf .carry/gpu.tar.gz || { echo "no .carry/gpu.tar.gz: run benchmarks/gpu/prepare.sh and carry it" >&2; exit 2; }; fi
export LD_LIBRARY_PATH="$PWD/$carry/lib:${LD_LIBRARY_PATH:-}"
export WAVEMAMBA_CUDA_KERNELS="$PWD/$carry/kernels"
export WAVEMAMBA_CUDA_CACHE="${OUT:-/tmp}/cuda-cache"
out="${OUT:-/tmp}"
bin="$carry/wavemamba"
status=0
run() { echo "\$ wavemamba $*"; "$bin" "$@" 2>&1 | tee -a "$out/device-log.txt"; local s=${PIPESTATUS[0]}; [[ $s -ne 0 ]] && status=$s; echo; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 | tee "$out/nvidia-smi.txt"
run info --devices
run selftest --device cuda
run bench scan --device cuda
run bench train --device cuda
run bench generate --device cuda
exit $status

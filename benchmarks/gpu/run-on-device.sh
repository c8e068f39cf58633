#!/usr/bin/env bash
# Runs on the GPU host from the repository root, with .carry/gpu carried over by
# benchmarks/gpu/prepare.sh (as .carry/gpu.tar.gz): device list, the GPU-vs-CPU self-test, then
# the benchmarks. Everything is also written under $OUT (when set) for the record.
# Usage: run-on-device.sh [STEP ...]   steps: info selftest selftest-scan golden graphs scan scan-items8 scan-variants scan-segments train train-gpu train-bf16
# generate generate-gpu generate-streams generate-threads generate-prefetch generate-traffic generate-small generate-cluster (default: info selftest graphs scan train generate; train-gpu and
# generate-gpu skip the CPU baseline rows, train-bf16 is train-gpu with --precision bf16)
# Each step has its own time limit (WAVEMAMBA_STEP_TIMEOUT, default 240 s) so that one hang
# does not cost the others.
set -uo pipefail
carry=.carry/gpu
# Unpack afresh whenever the archive is here (a warm machine may hold an older or partial copy).
if [[ -f .carry/gpu.tar.gz ]]; then rm -rf "$carry"; tar -C .carry -xzf .carry/gpu.tar.gz || { echo "broken .carry/gpu.tar.gz: run benchmarks/gpu/prepare.sh again" >&2; exit 2; }
elif [[ ! -x "$carry/wavemamba" ]]; then echo "no .carry/gpu.tar.gz: run benchmarks/gpu/prepare.sh and carry it" >&2; exit 2; fi
# shellcheck source=cuda-libs.sh
. "$(dirname "$0")/cuda-libs.sh"
export LD_LIBRARY_PATH="$PWD/$carry/lib$(cuda_library_dirs):${LD_LIBRARY_PATH:-}"
export WAVEMAMBA_CUDA_KERNELS="$PWD/$carry/kernels"
[[ -d Tests/Fixtures/golden ]] && export WAVEMAMBA_GOLDEN_DIR="$PWD/Tests/Fixtures/golden"
out="${OUT:-/tmp}"
export WAVEMAMBA_CUDA_CACHE="$out/cuda-cache"
bin="$carry/wavemamba"
limit="${WAVEMAMBA_STEP_TIMEOUT:-240}"
status=0
run() {
    echo "\$ wavemamba $*" | tee -a "$out/device-log.txt"
    local t0=$SECONDS
    timeout -k 5 "$limit" "$bin" "$@" 2>&1 | tee -a "$out/device-log.txt"
    local s=${PIPESTATUS[0]}
    echo "(exit $s after $((SECONDS - t0)) s)" | tee -a "$out/device-log.txt"
    [[ $s -ne 0 ]] && status=$s
    echo
}
steps=("$@"); [[ ${#steps[@]} -eq 0 ]] && steps=(info selftest graphs scan train generate)
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 | tee "$out/nvidia-smi.txt"
echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
for step in "${steps[@]}"; do
    case "$step" in
        info) run info --devices ;;
        selftest) WAVEMAMBA_CUDA_SYNC=1 run selftest --device cuda ;;
        graphs) run selftest --device cuda --filter graphs: ;;   # the asynchronous graph path, without SYNC
        scan) run bench scan --device cuda ;;
        selftest-scan) WAVEMAMBA_CUDA_SYNC=1 run selftest --device cuda --filter "selective scan" ;;
        golden) WAVEMAMBA_CUDA_SYNC=1 run selftest --device cuda --filter golden ;;   # the checkout's Tests/Fixtures/golden
        scan-items8)   # the anchor shapes that take 4 steps per lane by default, at 8 (and 8 channels per block)
            WAVEMAMBA_SCAN_ITEMS=8 WAVEMAMBA_SCAN_CHANNELS=8 run bench scan --device cuda --shapes 16x1024x16384x16,1x1536x65536x16 ;;
        scan-variants)   # the scan's tile kernels forced (channels per block × steps per lane) at the widest anchor shape, and the same length at 132 and 264 blocks of 8
            for ci in 8:4 8:8 12:4; do WAVEMAMBA_SCAN_CHANNELS=${ci%:*} WAVEMAMBA_SCAN_ITEMS=${ci#*:} run bench scan --device cuda --shapes 1x1536x65536x16; done
            run bench scan --device cuda --shapes 1x1056x65536x16,1x2112x65536x16 ;;
        scan-segments)   # the scan's sequence segments forced (every shape), against the default choice in the scan step
            for n in 2 3; do WAVEMAMBA_SCAN_SEGMENTS=$n run bench scan --device cuda; done ;;
        train) run bench train --device cuda ;;
        train-gpu) run bench train --device cuda --no-cpu-baseline ;;
        train-bf16) run bench train --device cuda --no-cpu-baseline --precision bf16 ;;
        generate) run bench generate --device cuda ;;
        generate-gpu) run bench generate --device cuda --no-cpu-baseline ;;
        generate-streams)   # the fused block step's streams per thread block, forced
            for n in 1 2 4 8; do WAVEMAMBA_FUSED_STEP_STREAMS=$n run bench generate --device cuda --fast-only --batches 16,256 --samples 800; done ;;
        generate-threads)   # 256-thread blocks (two an SM) against the default 512, one and two streams per block
            for n in 1 2; do WAVEMAMBA_FUSED_STEP_THREADS=256 WAVEMAMBA_FUSED_STEP_STREAMS=$n run bench generate --device cuda --fast-only --batches 16,256 --samples 800; done
            run bench generate --device cuda --fast-only --batches 16,256 --samples 800 ;;
        generate-prefetch)   # the fused step's weight prefetch and evict-first state stores, each combination
            for pf in 1 0; do for cs in 1 0; do WAVEMAMBA_FUSED_PREFETCH=$pf WAVEMAMBA_FUSED_STCS=$cs run bench generate --device cuda --fast-only --batches 1,16,256 --samples 800; done; done ;;
        generate-traffic)   # the fused step's weight-traffic limit (MB a block-step) past which a stage takes the unfused step
            for mb in 1000000 200 100 30; do WAVEMAMBA_FUSED_MAX_MB=$mb run bench generate --device cuda --fast-only --batches 16,256 --samples 800; done ;;
        generate-cluster)   # the cluster step (sm_90) against the one-block step, then forced cluster shapes (blocks × streams) at 128 and 256
            run bench generate --device cuda --fast-only --batches 1,16,64,128,256 --samples 800
            WAVEMAMBA_CLUSTER_STREAMS=0 run bench generate --device cuda --fast-only --batches 1,16,64,128,256 --samples 800
            for shape in 4x2 4x4 4x8 8x8 8x16; do
                WAVEMAMBA_CLUSTER_BLOCKS=${shape%x*} WAVEMAMBA_CLUSTER_STREAMS=${shape#*x} run bench generate --device cuda --fast-only --batches 128,256 --samples 800
            done ;;
        generate-small) WAVEMAMBA_FUSED_STEP_MIN_BATCH=1 run bench generate --device cuda --no-cpu-baseline --batches 2,4,8 --samples 800 ;;   # where fusing starts to pay
        *) echo "unknown step $step" >&2; status=2 ;;
    esac
done
exit $status

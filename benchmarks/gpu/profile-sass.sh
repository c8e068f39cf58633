#!/usr/bin/env bash
# Per-SASS-instruction execution counts and stall samples of the fused block step (Nsight
# Compute's source page), for reading against the disassembly: which phase of mamba_step.cu
# spends the instructions and the stalls. Run on the GPU host after run-on-device.sh has
# unpacked .carry/gpu. Writes $OUT/ncu-sass-*.csv.
# Usage: profile-sass.sh [BATCH] [KIND]   (PROFILE_KERNEL: a regex of the kernel names, default wm_mamba_step;
# PROFILE_SKIP, PROFILE_COUNT: the matching launches skipped and profiled, default 62 and 3)
source "$(dirname "$0")/profile-common.sh" "$@"
timeout 240 ncu --kernel-name "regex:${PROFILE_KERNEL:-wm_mamba_step}" --launch-skip "${PROFILE_SKIP:-62}" --launch-count "${PROFILE_COUNT:-3}" --cache-control none \
    --section SourceCounters --section WarpStateStats --export "$out/ncu-sass-$batch" "${gen[@]}" --samples 64 > "$out/ncu-sass-$batch.log" 2>&1
ncu --import "$out/ncu-sass-$batch.ncu-rep" --page source --print-source sass --csv > "$out/ncu-sass-$batch.csv" 2>> "$out/ncu-sass-$batch.log"
ncu --import "$out/ncu-sass-$batch.ncu-rep" --page details --print-details all > "$out/ncu-sass-$batch-details.txt" 2>> "$out/ncu-sass-$batch.log"
gzip -f "$out/ncu-sass-$batch.csv"
rm -f "$out/ncu-sass-$batch.ncu-rep"
ls -la "$out"/ncu-sass-*; tail -5 "$out/ncu-sass-$batch.log"

#!/usr/bin/env bash
# Where the selective scan's time goes, under Nsight Compute: one forward and one backward
# launch of `bench scan` at one shape — throughput, occupancy, scheduler and warp-state
# sections, and per-SASS-instruction counts and stall samples ($OUT/ncu-scan-*.csv.gz, to read
# against nvdisasm of the cubin). Run on the GPU host after run-on-device.sh has unpacked .carry/gpu.
# Usage: profile-scan.sh [BATCHxDxLENGTHxN] [real|complex]
source "$(dirname "$0")/profile-common.sh"
shape="${1:-16x1024x16384x16}" which="${2:-complex}"
for pass in fwd bwd; do
    tag="$pass-$which-$shape"
    timeout 240 ncu --kernel-name "regex:wm_scan_${pass}_" --launch-count 1 --cache-control all \
        --section SpeedOfLight --section Occupancy --section LaunchStats --section SchedulerStats --section WarpStateStats \
        --section ComputeWorkloadAnalysis --section InstructionStats --section SourceCounters \
        --export "$out/ncu-scan-$tag" "$carry/wavemamba" bench scan --device cuda --shapes "$shape" --kinds "$which" \
        > "$out/ncu-scan-$tag.log" 2>&1
    ncu --import "$out/ncu-scan-$tag.ncu-rep" --page details --print-details all > "$out/ncu-scan-$tag-details.txt" 2>> "$out/ncu-scan-$tag.log"
    ncu --import "$out/ncu-scan-$tag.ncu-rep" --page source --print-source sass --csv 2>> "$out/ncu-scan-$tag.log" | gzip > "$out/ncu-scan-$tag.csv.gz"
    rm -f "$out/ncu-scan-$tag.ncu-rep"
    grep -E "Duration|Issue Slots Busy|Issued Ipc|No Eligible|Achieved Occupancy|Registers Per|Warp Cycles Per Issued|Theoretical Occupancy|Executed Instructions  " "$out/ncu-scan-$tag-details.txt" | head -20
done

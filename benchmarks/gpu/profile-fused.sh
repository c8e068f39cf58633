#!/usr/bin/env bash
# Where the fused block step's time goes, under Nsight Compute: every kernel of a few
# generation steps (graph path) with its duration and dynamic shared memory (which tells the
# stages' fused launches apart), then the warp-state and memory sections of the fused launches
# of each stage. Run on the GPU host after run-on-device.sh has unpacked .carry/gpu.
# Usage: profile-fused.sh [BATCH] [KIND]   (PROFILE_SECTIONS=0: the times only)
source "$(dirname "$0")/profile-common.sh" "$@"
timeout 200 ncu --metrics gpu__time_duration.sum,launch__shared_mem_per_block_dynamic,launch__grid_size --cache-control none --csv \
    --launch-skip 600 --launch-count 300 "${gen[@]}" --samples 64 > "$out/ncu-times-$batch.csv" 2> "$out/ncu-times-$batch.err"
python3 - "$out/ncu-times-$batch.csv" <<'PY'
import csv, sys, collections
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
head = rows[0]; rows = rows[1:]
ID, name, metric, value = head.index("ID"), head.index("Kernel Name"), head.index("Metric Name"), head.index("Metric Value")
k = collections.defaultdict(dict)
for r in rows:
    if r[value] != "n/a": k[(int(r[ID]), r[name].split("(")[0])][r[metric]] = float(r[value].replace(",", ""))
tot = collections.defaultdict(float); cnt = collections.Counter()
for (i, n), m in k.items():
    key = n + (f" smem={int(m.get('launch__shared_mem_per_block_dynamic', 0))}" if "mamba_step" in n or "mamba_cluster" in n else "")
    tot[key] += m.get("gpu__time_duration.sum", 0.0); cnt[key] += 1
steps = cnt.get("wm_sample_tokens", 0) or 1
allv = sum(tot.values())
print(f"{len(k)} kernels, {steps} samples: {allv/1e3/steps:.1f} us of kernels per sample")
for key, v in sorted(tot.items(), key=lambda kv: -kv[1])[:20]:
    print(f"{v/allv*100:5.1f}%  {v/cnt[key]/1e3:8.2f} us avg  {cnt[key]/steps:6.2f}/sample  {key[:100]}")
PY
[[ "${PROFILE_SECTIONS:-1}" == 0 ]] && exit 0
timeout 240 ncu --kernel-name "regex:wm_mamba_(step|cluster)" --launch-skip 60 --launch-count 22 --cache-control none \
    --section SpeedOfLight --section WarpStateStats --section MemoryWorkloadAnalysis --section LaunchStats --section Occupancy \
    --section InstructionStats --section SchedulerStats --metrics "regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio" "${gen[@]}" --samples 64 > "$out/ncu-fused-$batch.txt" 2>&1
grep -E "wm_mamba_step|wm_mamba_cluster|Duration|Dynamic Shared|Warp Cycles Per Issued|Issue Slots Busy|No Eligible|Active Warps Per|Eligible Warps|Memory Throughput|L1/TEX Hit|L2 Hit|DRAM Throughput|Executed Ipc A|Registers Per|Stall|Instructions|Mem Busy|Max Bandwidth|stalled" "$out/ncu-fused-$batch.txt" | awk '!/stalled/ || $NF+0 >= 0.3' > "$out/ncu-fused-$batch-summary.txt"; head -c 6000 "$out/ncu-fused-$batch-summary.txt"

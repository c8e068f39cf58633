#!/usr/bin/env bash
# Per-kernel GPU time of step-mode generation (graph path) under Nsight Compute, summed by
# kernel name: where a generated sample's time goes. Caches are not flushed between kernels
# (--cache-control none), so the times are those of a warm replay, less the gaps between
# launches. Run on the GPU host after run-on-device.sh has unpacked .carry/gpu.
# Usage: profile-generate.sh [BATCH] [KIND]
source "$(dirname "$0")/profile-common.sh" "$@"
timeout 240 ncu --metrics gpu__time_duration.sum --cache-control none --csv --launch-skip 1000 --launch-count 1000 \
    "${gen[@]}" --samples 160 \
    > "$out/ncu-generate-$batch.csv" 2> "$out/ncu-generate-$batch.err"
python3 - "$out/ncu-generate-$batch.csv" <<'PY'
import csv, sys, collections
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
head = rows[0]; rows = rows[1:]
name, metric, value = head.index("Kernel Name"), head.index("Metric Name"), head.index("Metric Value")
tot = collections.defaultdict(float); cnt = collections.Counter()
for r in rows:
    if r[metric] != "gpu__time_duration.sum": continue
    v = float(r[value].replace(",", ""))
    k = r[name].split("(")[0]
    tot[k] += v; cnt[k] += 1
all_ = sum(tot.values())
steps = cnt.get("wm_sample_tokens", 0) or 1   # one draw per generated sample
print(f"{len(rows)} kernels, {all_/1e3:.1f} us in all, {steps} samples: {all_/1e3/steps:.1f} us of kernels per sample")
for k, v in sorted(tot.items(), key=lambda kv: -kv[1])[:25]:
    print(f"{v/all_*100:5.1f}%  {v/cnt[k]/1e3:8.2f} us avg  {cnt[k]/steps:6.2f}/sample  {k[:90]}")
PY

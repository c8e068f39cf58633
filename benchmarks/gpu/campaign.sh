#!/usr/bin/env bash
# A training run in slices of leased GPU time (docs/quality.md): the GPU host side.
#
# Runs from the repository root on the GPU host, with what `campaign-pack.sh` left in
# .carry/campaign/ carried over. Everything lives in /tmp/wm on the host, which outlasts a
# call while the machine stays warm, so a slice spans several calls:
#
#   campaign.sh unpack                 binary, libraries, kernels and data parts found in
#                                      .carry/campaign/ (a part may come in a later call)
#   campaign.sh start SECONDS RECIPE [TRAIN-ARGS…]
#                                      trains RECIPE on /tmp/wm/data in the background (setsid),
#                                      resuming /tmp/wm/run when it holds a checkpoint (or a
#                                      carried run.tar.part-*); --max-time SECONDS makes it
#                                      write a checkpoint and exit 0 (SIGINT 60 s later, and
#                                      SIGKILL 120 s after that, only if it hangs)
#   campaign.sh wait SECONDS           prints progress until the run ends or SECONDS pass
#   campaign.sh collect PART           packs the run folder (recipe, metrics, newest checkpoint
#                                      and its optimiser companion) into 15 MiB parts and copies
#                                      the PART-th four of them (1 or 2) to $OUT
#   campaign.sh run ARGS…              runs the carried binary with ARGS (e.g. generate)
#
# WM_RUN=NAME (default run) names the run folder /tmp/wm/NAME, its log and its parts, so that
# several runs can share the GPU in one slice (an A/B from the same weights).
set -uo pipefail
top=/tmp/wm
name="${WM_RUN:-run}"
run="$top/$name"
carry=.carry/campaign
out="${OUT:-/tmp/wm-out}"
mkdir -p "$top" "$out"

# shellcheck source=cuda-libs.sh
. "$(dirname "$0")/cuda-libs.sh"

env_setup() {
    export LD_LIBRARY_PATH="$top/gpu/lib$(cuda_library_dirs):${LD_LIBRARY_PATH:-}"
    export WAVEMAMBA_CUDA_KERNELS="$top/gpu/kernels"
    export WAVEMAMBA_CUDA_CACHE="$top/cuda-cache"
}

case "${1:-}" in
    unpack)
        if [[ -f $carry/gpu.tar.xz ]]; then rm -rf "$top/gpu"; tar -C "$top" -xJf $carry/gpu.tar.xz && echo "unpacked the binary"; fi
        mkdir -p "$top/data"
        for part in $carry/data-*.tar; do
            [[ -f $part ]] || continue
            tar -C "$top/data" -xf "$part" && echo "unpacked $(basename "$part")"
        done
        if compgen -G "$carry/$name.tar.part-*" >/dev/null && [[ ! -d $run ]]; then
            cat $carry/$name.tar.part-* | tar -C "$top" -xf - && echo "unpacked the carried run folder $name"
        fi
        du -sh "$top"/* 2>/dev/null ;;
    start)
        seconds="$2" recipe="$3"; shift 3
        env_setup
        args=(train "$recipe" --data "$top/data/digits" --out "$run" --device cuda --max-time "${seconds}s" "$@")
        [[ -f $run/metrics.jsonl ]] && args=(train --resume --data "$top/data/digits" --out "$run" --device cuda --max-time "${seconds}s" "$@")
        echo "\$ wavemamba ${args[*]}"
        setsid nohup timeout -s INT -k 120 "$((seconds + 60))" "$top/gpu/wavemamba" "${args[@]}" > "$top/$name.log" 2>&1 < /dev/null &
        echo $! > "$top/$name.pid"
        sleep 20; tail -c 3000 "$top/$name.log" ;;
    wait)
        end=$((SECONDS + $2))
        while (( SECONDS < end )); do
            if ! kill -0 "$(cat $top/$name.pid)" 2>/dev/null; then echo "training ended"; break; fi
            sleep 15
        done
        tr '\r' '\n' < "$top/$name.log" | grep -v '^\s*$' | tail -n 25
        grep -h '"type":"valid"\|"type":"samples"' "$run/metrics.jsonl" 2>/dev/null | tail -n 8 ;;
    collect)
        if [[ ! -f $top/$name.tar.part-aa ]] || [[ $run/metrics.jsonl -nt $top/$name.tar.part-aa ]]; then
            rm -f $top/$name.tar.part-*
            latest=$(ls $run/checkpoints/ | sed -n 's/^step-\([0-9]*\)\.safetensors$/\1/p' | sort -n | tail -n1)
            (cd $top && tar -cf - $name/recipe.toml $name/metrics.jsonl "$name/checkpoints/step-$latest.safetensors" \
                "$name/checkpoints/step-$latest.optim.safetensors" | split -b 15M - $name.tar.part-)
            echo "checkpoint step $latest"
        fi
        parts=($top/$name.tar.part-*)
        first=$(( (${2:-1} - 1) * 4 ))
        for p in "${parts[@]:$first:4}"; do cp "$p" "$out/"; done
        ls -la $top/$name.tar.part-* ;;
    run)
        shift; env_setup; "$top/gpu/wavemamba" "$@" ;;
    *) sed -n '2,22p' "$0"; exit 2 ;;
esac

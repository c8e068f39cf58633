#!/usr/bin/env bash
# Packs what campaign.sh needs on the GPU host into .carry/campaign/ (ignored by git), within
# the device tool's 64 MiB a call:
#   gpu.tar.xz        the static release binary, its libraries and the sm_90 NVRTC-13 CUBINs
#                     (from benchmarks/gpu/prepare.sh's .carry/gpu), xz-compressed (≈ 30 MB)
#   data-1.tar, data-2.tar
#                     the corpus in two halves (the words zero…four with the split files, and
#                     five…nine), to carry in two calls
# Usage: benchmarks/gpu/campaign-pack.sh CORPUS_DIR   (e.g. from recipes/data/digits.sh
#        --format flac --bits 8); run benchmarks/gpu/prepare.sh first.
set -euo pipefail
cd "$(dirname "$0")/../.."
corpus="${1:?usage: campaign-pack.sh CORPUS_DIR}"
[[ -x .carry/gpu/wavemamba ]] || { echo "no .carry/gpu/wavemamba: run benchmarks/gpu/prepare.sh first" >&2; exit 2; }
dest=.carry/campaign
rm -rf "$dest" && mkdir -p "$dest/stage/gpu/kernels"
cp -r .carry/gpu/wavemamba .carry/gpu/lib "$dest/stage/gpu/"
cp .carry/gpu/kernels/*-sm_90-nvrtc13.cubin "$dest/stage/gpu/kernels/" 2>/dev/null || true
tar -C "$dest/stage" -cJf "$dest/gpu.tar.xz" gpu
rm -rf "$dest/stage"
name="$(basename "$corpus")"
parent="$(cd "$(dirname "$corpus")" && pwd)"
first=() second=()
for d in "$corpus"/*/; do
    w="$(basename "$d")"
    case "$w" in zero|one|two|three|four) first+=("$name/$w") ;; *) second+=("$name/$w") ;; esac
done
top_files=()
for f in "$corpus"/*; do [[ -f $f ]] && top_files+=("$name/$(basename "$f")"); done
tar -C "$parent" -cf "$dest/data-1.tar" "${top_files[@]}" "${first[@]}"
tar -C "$parent" -cf "$dest/data-2.tar" "${second[@]}"
du -sh "$dest"/*
# What one device call carries: the tracked tree plus the carried files, at most 64 MiB.
tree=$(git ls-files -z | xargs -0 du -cb | tail -n1 | cut -f1)
for f in gpu.tar.xz data-1.tar data-2.tar; do eval "size_${f//[.-]/_}=$(stat -c %s "$dest/$f")"; done
all=$((tree + size_gpu_tar_xz + size_data_1_tar + size_data_2_tar))
if (( all <= 64 << 20 )); then
    echo "one call carries all of it: $((all >> 20)) MiB with the tree"
else
    echo "tree + everything = $((all >> 20)) MiB > 64 MiB: carry gpu.tar.xz in one call and the data tars in the next (campaign.sh unpack takes whatever is there)"
fi

#!/usr/bin/env bash
# Prepares what a GPU host needs to run wavemamba, on this (GPU-less) machine:
#   .carry/gpu/wavemamba     the static release binary (Swift runtime linked in), stripped
#   .carry/gpu/lib/          the non-system shared libraries ldd lists for it (libsndfile,
#                            libsamplerate, FFTW, OpenBLAS and their dependencies; never libcuda,
#                            libc or the dynamic loader, which the GPU host has)
#   .carry/gpu/kernels/      CUBINs for sm_80 and sm_90 precompiled with NVRTC 13 and 12, for hosts
#                            without NVRTC (used through WAVEMAMBA_CUDA_KERNELS)
#   .carry/gpu.tar.gz        all of it in one archive: what the device tool carries
# Usage: benchmarks/gpu/prepare.sh [--nvrtc DIR]   (DIR holds libnvrtc.so.13; default: pip
# downloads of nvidia-cuda-nvrtc 13.5 and nvidia-cuda-nvrtc-cu12 12.4 into /tmp)
set -euo pipefail
cd "$(dirname "$0")/../.."
nvrtc_dir="${WAVEMAMBA_NVRTC_PATH:-}"
if [[ "${1:-}" == "--nvrtc" ]]; then nvrtc_dir="$2"; fi

swift build -c release --static-swift-stdlib
bin="$(swift build -c release --static-swift-stdlib --show-bin-path)/wavemamba"
out=.carry/gpu
rm -rf "$out"
mkdir -p "$out/lib" "$out/kernels"
cp "$bin" "$out/wavemamba"
strip "$out/wavemamba"

# Shared libraries: everything ldd resolves except the C runtime, the loader and CUDA.
ldd "$bin" | awk '/=> \// { print $1, $3 }' | while read -r name path; do
    case "$name" in
        libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|ld-linux*|libgcc_s.so*|libstdc++.so*|libcuda.so*|libnvrtc*|libcublas*) ;;
        *) cp -L "$path" "$out/lib/$name" ;;
    esac
done

# Precompiled kernels (optional: without NVRTC here the GPU host compiles them itself), from
# NVRTC 13 and 12, so that a host whose driver predates CUDA 13 still finds CUBINs it loads.
fetch_nvrtc() { # package version folder
    if [[ ! -e "$3" ]]; then
        python3 -m pip download --no-deps --only-binary=:all: -d "/tmp/$1" "$1==$2" >/dev/null \
            && (cd "/tmp/$1" && unzip -o -q ./*.whl) || true
    fi
}
if [[ -z "$nvrtc_dir" ]]; then
    fetch_nvrtc nvidia-cuda-nvrtc 13.5.37 /tmp/nvidia-cuda-nvrtc/nvidia/cu13/lib/libnvrtc.so.13
    nvrtc_dir=/tmp/nvidia-cuda-nvrtc/nvidia/cu13/lib
fi
fetch_nvrtc nvidia-cuda-nvrtc-cu12 12.4.127 /tmp/nvidia-cuda-nvrtc-cu12/nvidia/cuda_nvrtc/lib/libnvrtc.so.12
for dir in "$nvrtc_dir" /tmp/nvidia-cuda-nvrtc-cu12/nvidia/cuda_nvrtc/lib; do
    WAVEMAMBA_NVRTC_PATH="$dir" "$out/wavemamba" cuda-kernels --arch sm_80,sm_90 --out "$out/kernels" \
        || echo "note: no NVRTC in $dir" >&2
done

# The device tool carries at most 64 MiB: one gzip archive (≈ 45 MB), unpacked there by
# run-on-device.sh.
tar -C .carry -czf .carry/gpu.tar.gz gpu
du -sh "$out" .carry/gpu.tar.gz | sed 's/^/size /'
echo "ready: .carry/gpu.tar.gz (pass carry: [\".carry/gpu.tar.gz\"] to the device tool)"

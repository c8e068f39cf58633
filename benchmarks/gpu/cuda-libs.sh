# Sourced by the GPU-host scripts: prints the folders that hold cuBLAS and NVRTC on this host
# (a CUDA toolkit, or the nvidia-* Python wheels next to PyTorch), ':'-led, for
# LD_LIBRARY_PATH: the binary dlopens them by soname.
cuda_library_dirs() {
    local extra="" lib found
    for lib in libcublas.so.13 libcublas.so.12 libnvrtc.so.13 libnvrtc.so.12; do
        found="$(ldconfig -p 2>/dev/null | awk -v l="$lib" '$1 == l { print $NF; exit }')"
        [[ -z "$found" ]] && found="$(find /usr/local/cuda*/ /opt /usr/lib /usr/local/lib -name "$lib" 2>/dev/null | head -n1)"
        [[ -n "$found" ]] && extra="$extra:$(dirname "$found")"
    done
    printf '%s' "$extra"
}

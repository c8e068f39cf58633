# Sourced by the profile-*.sh scripts (with their arguments, [BATCH] [KIND]): the carried
# binary's libraries and CUBINs, where the output goes, and the generation run to profile.
set -uo pipefail
carry=.carry/gpu
export LD_LIBRARY_PATH="$PWD/$carry/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export WAVEMAMBA_CUDA_KERNELS="$PWD/$carry/kernels"
out="${OUT:-/tmp}"
batch="${1:-256}" kind="${2:-mamba-complex}"
gen=("$carry/wavemamba" bench generate --device cuda --kinds "$kind" --batches "$batch" --fast-only)

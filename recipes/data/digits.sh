#!/usr/bin/env bash
# Spoken-digit corpus (SC09-like) from Debian's text-to-speech tools.
#
#   recipes/data/digits.sh --out DIR [--seed N] [--reps R] [--max-speakers S]
#                          [--format wav|flac] [--bits B] [--jobs J] [--install]
#
# Writes 1-second, 16 kHz, mono, 16-bit clips of "zero" ... "nine" as
# DIR/<word>/<speaker>_<n>.<wav|flac>, plus DIR/speakers.tsv, plan.tsv,
# splits.tsv, splits.json and MANIFEST.md.  Speakers (voice configurations of
# espeak-ng, flite and festival) are split train/valid/test by voice group, so
# no timbre or recorded person is in two splits.  See recipes/data/README.md.
#
#   --out DIR          output folder (created; its ten word folders are replaced)
#   --seed N           seed for speakers' splits and every per-clip parameter (0)
#   --reps R           utterances per speaker and word (2)
#   --max-speakers S   use a split-balanced subset of S speakers (all: 262)
#   --format F         wav (default) or flac (16-bit)
#   --bits B           sample precision 8..16 (16); below 16 the 16-bit samples
#                      are rounded (TPDF dither) so FLAC stores only B bits
#   --jobs J           parallel renderers (2)
#   --install          apt-get install the Debian packages that are missing
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="" SEED=0 REPS=2 MAXSPK=0 FORMAT=wav BITS=16 JOBS=2 INSTALL=0
usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT="$2"; shift 2 ;;
    --seed) SEED="$2"; shift 2 ;;
    --reps) REPS="$2"; shift 2 ;;
    --max-speakers) MAXSPK="$2"; shift 2 ;;
    --format) FORMAT="$2"; shift 2 ;;
    --bits) BITS="$2"; shift 2 ;;
    --jobs) JOBS="$2"; shift 2 ;;
    --install) INSTALL=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "digits.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done
[ -n "$OUT" ] || { echo "digits.sh: --out DIR is required" >&2; exit 2; }

# --- tools ----------------------------------------------------------------
# Debian package -> file it provides
declare -A NEED=(
  [espeak-ng]=/usr/bin/espeak-ng
  [flite]=/usr/bin/flite
  [festival]=/usr/bin/text2wave
  [festvox-kallpc16k]=/usr/share/festival/voices/english/kal_diphone
  [festvox-kdlpc16k]=/usr/share/festival/voices/english/ked_diphone
  [festvox-us-slt-hts]=/usr/share/festival/voices/us/cmu_us_slt_arctic_hts
  [sox]=/usr/bin/sox
  [python3-numpy]=numpy
)
PIP=()
SCRIPT=digits.sh
# shellcheck source=tools.sh
. "$HERE/tools.sh"
require_tools

# --- plan, render in parallel, write the manifest ----------------------------
mkdir -p "$OUT"
for w in zero one two three four five six seven eight nine; do rm -rf "${OUT:?}/$w"; done
CMD="recipes/data/digits.sh --out $OUT --seed $SEED --reps $REPS --max-speakers $MAXSPK --format $FORMAT --bits $BITS"
python3 "$HERE/digits.py" plan --out "$OUT" --seed "$SEED" --reps "$REPS" \
  --max-speakers "$MAXSPK" --format "$FORMAT" --bits "$BITS"
NCHUNKS=$((JOBS * 8))   # several chunks per job keeps the two cores busy to the end
start=$(date +%s)
seq 0 $((NCHUNKS - 1)) | xargs -P "$JOBS" -I{} \
  python3 "$HERE/digits.py" render --out "$OUT" --chunk {} --nchunks "$NCHUNKS" \
  || echo "digits.sh: some clips failed (see above); finalize lists them" >&2
echo "rendered in $(( $(date +%s) - start )) s"
python3 "$HERE/digits.py" finalize --out "$OUT" --cmd "$CMD"

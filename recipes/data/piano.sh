#!/usr/bin/env bash
# Solo-piano corpus (YouTubeMix-like) rendered from music21's bundled scores.
#
#   recipes/data/piano.sh --out DIR [--seed N] [--minutes M] [--variants V]
#                         [--clip SEC [--clips-per-piece K]] [--format wav|flac]
#                         [--bits B] [--jobs J] [--install]
#
# Writes 16 kHz mono 16-bit audio as DIR/{train,valid,test}/<piece>_<variant>.wav
# (whole pieces) or, with --clip, DIR/<split>/<piece>_<variant>_c<k>.<ext>
# (K clips of SEC seconds per rendering), plus DIR/plan.tsv, splits.tsv,
# splits.json and MANIFEST.md.  The split is decided per piece from the seed.
# See recipes/data/README.md.
#
#   --out DIR             output folder
#   --seed N              seed for splits and every rendering parameter (0)
#   --minutes M           distinct music to select, in minutes (75); with --clip
#                         it counts the clip audio (K x SEC per piece)
#   --variants V          renderings per piece (tempo, velocity, soundfont...) (1)
#   --clip SEC            cut each rendering into clips of SEC seconds
#   --clips-per-piece K   clips per rendering with --clip (3)
#   --format F            wav (default) or flac
#   --bits B              sample precision 8..16 (16); below 16 the 16-bit samples
#                         are rounded (TPDF dither) so FLAC stores only B bits
#   --jobs J              parallel parsers/renderers (2)
#   --install             install missing Debian packages and music21 (pip)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="" SEED=0 MINUTES=75 VARIANTS=1 CLIP=0 CPP=3 FORMAT=wav BITS=16 JOBS=2 INSTALL=0
usage() { sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT="$2"; shift 2 ;;
    --seed) SEED="$2"; shift 2 ;;
    --minutes) MINUTES="$2"; shift 2 ;;
    --variants) VARIANTS="$2"; shift 2 ;;
    --clip) CLIP="$2"; shift 2 ;;
    --clips-per-piece) CPP="$2"; shift 2 ;;
    --format) FORMAT="$2"; shift 2 ;;
    --bits) BITS="$2"; shift 2 ;;
    --jobs) JOBS="$2"; shift 2 ;;
    --install) INSTALL=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "piano.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done
[ -n "$OUT" ] || { echo "piano.sh: --out DIR is required" >&2; exit 2; }

# --- tools ----------------------------------------------------------------
declare -A NEED=(
  [fluidsynth]=/usr/bin/fluidsynth
  [sox]=/usr/bin/sox
  [fluid-soundfont-gm]=/usr/share/sounds/sf2/FluidR3_GM.sf2
  [timgm6mb-soundfont]=/usr/share/sounds/sf2/TimGM6mb.sf2
  [musescore-general-soundfont]=/usr/share/sounds/sf3/MuseScore_General_Full.sf3
  [python3-numpy]=numpy
)
PIP=(music21)
SCRIPT=piano.sh
# shellcheck source=tools.sh
. "$HERE/tools.sh"
require_tools

# --- plan (parse + select), render in parallel, write the manifest -----------
mkdir -p "$OUT"
rm -rf "${OUT:?}/train" "${OUT:?}/valid" "${OUT:?}/test" "${OUT:?}/.work"
CMD="recipes/data/piano.sh --out $OUT --seed $SEED --minutes $MINUTES --variants $VARIANTS"
[ "$CLIP" = 0 ] || CMD="$CMD --clip $CLIP --clips-per-piece $CPP"
CMD="$CMD --format $FORMAT"
CMD="$CMD --bits $BITS"
start=$(date +%s)
python3 "$HERE/piano.py" plan --out "$OUT" --seed "$SEED" --minutes "$MINUTES" \
  --variants "$VARIANTS" --clip "$CLIP" --clips-per-piece "$CPP" --jobs "$JOBS" \
  --format "$FORMAT" --bits "$BITS"
echo "planned in $(( $(date +%s) - start )) s"
NJOBS=$(( $(wc -l < "$OUT/plan.tsv") - 1 ))
start=$(date +%s)
# longest renderings first keeps both workers busy until the end
tail -n +2 "$OUT/plan.tsv" | sort -t$'\t' -k6,6gr | cut -f1 \
  | xargs -P "$JOBS" -I{} python3 "$HERE/piano.py" render --out "$OUT" --job {} \
  || echo "piano.sh: some renderings failed (see above)" >&2
echo "rendered $NJOBS in $(( $(date +%s) - start )) s"
python3 "$HERE/piano.py" finalize --out "$OUT" --cmd "$CMD"
rm -rf "$OUT/.work"

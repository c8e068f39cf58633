# Shared by digits.sh and piano.sh (sourced, not run): checks that the tools a corpus script
# needs are installed, and installs them with --install.
#
# The caller sets, before `require_tools`:
#   SCRIPT   its own name, for messages
#   NEED     associative array: Debian package -> a file it installs (or the word `numpy`)
#   PIP      array of Python modules that come from PyPI (may be empty)
#   FORMAT   wav|flac (FLAC output needs sox's format plug-ins)
#   INSTALL  1 to install what is missing, else report it and exit 3

require_tools() {
  local missing=() pip_missing=() pkg f m
  for pkg in "${!NEED[@]}"; do
    f="${NEED[$pkg]}"
    if [ "$f" = numpy ]; then
      python3 -c 'import numpy' 2>/dev/null || missing+=("$pkg")
    elif [ ! -e "$f" ]; then
      missing+=("$pkg")
    fi
  done
  if [ "$FORMAT" = flac ] && ! sox -h 2>/dev/null | grep -qw flac; then
    missing+=(libsox-fmt-all)
  fi
  for m in "${PIP[@]}"; do
    python3 -c "import $m" 2>/dev/null || pip_missing+=("$m")
  done
  [ ${#missing[@]} -gt 0 ] || [ ${#pip_missing[@]} -gt 0 ] || return 0

  if [ "$INSTALL" = 1 ]; then
    if [ ${#missing[@]} -gt 0 ]; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
    fi
    [ ${#pip_missing[@]} -eq 0 ] || python3 -m pip install -q "${pip_missing[@]}"
    return 0
  fi
  [ ${#missing[@]} -eq 0 ] || {
    echo "$SCRIPT: missing Debian packages: ${missing[*]}" >&2
    echo "  install them with:  apt-get install ${missing[*]}" >&2; }
  [ ${#pip_missing[@]} -eq 0 ] || {
    echo "$SCRIPT: missing Python packages (PyPI): ${pip_missing[*]}" >&2
    echo "  install them with:  python3 -m pip install ${pip_missing[*]}" >&2; }
  echo "  (or rerun with --install)" >&2
  exit 3
}

# Helpers sourced by the tests/cli_*.sh scripts (not a test itself: no cli_ prefix).
#   ok CMD...                 passes when CMD exits 0
#   refuse PATTERN OUT CMD... passes when CMD fails with a one-line error containing PATTERN and
#                             leaves neither OUT nor OUT.tmp.* behind (OUT may be /nonexistent)
#   finish NAME               prints the tally and exits non-zero on any failure
# Sourcing it (with the script's own arguments: $1 = the ppnn binary) sets ppnn, makes the
# scratch directory $dir (removed on exit) and cds into it.
set -u
ppnn=$1
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1
pass=0; fail=0
source "$(dirname "${BASH_SOURCE[0]}")/lib_cli.sh"   # ok, refuse (one definition)
# tiny_data DIR: an 8x8 IDX data set (16 blank images labelled 0, train and test splits)
tiny_data() {
  mkdir -p "$1"
  local pre
  for pre in train t10k; do
    { printf '\x00\x00\x08\x03\x00\x00\x00\x10\x00\x00\x00\x08\x00\x00\x00\x08'; head -c 1024 /dev/zero; } > "$1/$pre-images-idx3-ubyte"
    { printf '\x00\x00\x08\x01\x00\x00\x00\x10'; head -c 16 /dev/zero; } > "$1/$pre-labels-idx1-ubyte"
  done
}
finish() { echo "$1: $pass passed, $fail failed"; [[ $fail -eq 0 ]]; }

# Shared by the tests/cli_*.sh scripts (sourced; not a test itself: CMake globs cli_*.sh).
# Sets ppnn (the binary, $1 of the script), pass/fail counters and a temporary $dir removed on
# exit, and defines:
#   ok CMD...                    CMD must succeed
#   refuse PATTERN OUTFILE CMD... CMD must fail with PATTERN in a one-line error, leaving neither
#                                OUTFILE nor a temporary OUTFILE.tmp.* behind
set -u
ppnn=$1; dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/lib_cli.sh"   # ok, refuse (one definition)

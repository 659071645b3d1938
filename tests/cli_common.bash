# Shared by the tests/cli_*.sh scripts (sourced; not a test itself: CMake globs cli_*.sh).
# Sets ppnn (the binary, $1 of the script), pass/fail counters and a temporary $dir removed on
# exit, and defines:
#   ok CMD...                    CMD must succeed
#   refuse PATTERN OUTFILE CMD... CMD must fail with PATTERN in a one-line error, leaving neither
#                                OUTFILE nor a temporary OUTFILE.tmp.* behind
set -u
ppnn=$1; pass=0; fail=0
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
ok() { if "$@" >"$dir/log" 2>&1; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL: $*" >&2; tail -5 "$dir/log" >&2; fi; }
refuse() {
  local pat=$1 out=$2; shift 2
  local err; err=$("$@" 2>&1 >/dev/null); local rc=$?
  if [[ $rc -ne 0 && $err == *"$pat"* && $(printf '%s\n' "$err" | grep -c .) -eq 1 && ! -e $out ]] &&
     ! ls "$out".tmp.* >/dev/null 2>&1; then pass=$((pass+1))
  else fail=$((fail+1)); echo "FAIL: expected '$pat' refusal from: $* (rc=$rc: $err)" >&2; fi
}

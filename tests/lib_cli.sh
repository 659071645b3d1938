# Shared helpers of the tests/cli_*.sh scripts (sourced; needs $dir, a scratch directory).
pass=0; fail=0
ok() { if "$@" >"$dir/log" 2>&1; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL: $*" >&2; tail -5 "$dir/log" >&2; fi; }
refuse() { # refuse PATTERN OUTFILE CMD...: fails with PATTERN in a one-line error, OUTFILE absent
  local pat=$1 out=$2; shift 2
  local err; err=$("$@" 2>&1 >/dev/null); local rc=$?
  if [[ $rc -ne 0 && $err == *"$pat"* && $(printf '%s\n' "$err" | grep -c .) -eq 1 && ! -e $out ]] &&
     ! ls "$out".tmp.* >/dev/null 2>&1; then pass=$((pass+1))
  else fail=$((fail+1)); echo "FAIL: expected '$pat' refusal from: $* (rc=$rc: $err)" >&2; fi
}
flip_byte() { # flip_byte FILE OFFSET: inverts every bit of one byte (writing a fixed byte would
  # leave the file unchanged whenever it already held that byte: 1 run in 256)
  local b; b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
  [[ -n $b ]] || { echo "flip_byte: $1 has no byte $2" >&2; return 1; }
  printf "\\$(printf %03o $((b ^ 255)))" | dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null
}

#!/usr/bin/env bash
# CLI behaviour of `ppnn data` and the top level: help, exit codes, one-line errors.
set -u
ppnn=$1; pass=0; fail=0
ok()  { if "$@"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL: $*" >&2; fi; }
expect_fail() { # expect_fail PATTERN CMD...: non-zero exit and a one-line stderr containing PATTERN
  local pat=$1; shift
  local err; err=$("$@" 2>&1 >/dev/null); local rc=$?
  if [[ $rc -ne 0 && $err == *"$pat"* && $(printf '%s\n' "$err" | wc -l) -eq 1 ]]; then pass=$((pass+1))
  else fail=$((fail+1)); echo "FAIL: expected failure with '$pat' from: $* (rc=$rc, stderr: $err)" >&2; fi
}
ok "$ppnn" --help >/dev/null
ok "$ppnn" data --help >/dev/null
ok "$ppnn" demo --help >/dev/null
expect_fail "unknown command" "$ppnn" frobnicate
expect_fail "not an integer" "$ppnn" data --count abc
expect_fail "unknown split" "$ppnn" data --split valid
expect_fail "not 'mnist'" "$ppnn" data --data /no/such/dir
expect_fail "out of range" "$ppnn" data --data mnist --split test --offset 9990 --count 100
out=$("$ppnn" data --data mnist --split test --count 100) && [[ $out == *"100 images of 28x28"* ]] \
  && pass=$((pass+1)) || { fail=$((fail+1)); echo "FAIL: data stats output: $out" >&2; }
echo "cli_data: $pass passed, $fail failed"
[[ $fail -eq 0 ]]

#!/usr/bin/env bash
# CLI behaviour of `ppnn train` / `ppnn eval`: a tiny train + eval round trip, distillation
# from a saved teacher, JSON output, and one-line refusals of bad arguments and bad files.
set -u
ppnn=$1; pass=0; fail=0
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
ok()  { if "$@"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL: $*" >&2; fi; }
expect_fail() { # expect_fail PATTERN CMD...: non-zero exit and a one-line stderr containing PATTERN
  local pat=$1; shift
  local err; err=$("$@" 2>&1 >/dev/null); local rc=$?
  if [[ $rc -ne 0 && $err == *"$pat"* && $(printf '%s\n' "$err" | wc -l) -eq 1 ]]; then pass=$((pass+1))
  else fail=$((fail+1)); echo "FAIL: expected failure with '$pat' from: $* (rc=$rc, stderr: $err)" >&2; fi
}
ok "$ppnn" train --help >/dev/null
ok "$ppnn" eval --help >/dev/null
expect_fail "--out is required" "$ppnn" train --epochs 1
expect_fail "unknown architecture" "$ppnn" train --arch resnet --out "$tmp/x.ppnn"
expect_fail "unknown activation" "$ppnn" train --act tanh --out "$tmp/x.ppnn"
expect_fail "not an integer" "$ppnn" train --epochs zero --out "$tmp/x.ppnn"
expect_fail "not a number" "$ppnn" train --kd-alpha 2 --out "$tmp/x.ppnn"
expect_fail "see 'ppnn train --help'" "$ppnn" train --frobnicate
expect_fail "--prune" "$ppnn" train --prune 1 --out "$tmp/x.ppnn"
expect_fail "--prune" "$ppnn" train --prune -0.5 --out "$tmp/x.ppnn"
expect_fail "not adam or sgd" "$ppnn" train --optimizer rmsprop --out "$tmp/x.ppnn"
expect_fail "cannot open" "$ppnn" train --teacher "$tmp/none.ppnn" --out "$tmp/x.ppnn"
expect_fail "--model is required" "$ppnn" eval
expect_fail "unknown split" "$ppnn" eval --model "$tmp/x.ppnn" --split valid
[[ ! -e $tmp/x.ppnn ]] && pass=$((pass+1)) || { fail=$((fail+1)); echo "FAIL: refused run left a file" >&2; }

# Pruned: the run says so and the model evaluates.
ok "$ppnn" train --count 500 --epochs 1 --batch 32 --prune 0.9 --out "$tmp/p.ppnn" >"$tmp/p.out" 2>/dev/null
grep -q "pruned: 90.0%" "$tmp/p.out" && pass=$((pass+1)) || { fail=$((fail+1)); echo "FAIL: prune output" >&2; }
ok "$ppnn" eval --model "$tmp/p.ppnn" --count 100 >/dev/null

# Tiny round trip: teacher, distilled student, eval (text and JSON).
ok "$ppnn" train --arch cryptonets --act relu --count 1000 --epochs 1 --batch 32 --seed 3 \
   --out "$tmp/t.ppnn" >/dev/null 2>&1
ok "$ppnn" train --arch cryptonets --act element --count 1000 --epochs 2 --batch 32 --lr 0.003 \
   --teacher "$tmp/t.ppnn" --kd-temp 3 --kd-alpha 0.5 --holdout 200 --seed 3 \
   --out "$tmp/s.ppnn" >"$tmp/train.out" 2>"$tmp/train.err"
grep -q "holdout accuracy" "$tmp/train.out" && grep -q "loss" "$tmp/train.err" \
  && pass=$((pass+1)) || { fail=$((fail+1)); echo "FAIL: train output" >&2; }
out=$("$ppnn" eval --model "$tmp/s.ppnn" --count 500 --json)
acc=$(printf '%s' "$out" | python3 -c 'import json, sys; print(json.load(sys.stdin)["accuracy"])')
ncls=$(printf '%s' "$out" | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["per_class"]))')
# 1000 images, 2 epochs: well above chance (0.1); the exact value is not the point here.
if [[ -n $acc && $ncls -eq 10 ]] && awk -v a="$acc" 'BEGIN{exit !(a >= 0.6 && a <= 1)}'; then
  pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL: eval json: $out" >&2; fi
"$ppnn" eval --model "$tmp/s.ppnn" --count 100 | grep -q "accuracy" \
  && pass=$((pass+1)) || { fail=$((fail+1)); echo "FAIL: eval text" >&2; }

# Bad model files: truncated and corrupted are refused with one line.
head -c 100 "$tmp/s.ppnn" >"$tmp/trunc.ppnn"
expect_fail "truncated" "$ppnn" eval --model "$tmp/trunc.ppnn"
cp "$tmp/s.ppnn" "$tmp/bad.ppnn"
printf '\x55' | dd of="$tmp/bad.ppnn" bs=1 seek=200 conv=notrunc 2>/dev/null
expect_fail "checksum" "$ppnn" eval --model "$tmp/bad.ppnn"
expect_fail "train.out: not a ppnn file" "$ppnn" eval --model "$tmp/train.out"
# Divergence is an error and leaves no model file.
# (stderr also holds the progress bar, so only its last line is the error.)
"$ppnn" train --act square --count 500 --epochs 2 --lr 10 --clip 0 --optimizer sgd \
  --out "$tmp/div.ppnn" >/dev/null 2>"$tmp/div.err"
rc=$?; last=$(tail -n 1 "$tmp/div.err")
[[ $rc -ne 0 && $last == "ppnn train: error: training diverged at epoch"*layer* ]] && pass=$((pass+1)) \
  || { fail=$((fail+1)); echo "FAIL: divergence: rc=$rc $last" >&2; }
[[ ! -e $tmp/div.ppnn ]] && pass=$((pass+1)) || { fail=$((fail+1)); echo "FAIL: diverged run wrote a model" >&2; }
# Layer specs: a custom network trains; a malformed spec is refused naming the token.
ok "$ppnn" train --layers conv3x3s2c4,act,avgpool2,flatten,dense10 --count 500 --epochs 1 \
  --out "$tmp/spec.ppnn" >/dev/null 2>&1
ok test -f "$tmp/spec.ppnn"
expect_fail "token 3 'dense'" "$ppnn" train --layers conv5x5s2p1c5,act,dense,dense10 --out "$tmp/x.ppnn"
expect_fail "last layer must be dense10" "$ppnn" train --layers conv5x5c5,act,dense100 --out "$tmp/x.ppnn"
expect_fail "not both" "$ppnn" train --arch deep --layers dense10 --out "$tmp/x.ppnn"
ok test ! -e "$tmp/x.ppnn"
echo "cli_train: $pass passed, $fail failed"
[[ $fail -eq 0 ]]

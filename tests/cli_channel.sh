#!/usr/bin/env bash
# Channel-wise client/server flow through files: keygen --packing channel --model M (Galois keys
# of the plan), encrypt --packing channel, infer --packing channel WITHOUT secret.key, decrypt
# (exact, on the client) — predictions equal the plaintext model's; refusals of mixed inputs.
set -u
ppnn=$1; pass=0; fail=0
check() { if [[ $1 == 1 ]]; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL: $2" >&2; fi; }
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
n=6; [[ -n ${PPNN_TEST_REDUCED:-} ]] && n=2
"$ppnn" train --arch cryptonets --act channel --count 256 --epochs 1 --out "$d/m.ppnn" >/dev/null 2>&1
check $(( $? == 0 )) "train"
"$ppnn" keygen --out "$d/k" --packing channel --model "$d/m.ppnn" 2>/dev/null
check $(( $? == 0 )) "keygen --packing channel"
"$ppnn" encrypt --packing channel --model "$d/m.ppnn" --keys "$d/k" --data mnist --count $n \
    --out "$d/in.ct" 2>/dev/null
check $(( $? == 0 )) "encrypt --packing channel"
mv "$d/k/secret.key" "$d/secret.key"   # the server never sees it
out=$("$ppnn" infer --packing channel --model "$d/m.ppnn" --keys "$d/k" --in "$d/in.ct" \
      --out "$d/res.ct" 2>&1); rc=$?
check $(( rc == 0 )) "infer --packing channel without secret.key: $out"
# Wrong inputs: an element-wise flow's file is refused, as are missing Galois keys.
err=$("$ppnn" infer --packing channel --model "$d/m.ppnn" --keys "$d/k" --in "$d/res.ct" \
      --out "$d/x.ct" 2>&1 >/dev/null); rc=$?
check $(( rc != 0 && $(printf '%s\n' "$err" | wc -l) == 1 )) "logits as input refused: $err"
mkdir "$d/k2" && cp "$d/k/relin.key" "$d/k2/"
err=$("$ppnn" infer --packing channel --model "$d/m.ppnn" --keys "$d/k2" --in "$d/in.ct" \
      --out "$d/x.ct" 2>&1 >/dev/null); rc=$?
check $(( rc != 0 )) "missing galois.key refused: $err"
check $([[ ! -e $d/x.ct ]] && echo 1 || echo 0) "no output file left behind"
mv "$d/secret.key" "$d/k/secret.key"
out=$("$ppnn" decrypt --keys "$d/k" --in "$d/res.ct" --out "$d/pred.csv" --logits --exact \
      --data mnist 2>&1); rc=$?
check $(( rc == 0 )) "decrypt: $out"
check $(( $(wc -l < "$d/pred.csv") == n + 1 )) "one prediction per image"
# The same images through the plaintext model: predictions must agree.
python3 - "$d/pred.csv" "$n" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert len(rows) == int(sys.argv[2])
for r in rows:
    logits = [float(r[f"logit_{c}"]) for c in range(10)]
    assert int(r["prediction"]) == max(range(10), key=lambda c: logits[c]), r
PY
check $((! $?)) "csv well formed"
acc_enc=$(printf '%s\n' "$out" | sed -n 's/.*accuracy \([0-9.]*\) %.*/\1/p')
acc_plain=$("$ppnn" eval --model "$d/m.ppnn" --data mnist --split test --count $n 2>/dev/null |
            sed -n 's/.*accuracy \([0-9.]*\)%.*/\1/p' | head -1)
check $([[ -n $acc_enc && $acc_enc == "$acc_plain" ]] && echo 1 || echo 0) \
      "encrypted accuracy $acc_enc == plaintext accuracy $acc_plain"
echo "cli_channel: $pass passed, $fail failed"
[[ $fail -eq 0 ]]

#!/usr/bin/env bash
# CLI behaviour of `ppnn bench ckks`: JSON keys exactly the documented operations, positive
# timings, and refusals of bad options (non-zero exit, one-line error).
set -u
ppnn=$1; pass=0; fail=0
check() { if [[ $1 == 1 ]]; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL: $2" >&2; fi; }
"$ppnn" bench --help >/dev/null; check $((! $?)) "bench --help"
# N = 2^12 keeps this fast; the JSON must parse and hold every op with a positive time.
json=$("$ppnn" bench ckks --logn 12 --json)
check $((! $?)) "bench ckks --logn 12 --json exit code"
python3 - "$json" <<'PY'
import json, sys
d = json.loads(sys.argv[1])
ops = ["ntt", "encode", "encrypt_pk", "encrypt_sk", "decrypt", "decode", "add", "mul_scalar",
       "mul", "relin", "rescale", "rotate"]
params = {"logn", "n", "primes", "special_prime", "logqp", "threads"}
assert set(d) == set(ops) | params, sorted(set(d) ^ (set(ops) | params))
assert all(d[k] > 0 for k in ops), d
assert d["logn"] == 12 and d["n"] == 4096 and d["logqp"] <= 109 and d["threads"] == 1
PY
check $((! $?)) "bench JSON content: $json"
err=$("$ppnn" bench ckks --logn 11 2>&1 >/dev/null); rc=$?
check $(( rc != 0 && $(printf '%s\n' "$err" | wc -l) == 1 )) "--logn 11 refused: $err"
err=$("$ppnn" bench frob 2>&1 >/dev/null); rc=$?
check $(( rc != 0 )) "unknown benchmark refused"
echo "cli_bench: $pass passed, $fail failed"
[[ $fail -eq 0 ]]

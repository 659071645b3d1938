#!/usr/bin/env bash
# Encrypted vs plaintext predictions on a whole test split, in batches of N/2 images, through
# the CLI only (keygen, encrypt, infer, decrypt --logits --exact, eval --predictions).
# usage: scripts/agreement.sh PPNN MODEL [DATA] [TOTAL]   e.g. build/ppnn m.ppnn mnist 10000
set -euo pipefail
ppnn=$1; model=$2; data=${3:-mnist}; total=${4:-10000}; batch=4096
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
"$ppnn" keygen --params n13 --out "$dir/keys" 2>/dev/null
: > "$dir/enc.csv"; : > "$dir/plain.csv"
for ((off = 0; off < total; off += batch)); do
  n=$(( total - off < batch ? total - off : batch ))
  "$ppnn" encrypt --keys "$dir/keys" --data "$data" --split test --offset $off --count $n --out "$dir/b.ct" 2>/dev/null
  "$ppnn" infer --model "$model" --keys "$dir/keys" --in "$dir/b.ct" --out "$dir/r.ct" --quiet | sed 's/^/  /'
  "$ppnn" decrypt --keys "$dir/keys" --in "$dir/r.ct" --out "$dir/e.csv" --logits --exact >/dev/null
  "$ppnn" eval --model "$model" --data "$data" --split test --offset $off --count $n --predictions "$dir/p.csv" >/dev/null
  tail -n +2 "$dir/e.csv" >> "$dir/enc.csv"; tail -n +2 "$dir/p.csv" >> "$dir/plain.csv"
done
paste -d, "$dir/enc.csv" "$dir/plain.csv" | awk -F, '
  { k = (NF - 4) / 2; agree += ($2 == $(k + 4));
    for (c = 0; c < k; c++) { d = $(3 + c) - $(k + 5 + c); if (d < 0) d = -d; if (d > m) m = d } }
  END { printf "%d images: agreement %.2f %% (%d), max |logit error| %.3g\n", NR, 100 * agree / NR, agree, m }'

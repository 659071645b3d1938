#!/usr/bin/env bash
# Encrypted vs plaintext predictions on a whole test split through the CLI only, in one pass:
# keygen, encrypt (every image: a multi-batch file of N/2-image batches), infer, decrypt
# --logits --release-bits 0, eval --predictions.
# usage: scripts/agreement.sh PPNN MODEL [DATA] [TOTAL] [PARAMS] [INFER_OPTIONS...]
#   e.g. scripts/agreement.sh build/ppnn m.ppnn mnist 10000
#        scripts/agreement.sh build/ppnn deep.ppnn fashion 10000 n14 --memory 8G
set -euo pipefail
ppnn=$1; model=$2; data=${3:-mnist}; total=${4:-10000}; params=${5:-n13}
shift $(( $# < 5 ? $# : 5 ))
dir=$(mktemp -d "${TMPDIR:-/tmp}/ppnn-agree-XXXXXX"); trap 'rm -rf "$dir"' EXIT
"$ppnn" keygen --params "$params" --out "$dir/keys" 2>/dev/null
"$ppnn" encrypt --keys "$dir/keys" --data "$data" --split test --count "$total" --out "$dir/b.ct" 2>/dev/null
"$ppnn" infer --model "$model" --keys "$dir/keys" --in "$dir/b.ct" --out "$dir/r.ct" --quiet "$@" | sed 's/^/  /'
rm -f "$dir/b.ct"
"$ppnn" decrypt --keys "$dir/keys" --in "$dir/r.ct" --out "$dir/e.csv" --logits --release-bits 0 --data "$data" | sed 's/^/  /'
"$ppnn" eval --model "$model" --data "$data" --split test --count "$total" --predictions "$dir/p.csv" >/dev/null
paste -d, <(tail -n +2 "$dir/e.csv") <(tail -n +2 "$dir/p.csv") | awk -F, '
  { k = (NF - 4) / 2; agree += ($2 == $(k + 4));
    for (c = 0; c < k; c++) { d = $(3 + c) - $(k + 5 + c); if (d < 0) d = -d; if (d > m) m = d } }
  END { printf "%d images: agreement %.2f %% (%d), max |logit error| %.3g\n", NR, 100 * agree / NR, agree, m }'

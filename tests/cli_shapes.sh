#!/usr/bin/env bash
# A cached model whose input shape differs from the data's is refused with one line before any
# work (issue 13 item 7: `ppnn demo` used to overflow a heap buffer in data_normalize).
. "$(dirname "$0")/clilib.sh"
tiny_data tiny
ok "$ppnn" train --data mnist --count 500 --epochs 1 --out m28.ppnn
# a first demo trains and caches the 8x8 model; then the cache is replaced by a 28x28 model
ok "$ppnn" demo --data tiny --models M --count 16
for f in M/*cryptonets-element-kd.ppnn; do cp m28.ppnn "$f"; done
refuse "model expects 1x28x28 inputs but the images are 1x8x8" /nonexistent \
  "$ppnn" demo --data tiny --models M --count 16
# ... and nothing was started: no keygen, no temporary directory left
out=$("$ppnn" demo --data tiny --models M --count 16 2>/dev/null)
ok test -z "$(printf '%s' "$out" | grep keygen)"
refuse "model expects 1x28x28 inputs but the images are 1x8x8" /nonexistent \
  "$ppnn" eval --model m28.ppnn --data tiny
finish cli_shapes

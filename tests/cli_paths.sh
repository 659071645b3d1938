#!/usr/bin/env bash
# The path policy (src/util/paths.c, issue 13 item 8): FIFOs as inputs are refused at once (they
# used to hang every command); an output that is one of the command's inputs, or an existing
# file of another kind (a secret key!), is refused unless --force; long paths are used whole or
# refused, never truncated; a FIFO named as output is written through, not replaced.
. "$(dirname "$0")/clilib.sh"
tiny_data tiny
ok "$ppnn" train --data tiny --count 16 --epochs 1 --out t.ppnn
ok "$ppnn" keygen --out K
ok cp K/secret.key secret.copy

# FIFOs as inputs: refused within the timeout (a hang would be rc 124)
mkfifo fifo
refuse "fifo: not a regular file" /nonexistent timeout 20 "$ppnn" eval --model fifo --data tiny
refuse "fifo: not a regular file" out.ct timeout 20 "$ppnn" infer --model t.ppnn --keys K --in fifo --out out.ct
refuse "fifo: not a regular file" out.csv timeout 20 "$ppnn" decrypt --keys K --in fifo --out out.csv
mkdir F && mkfifo F/secret.key
refuse "secret.key: not a regular file" out.ct timeout 20 "$ppnn" encrypt --keys F --data tiny --out out.ct
mkdir -p tinyfifo && cp tiny/train-* tiny/t10k-labels* tinyfifo/ && mkfifo tinyfifo/t10k-images-idx3-ubyte
refuse "t10k-images-idx3-ubyte: not a regular file" /nonexistent timeout 20 "$ppnn" eval --model t.ppnn --data tinyfifo

# an output that is also an input
refuse "K/secret.key is also an input" /nonexistent "$ppnn" encrypt --keys K --data tiny --count 4 --out K/secret.key
ok cmp K/secret.key secret.copy
refuse "t.ppnn is also an input" /nonexistent "$ppnn" eval --model t.ppnn --data tiny --predictions t.ppnn
ok cp t.ppnn t2.ppnn
refuse "t2.ppnn is also an input" /nonexistent "$ppnn" train --data tiny --count 16 --epochs 1 --teacher t2.ppnn --out t2.ppnn
ok cmp t.ppnn t2.ppnn
# an existing file of another kind: refused, --force replaces it
ok cp K/relin.key relin.copy
refuse "holds a relinearization key file; refusing to replace it" /nonexistent "$ppnn" eval --model t.ppnn --data tiny --predictions relin.copy
ok cmp K/relin.key relin.copy
refuse "holds a model file" /nonexistent "$ppnn" encrypt --keys K --data tiny --count 4 --out t2.ppnn
ok cmp t.ppnn t2.ppnn
ok "$ppnn" eval --model t.ppnn --data tiny --predictions relin.copy --force
ok test "$(head -c 16 relin.copy)" = "image,prediction"
# ... the same kind is replaced as before
ok "$ppnn" eval --model t.ppnn --data tiny --predictions p.csv
ok "$ppnn" eval --model t.ppnn --data tiny --predictions p.csv

# a key directory of 1015 bytes: the keys land in it (a 1024-byte buffer used to truncate them
# into one misnamed file); one longer than PATH_MAX is refused
long=$PWD; while [[ ${#long} -lt 1015 ]]; do long=$long/$(printf 'x%.0s' $(seq 1 $(( 1015 - ${#long} - 1 < 200 ? 1015 - ${#long} - 1 : 200 )))); done
mkdir -p "$long"
ok "$ppnn" keygen --out "$long"
ok test -f "$long/secret.key" -a -f "$long/relin.key"
ok test "$(ls "$(dirname "$long")" | wc -l)" = 1
huge=$PWD; while [[ ${#huge} -lt 4200 ]]; do huge=$huge/$(printf 'y%.0s' $(seq 1 200)); done
refuse "path too long" /nonexistent "$ppnn" keygen --out "$huge"

# a FIFO as output is written through (a reader gets the CSV), not replaced by a regular file
mkfifo out.fifo
( timeout 30 cat out.fifo > got.csv ) &
ok timeout 30 "$ppnn" eval --model t.ppnn --data tiny --predictions out.fifo
wait
ok test -p out.fifo
ok test "$(wc -l < got.csv)" = 17
finish cli_paths

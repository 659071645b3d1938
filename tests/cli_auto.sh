#!/usr/bin/env bash
# --packing auto through files (docs/channel-wise.md, "Automatic packing"): keygen --packing
# auto makes the Galois keys the choice may need; encrypt chooses from the image count and the
# cost model and prints why; the batch file records the choice, infer and decrypt --packing
# auto follow it (infer without secret.key); the predictions equal the plaintext model's for a
# few images (channel-wise chosen) and for many (element-wise chosen). Refusals: missing
# Galois keys (naming the command that makes them), malformed counts and costs files, a
# --packing that contradicts the file, a channel-wise batch for the service.
. "$(dirname "$0")/clilib.sh"
# same_predictions CSV COUNT: the decrypted predictions equal `ppnn eval --predictions`'s.
same_predictions() {
  "$ppnn" eval --model m.ppnn --data mnist --split test --count "$2" --predictions plain.csv \
      >/dev/null 2>&1 && cut -d, -f2 plain.csv | cmp -s - <(cut -d, -f2 "$1")
}
has() { [[ $(cat "$1") == *"$2"* ]]; }   # has FILE TEXT
ok "$ppnn" train --arch cryptonets --act channel --count 256 --epochs 1 --out m.ppnn
# keygen without --count: Galois keys, since one image is cheaper channel-wise.
"$ppnn" keygen --out k --packing auto --model m.ppnn --threads 2 2>keygen.log
ok test -s k/galois.key
ok has keygen.log "keygen: packing: channel-wise (1 image: "
# keygen for a large batch: element-wise, no Galois keys.
"$ppnn" keygen --out kbig --packing auto --model m.ppnn --count 4096 --threads 2 2>kbig.log
ok test -f kbig/relin.key -a ! -e kbig/galois.key
ok has kbig.log "no Galois keys: element-wise packing"

# A few images: channel-wise, then infer/decrypt follow the file.
"$ppnn" encrypt --packing auto --model m.ppnn --keys k --data mnist --count 3 --threads 2 \
    --out few.ct 2>few.log
ok has few.log "encrypt: packing: channel-wise (3 images: "
ok has few.log "[built-in costs]"
mkdir srv && cp k/relin.key k/galois.key srv/   # the server never sees secret.key
"$ppnn" infer --packing auto --model m.ppnn --keys srv --in few.ct --out few.res.ct --quiet \
    >/dev/null 2>infer.log
ok has infer.log "infer: packing: channel-wise (recorded in few.ct)"
ok "$ppnn" decrypt --packing auto --keys k --in few.res.ct --out few.csv --logits --exact
ok same_predictions few.csv 3

# Image files: the choice counts them; channel-wise keeps the names manifest like element-wise.
python3 - <<'PY'
import struct
h = "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 28, 28), }"
h += " " * (118 - len(h)) + "\n"
open("two.npy", "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode() +
                            bytes((i * 7) % 256 for i in range(2 * 784)))
PY
"$ppnn" encrypt --packing auto --model m.ppnn --keys k --images two.npy --threads 2 \
    --out np.ct 2>np.log
ok has np.log "encrypt: packing: channel-wise (2 images: "
ok test -s np.ct.names.json
ok "$ppnn" infer --packing auto --model m.ppnn --keys srv --in np.ct --out np.res.ct
ok "$ppnn" decrypt --packing auto --keys k --in np.res.ct --out np.csv --names np.ct.names.json
"$ppnn" eval --model m.ppnn --images two.npy --predictions np_plain.csv >/dev/null 2>&1
ok cmp -s <(cut -d, -f1-3 np.csv) <(cut -d, -f1-3 np_plain.csv)   # image,file,prediction

# Many images (past the crossover of the built-in costs): element-wise. Sanitizer runs use a
# costs file whose rotations are 10^4 times dearer instead, so that 2 images are element-wise
# (the costs file is honoured); its element-wise batch of 2 images is as cheap as it gets.
python3 - <<'PY'
import json
c = {"logn": 13, "nq": 6, "mac_dense": 0.033e-9, "mac_sparse": 0.22e-9, "add": 43e-6,
     "mul_plain": 60e-6, "square": 106e-6, "relin": 1242e-6, "rescale": 294e-6,
     "rotate": 1394e-6 * 1e4, "rotate_hoisted": 420e-6 * 1e4}
json.dump(c, open("dear_rot.json", "w"))
c["logn"] = 14
json.dump(c, open("n14.json", "w"))
PY
if [[ -n ${PPNN_TEST_REDUCED:-} ]]; then many=2; costs=(--costs dear_rot.json)
else many=48; costs=(); fi
"$ppnn" encrypt --packing auto --model m.ppnn --keys k --data mnist --count $many --threads 2 \
    "${costs[@]}" --out many.ct 2>many.log
ok has many.log "encrypt: packing: element-wise ($many images: "
"$ppnn" infer --packing auto --model m.ppnn --keys srv --in many.ct --out many.res.ct --quiet \
    >/dev/null 2>infer2.log
ok has infer2.log "infer: packing: element-wise (recorded in many.ct)"
ok "$ppnn" decrypt --packing auto --keys k --in many.res.ct --out many.csv
ok same_predictions many.csv $many
# The same count with the costs file when the built-in costs chose channel-wise (and back).
"$ppnn" encrypt --packing auto --model m.ppnn --keys k --data mnist --count 3 --threads 2 \
    --costs dear_rot.json --out few2.ct 2>few2.log
ok has few2.log "encrypt: packing: element-wise (3 images: "
ok has few2.log "[dear_rot.json costs]"

# Refusals: one line, no output left behind.
refuse "--packing auto chose channel-wise (2 images: " x.ct \
    "$ppnn" encrypt --packing auto --model m.ppnn --keys kbig --data mnist --count 2 --out x.ct
refuse "which needs Galois keys, and kbig/galois.key is missing: make the keys with \`ppnn keygen --packing channel --model m.ppnn" \
    x.ct "$ppnn" encrypt --packing auto --model m.ppnn --keys kbig --data mnist --count 2 --out x.ct
refuse "--count: '0' is not an integer" x.ct \
    "$ppnn" encrypt --packing auto --model m.ppnn --keys k --data mnist --count 0 --out x.ct
refuse "--count: '3x' is not an integer" x.ct \
    "$ppnn" encrypt --packing auto --model m.ppnn --keys k --data mnist --count 3x --out x.ct
refuse "--count: '-1' is not an integer" kx \
    "$ppnn" keygen --out kx --packing auto --model m.ppnn --count -1
refuse "--count, --costs and --threads are only used with --packing auto" kx \
    "$ppnn" keygen --out kx --count 5
refuse "--packing must be element, channel or auto, not 'best'" x.ct \
    "$ppnn" encrypt --packing best --model m.ppnn --keys k --data mnist --count 2 --out x.ct
refuse "--packing auto needs --model M.ppnn" x.ct \
    "$ppnn" encrypt --packing auto --keys k --data mnist --count 2 --out x.ct
refuse "--costs is only used with --packing auto" x.ct \
    "$ppnn" encrypt --keys k --data mnist --count 2 --costs dear_rot.json --out x.ct
echo '{"logn": 13' > broken.json
refuse "--costs broken.json: operation costs: not a JSON object" x.ct \
    "$ppnn" encrypt --packing auto --model m.ppnn --keys k --data mnist --count 2 \
    --costs broken.json --out x.ct
refuse "--costs n14.json: operation costs measured at N = 2^14, the parameters have N = 2^13" \
    x.ct "$ppnn" encrypt --packing auto --model m.ppnn --keys k --data mnist --count 2 \
    --costs n14.json --out x.ct
refuse "--costs missing.json" kx \
    "$ppnn" keygen --out kx --packing auto --model m.ppnn --costs missing.json
refuse "few.ct is a channel-wise batch (encrypt decided); drop --packing element" x.ct \
    "$ppnn" infer --packing element --model m.ppnn --keys srv --in few.ct --out x.ct
refuse "many.res.ct is an element-wise batch (encrypt decided); drop --packing channel" x.csv \
    "$ppnn" decrypt --packing channel --keys k --in many.res.ct --out x.csv
refuse "--packing auto follows the batch file: --in FILE is required" x.ct \
    "$ppnn" infer --packing auto --model m.ppnn --keys srv --out x.ct
refuse "--memory applies to element-wise packing only; this batch is channel-wise" x.ct \
    "$ppnn" infer --packing auto --model m.ppnn --keys srv --in few.ct --out x.ct --memory 1G
# The service evaluates element-wise batches only: refused before any connection (port 1).
refuse "few.ct is channel-wise; the service (ppnn serve) evaluates element-wise batches only" \
    x.ct "$ppnn" submit --server http://127.0.0.1:1 --token t --keys k --model m --in few.ct \
    --out x.ct --packing auto
finish cli_auto

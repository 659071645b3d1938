#!/usr/bin/env bash
# PyTorch -> ONNX -> ppnn, encrypted: trains examples/pytorch/poly_cnn.py, exports ONNX,
# `ppnn import`s it with calibration, encrypts 256 MNIST test images, runs the encrypted
# inference, decrypts the logits and compares them with PyTorch's.
#   examples/pytorch/roundtrip.sh [WORKDIR]     (from the repository root, after `make build`)
# Needs Debian's python3-torch. PPNN=path/to/ppnn overrides build/ppnn, PARAMS the preset
# (the net has depth 6: n14).
set -euo pipefail
ppnn=${PPNN:-build/ppnn}; params=${PARAMS:-n14}; work=${1:-$(mktemp -d)}
py=/usr/bin/python3   # Debian's interpreter, where python3-torch lives
count=256
mkdir -p "$work"
$py examples/pytorch/poly_cnn.py --out "$work" --ref-count $count
"$ppnn" import --onnx "$work/poly_cnn.onnx" --out "$work/model.ppnn" --calibrate mnist --count 2000
"$ppnn" keygen --params "$params" --out "$work/keys" >/dev/null
"$ppnn" encrypt --keys "$work/keys" --data mnist --count $count --out "$work/batch.ct"
"$ppnn" infer --model "$work/model.ppnn" --keys "$work/keys" --in "$work/batch.ct" --out "$work/result.ct"
# Exact logits (--release-bits 0): the comparison stays with the key owner.
"$ppnn" decrypt --keys "$work/keys" --in "$work/result.ct" --out "$work/pred.csv" --logits \
  --release-bits 0 --data mnist
$py - "$work/pred.csv" "$work/poly_cnn_logits.csv" <<'PY'
import csv, sys
got = [list(map(float, r[2:])) for r in list(csv.reader(open(sys.argv[1])))[1:]]
ref = [list(map(float, l.split(","))) for l in open(sys.argv[2])]
err = max(abs(a - b) for g, r in zip(got, ref) for a, b in zip(g, r))
mag = max(abs(v) for r in ref for v in r)
agree = sum(max(range(10), key=g.__getitem__) == max(range(10), key=r.__getitem__)
            for g, r in zip(got, ref))
print(f"encrypted vs PyTorch on {len(ref)} images: max |logit error| {err:.3g} "
      f"(relative {err / mag:.3g}), argmax agrees on {agree}/{len(ref)}")
sys.exit(0 if err / mag <= 1e-3 else 1)
PY

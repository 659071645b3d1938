#!/usr/bin/env bash
# CLI behaviour of `ppnn import`: the PyTorch fixture imports with calibration, the model
# runs (`ppnn eval`), refusals (ReLU, malformed, truncated, missing) are one line naming the
# file (and node), exit non-zero and leave no output file.
set -u
ppnn=$1; pass=0; fail=0
src=${PPNN_SOURCE_DIR:?}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fix=$src/tests/data/onnx
expect_fail() { # expect_fail PATTERN OUT CMD...: non-zero, one-line stderr with PATTERN, no OUT
  local pat=$1 out=$2; shift 2
  local err; err=$("$@" 2>&1 >/dev/null); local rc=$?
  if [[ $rc -ne 0 && $err == *"$pat"* && $(printf '%s\n' "$err" | wc -l) -eq 1 && ! -e $out ]]
  then pass=$((pass+1))
  else fail=$((fail+1)); echo "FAIL: expected failure with '$pat' from: $* (rc=$rc, stderr: $err)" >&2; fi
}
out=$("$ppnn" import --onnx "$fix/poly_cnn.onnx" --out "$tmp/m.ppnn" --calibrate mnist --count 200) \
  && [[ -s $tmp/m.ppnn && $out == *"depth 6, ranges calibrated"* ]] && pass=$((pass+1)) \
  || { fail=$((fail+1)); echo "FAIL: import of the fixture: $out" >&2; }
acc=$("$ppnn" eval --model "$tmp/m.ppnn" --count 500 --json) \
  && [[ $acc =~ \"accuracy\":\ ?0\.9[0-9]+ ]] && pass=$((pass+1)) \
  || { fail=$((fail+1)); echo "FAIL: imported model accuracy: $acc" >&2; }
expect_fail "node 2 '/2/Relu' (Relu)" "$tmp/r.ppnn" "$ppnn" import --onnx "$fix/relu_cnn.onnx" --out "$tmp/r.ppnn"
head -c 3000 "$fix/poly_cnn.onnx" > "$tmp/cut.onnx"
expect_fail "cut.onnx" "$tmp/c.ppnn" "$ppnn" import --onnx "$tmp/cut.onnx" --out "$tmp/c.ppnn"
printf 'not a model' > "$tmp/junk.onnx"
expect_fail "junk.onnx: not an ONNX model" "$tmp/j.ppnn" "$ppnn" import --onnx "$tmp/junk.onnx" --out "$tmp/j.ppnn"
expect_fail "no/such.onnx" "$tmp/n.ppnn" "$ppnn" import --onnx "$tmp/no/such.onnx" --out "$tmp/n.ppnn"
expect_fail "--onnx and --out are required" "$tmp/x.ppnn" "$ppnn" import --onnx "$fix/poly_cnn.onnx"
expect_fail "calibration images" "$tmp/k.ppnn" "$ppnn" import --onnx "$src/fuzz/corpus/fuzz_onnx/tiny.onnx" --out "$tmp/k.ppnn" --calibrate mnist --count 10
# Calibration from image files records the same ranges as from the IDX data set: the first 50
# MNIST training images written as one .npy give the same model file byte for byte.
mnist_dir=$("$ppnn" data --data mnist --split train --count 1 | sed -n 's/.* from \(.*\)\/train-images.*/\1/p')
python3 - "$src/tests/gen" "$mnist_dir/train-images-idx3-ubyte" "$tmp/cal.npy" <<'PY'
import sys; sys.path.insert(0, sys.argv[1])
from imagegen import npy
b = open(sys.argv[2], 'rb').read()
npy(sys.argv[3], (50, 28, 28), b[16:16 + 50 * 784])
PY
"$ppnn" import --onnx "$fix/poly_cnn.onnx" --out "$tmp/idx.ppnn" --calibrate mnist --split train --count 50 >/dev/null \
  && "$ppnn" import --onnx "$fix/poly_cnn.onnx" --out "$tmp/npy.ppnn" --calibrate "$tmp/cal.npy" --count 50 >/dev/null \
  && cmp -s "$tmp/idx.ppnn" "$tmp/npy.ppnn" && pass=$((pass+1)) \
  || { fail=$((fail+1)); echo "FAIL: calibration from a .npy differs from the IDX one" >&2; }
expect_fail "neither an IDX data set" "$tmp/q.ppnn" "$ppnn" import --onnx "$fix/poly_cnn.onnx" --out "$tmp/q.ppnn" --calibrate "$tmp/no-such-dir"
# An existing output is not clobbered by a failed import.
echo keep > "$tmp/keep.ppnn"
"$ppnn" import --onnx "$fix/relu_cnn.onnx" --out "$tmp/keep.ppnn" 2>/dev/null
[[ $(cat "$tmp/keep.ppnn") == keep ]] && pass=$((pass+1)) || { fail=$((fail+1)); echo "FAIL: output clobbered" >&2; }
echo "cli_onnx: $pass passed, $fail failed"
[[ $fail -eq 0 ]]

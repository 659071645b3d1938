#!/usr/bin/env bash
# Images through the CLI: MNIST test images written as PNG, .npy and DICOM files by an
# independent writer (tests/gen/imagegen.py, standard library only) must give the same plaintext
# predictions as the IDX path; the encrypted flow with --images carries the file names on the
# client side only (OUT.names.json) back to `decrypt --names`; --resize; and every bad input
# (corrupted / truncated PNG, .npy, DICOM, shape mismatch, a manifest of another batch) fails
# with one line naming the file, a non-zero exit and no output file.
set -u
ppnn=$1; pass=0; fail=0
src=${PPNN_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
ok() { if "$@" >"$dir/log" 2>&1; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL: $*" >&2; tail -5 "$dir/log" >&2; fi; }
refuse() { # refuse PATTERN OUTFILE CMD...: fails with PATTERN in a one-line error, OUTFILE absent
  local pat=$1 out=$2; shift 2
  local err; err=$("$@" 2>&1 >/dev/null); local rc=$?
  if [[ $rc -ne 0 && $err == *"$pat"* && $(printf '%s\n' "$err" | grep -c .) -eq 1 && ! -e $out ]] &&
     ! ls "$out".tmp.* >/dev/null 2>&1 && ! ls "$out".names.json* >/dev/null 2>&1; then pass=$((pass+1))
  else fail=$((fail+1)); echo "FAIL: expected '$pat' refusal from: $* (rc=$rc: $err)" >&2; fi
}
mnist_dir=$("$ppnn" data --data mnist --split test --count 1 | sed -n 's/.* from \(.*\)\/t10k-images.*/\1/p')
ok test -f "$mnist_dir/t10k-images-idx3-ubyte"
ok "$ppnn" train --data mnist --count 3000 --epochs 2 --seed 3 --out "$dir/m.ppnn"
mkdir -p "$dir/png"
python3 - "$src/tests/gen" "$mnist_dir" "$dir" <<'PY'
import sys; sys.path.insert(0, sys.argv[1])
from imagegen import png, npy, dicom, mnist
d = sys.argv[3]
ims = mnist(sys.argv[2], 0, 13)
rows = lambda im: [im[28 * r:28 * r + 28] for r in range(28)]
for i in (3, 0, 7, 1, 5, 2, 6, 4):          # test images 0..7, written out of name order
    png('%s/png/img_%02d.png' % (d, i), 28, 28, rows(ims[i]))
npy(d + '/a.npy', (3, 28, 28), b''.join(ims[8:11]))           # 8..10
dicom(d + '/x.dcm', 28, 28, ims[11], '128', '256')             # 11: window 128/256 = p/255
png(d + '/y16.png', 28, 28, [bytes(b for v in r for b in (v, v)) for r in rows(ims[12])], 16)  # 12: 257 p / 65535 = p/255
png(d + '/big.png', 56, 56, [bytes(b for v in rows(ims[0])[r // 2] for b in (v, v)) for r in range(56)])
png(d + '/tiny.png', 2, 2, [b'\x00\xff', b'\xff\x00'])  # small batches for the manifest checks
open(d + '/notes.txt', 'w').write('not an image')
PY
ok test -f "$dir/y16.png"
imgs=("$dir/png" "$dir/a.npy" "$dir/x.dcm" "$dir/y16.png")

# Plaintext: the same predictions and logits (to 1e-5) as the IDX images 0..12, names in order.
ok "$ppnn" eval --model "$dir/m.ppnn" --images "${imgs[@]}" --predictions "$dir/pi.csv"
ok "$ppnn" eval --model "$dir/m.ppnn" --data mnist --count 13 --predictions "$dir/pd.csv"
same=$(paste -d, <(tail -n +2 "$dir/pi.csv" | cut -d, -f1,3-) <(tail -n +2 "$dir/pd.csv") | awk -F, '
  { k = NF / 2; for (c = 2; c <= k; c++) { d = $c - $(k + c); if (d < 0) d = -d; if (d > m) m = d } }
  END { print (NR == 13 && m < 1e-5) ? "ok" : NR " " m }')
ok test "$same" = ok
names=$(tail -n +2 "$dir/pi.csv" | cut -d, -f2 | sed "s|$dir/||" | tr '\n' ' ')
ok test "$names" = "png/img_00.png png/img_01.png png/img_02.png png/img_03.png png/img_04.png png/img_05.png png/img_06.png png/img_07.png a.npy[0] a.npy[1] a.npy[2] x.dcm y16.png "
# --resize: the 2x pixel-duplicated image area-averages back to image 0 exactly
refuse "pass --resize" "$dir/none" "$ppnn" eval --model "$dir/m.ppnn" --images "$dir/big.png"
ok "$ppnn" eval --model "$dir/m.ppnn" --images "$dir/big.png" --resize --predictions "$dir/pb.csv"
resized=$(paste -d, <(sed -n 2p "$dir/pb.csv" | cut -d, -f3-) <(sed -n 2p "$dir/pi.csv" | cut -d, -f3-) | awk -F, '
  { k = NF / 2; for (c = 1; c <= k; c++) { d = $c - $(k + c); if (d < 0) d = -d; if (d > m) m = d } }
  END { print (k == 11 && m < 1e-4) ? "ok" : k " " m }')   # batch size changes BLAS summation order
ok test "$resized" = ok

# Encrypted: names never enter the batch; decrypt --names puts them back; same predictions.
ok "$ppnn" keygen --params n13 --out "$dir/k"
ok "$ppnn" encrypt --keys "$dir/k" --images "${imgs[@]}" --model "$dir/m.ppnn" --out "$dir/b.ct"
ok test -f "$dir/b.ct.names.json"
# Fixed strings of 6+ bytes: the regex "a.npy" matched 4 fixed bytes, which a 143 MB ciphertext
# file holds by chance in about one run in 30 (x.dcm likewise).
ok test "$(grep -a -c -F -e png/img_0 -e 'a.npy[' -e y16.png "$dir/b.ct" 2>/dev/null)" = 0
mv "$dir/k/secret.key" "$dir/secret.away"
ok "$ppnn" infer --model "$dir/m.ppnn" --keys "$dir/k" --in "$dir/b.ct" --out "$dir/r.ct"
mv "$dir/secret.away" "$dir/k/secret.key"
ok "$ppnn" decrypt --keys "$dir/k" --in "$dir/r.ct" --out "$dir/e.csv" --names "$dir/b.ct.names.json"
ok test "$(cut -d, -f1-3 "$dir/e.csv")" = "$(cut -d, -f1-3 "$dir/pi.csv")"
ok test "$(head -1 "$dir/e.csv")" = "image,file,prediction"

# A manifest of another batch (other count) is refused; so is one under other keys.
ok "$ppnn" encrypt --keys "$dir/k" --images "$dir/tiny.png" --out "$dir/b2.ct"
refuse "names 1 images but the results hold 13" "$dir/x.csv" "$ppnn" decrypt --keys "$dir/k" --in "$dir/r.ct" --out "$dir/x.csv" --names "$dir/b2.ct.names.json"
ok "$ppnn" keygen --params n13 --out "$dir/k2"
ok "$ppnn" encrypt --keys "$dir/k2" --images $(printf "$dir/tiny.png %.0s" {1..13}) --out "$dir/b3.ct"   # 13 images, other keys
refuse "other keys" "$dir/x.csv" "$ppnn" decrypt --keys "$dir/k" --in "$dir/r.ct" --out "$dir/x.csv" --names "$dir/b3.ct.names.json"

# Bad input: one line naming the file, no batch and no manifest left behind.
p="$dir/png/img_03.png"; n=$(stat -c %s "$p")
head -c $((n - 20)) "$p" > "$dir/trunc.png"
cp "$p" "$dir/flip.png"; printf '\x00\x00' | dd of="$dir/flip.png" bs=1 seek=$((n / 2)) conv=notrunc 2>/dev/null
head -c 200 "$dir/a.npy" > "$dir/trunc.npy"
head -c 500 "$dir/x.dcm" > "$dir/trunc.dcm"
for f in trunc.png flip.png trunc.npy trunc.dcm notes.txt; do
  refuse "$dir/$f" "$dir/x.ct" "$ppnn" encrypt --keys "$dir/k" --images "$dir/png" "$dir/$f" --out "$dir/x.ct"
  refuse "$dir/$f" "$dir/none" "$ppnn" eval --model "$dir/m.ppnn" --images "$dir/$f"
done
refuse "image is 1x56x56 (CxHxW) but the model expects 1x28x28" "$dir/x.ct" "$ppnn" encrypt --keys "$dir/k" --images "$dir/big.png" --model "$dir/m.ppnn" --out "$dir/x.ct"
refuse "but the first image is 1x28x28" "$dir/x.ct" "$ppnn" encrypt --keys "$dir/k" --images "$dir/a.npy" "$dir/big.png" --out "$dir/x.ct"
refuse "--resize needs the target shape" "$dir/x.ct" "$ppnn" encrypt --keys "$dir/k" --images "$dir/big.png" --resize --out "$dir/x.ct"
refuse "do not combine with --images" "$dir/x.ct" "$ppnn" encrypt --keys "$dir/k" --images "$dir/a.npy" --count 3 --out "$dir/x.ct"
refuse "expected CxHxW" "$dir/x.ct" "$ppnn" encrypt --keys "$dir/k" --images "$dir/a.npy" --shape 28x28 --out "$dir/x.ct"
ok "$ppnn" encrypt --keys "$dir/k" --images "$dir/big.png" --shape 1x4x4 --resize --out "$dir/x2.ct"
# Colour: a 3x8x8 data set (4-D IDX) trains with a layer spec; its test images as RGB PNGs give
# the IDX path's plaintext logits, and the same predictions encrypted.
mkdir -p "$dir/colour" "$dir/rgb"
python3 - "$src/tests/gen" "$dir" <<'PY'
import sys; sys.path.insert(0, sys.argv[1])
from imagegen import png, colour_idx
d = sys.argv[2]
colour_idx(d + '/colour/train-images-idx3-ubyte', d + '/colour/train-labels-idx1-ubyte', 1500, 1)
test = colour_idx(d + '/colour/t10k-images-idx3-ubyte', d + '/colour/t10k-labels-idx1-ubyte', 20, 2)
for i, im in enumerate(test):                 # CHW bytes -> interleaved RGB rows
    png('%s/rgb/%02d.png' % (d, i), 8, 8, [bytes(im[c * 64 + y * 8 + x] for x in range(8) for c in range(3)) for y in range(8)], 8, 2)
PY
ok "$ppnn" train --data "$dir/colour" --layers conv3x3p1c4,act,avgpool2,flatten,dense10 --epochs 3 --out "$dir/c.ppnn"
ok "$ppnn" eval --model "$dir/c.ppnn" --data "$dir/colour" --predictions "$dir/cd.csv"
ok "$ppnn" eval --model "$dir/c.ppnn" --images "$dir/rgb" --predictions "$dir/ci.csv"
same=$(paste -d, <(tail -n +2 "$dir/ci.csv" | cut -d, -f1,3-) <(tail -n +2 "$dir/cd.csv") | awk -F, '
  { k = NF / 2; for (c = 2; c <= k; c++) { d = $c - $(k + c); if (d < 0) d = -d; if (d > m) m = d } }
  END { print (NR == 20 && m < 1e-5) ? "ok" : NR " " m }')
ok test "$same" = ok
acc=$("$ppnn" eval --model "$dir/c.ppnn" --data "$dir/colour" --json | sed 's/.*"accuracy": *\([0-9.]*\).*/\1/')
ok awk -v a="$acc" 'BEGIN { exit !(a >= 0.8) }'
ok "$ppnn" encrypt --keys "$dir/k" --images "$dir/rgb" --model "$dir/c.ppnn" --out "$dir/cb.ct"
ok "$ppnn" infer --model "$dir/c.ppnn" --keys "$dir/k" --in "$dir/cb.ct" --out "$dir/cr.ct"
ok "$ppnn" decrypt --keys "$dir/k" --in "$dir/cr.ct" --out "$dir/ce.csv" --names "$dir/cb.ct.names.json"
ok test "$(cut -d, -f1-3 "$dir/ce.csv")" = "$(cut -d, -f1-3 "$dir/ci.csv")"
refuse "image is 3x8x8 (CxHxW) but the model expects 1x28x28" "$dir/x.ct" "$ppnn" encrypt --keys "$dir/k" --images "$dir/rgb" --model "$dir/m.ppnn" --resize --out "$dir/x.ct"
echo "cli_images: $pass passed, $fail failed"
[[ $fail -eq 0 ]]

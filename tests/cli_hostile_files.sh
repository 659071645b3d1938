#!/usr/bin/env bash
# Hand-edited key and batch files with recomputed checksums (and key ids), as an attacker or a
# careless script would make them, fed to the CLI: each must be refused with a one-line error,
# a non-zero exit and no output file. (Library-level cases: tests/test_ckks_hostile.c.)
source "$(dirname "$0")/cli_common.bash"   # ppnn, dir, ok, refuse
# edit SRC DST WHAT: rewrites one field of a ppnn CKKS file and reseals it (payload length and
# BLAKE2b-256 checksum — for a batch, a chunked frame (docs/file-formats.md), the top hash over
# the header, metadata, lengths and digest table; for WHAT=zero-secret also the key id of the
# all-zero key).
edit() {
  python3 - "$1" "$2" "$3" <<'EOF'
import hashlib, struct, sys
src, dst, what = sys.argv[1:]
b = bytearray(open(src, "rb").read())
chunked = b[8:12] == b"CBAT"          # batches: the metadata starts after u64 count, u64 length
m = 56 + (16 if chunked else 0)
nq = struct.unpack_from("<I", b, m + 4)[0]
scale_at = m + 8 + 4 * nq + 4
kid_at = m + 8 + 4 * nq + 4 + 8 + 8 * nq + 8
body = kid_at + 16
if what == "zero-secret":            # every coefficient 0, key id recomputed for s = 0
    n = 1 << struct.unpack_from("<I", b, 56)[0]
    b[body:body + n // 4] = bytes(n // 4)
    h = hashlib.blake2b(digest_size=16)
    h.update(b"ppnn ckks key id v1\0"); h.update(bytes(b[16:48])); h.update(bytes(8 * n))
    b[kid_at:kid_at + 16] = h.digest()
elif what.startswith("block-scale="):
    struct.pack_into("<d", b, scale_at, float(what.split("=")[1]))
elif what.startswith("ct-scale="):  # first record head of a batch: after the 36-byte batch info
    struct.pack_into("<d", b, body + 36 + 8, float(what.split("=")[1]))
struct.pack_into("<Q", b, 48, len(b) - 88)
if chunked:                          # bodies untouched: their 16-byte digests stand; the top hash
    count, meta = struct.unpack_from("<QQ", b, 56)
    front = 72 + meta + 8 * count
    b[-32:] = hashlib.blake2b(bytes(b[:front]) + bytes(b[-32 - 16 * count:-32]),
                              digest_size=32).digest()
else:
    b[-32:] = hashlib.blake2b(bytes(b[:-32]), digest_size=32).digest()
open(dst, "wb").write(b)
EOF
}
ok "$ppnn" keygen --params n13 --out "$dir/k"
ok "$ppnn" encrypt --keys "$dir/k" --data mnist --split test --count 8 --out "$dir/b.ct"
mkdir -p "$dir/z" "$dir/s1"
cp "$dir/k/"*.key "$dir/z/"; cp "$dir/k/"*.key "$dir/s1/"
# an all-zero secret key would "encrypt" the images in the clear
edit "$dir/k/secret.key" "$dir/z/secret.key" zero-secret
refuse "degenerate secret key" "$dir/z.ct" "$ppnn" encrypt --keys "$dir/z" --data mnist --split test --count 8 --out "$dir/z.ct"
# a secret key whose parameter block says scale 1
edit "$dir/k/secret.key" "$dir/s1/secret.key" block-scale=1
refuse "scale" "$dir/s1.ct" "$ppnn" encrypt --keys "$dir/s1" --data mnist --split test --count 8 --out "$dir/s1.ct"
# ciphertext scales that are not the parameters' 2^28: NaN, infinities, negative, 2^27, 2^29
# (the server reads them: infer refuses them before computing anything)
ok "$ppnn" train --data mnist --count 256 --epochs 1 --out "$dir/m.ppnn"
for s in nan inf -inf -268435456 134217728 536870912; do
  edit "$dir/b.ct" "$dir/bad.ct" "ct-scale=$s"
  refuse "scale" "$dir/out.ct" "$ppnn" infer --model "$dir/m.ppnn" --keys "$dir/k" --in "$dir/bad.ct" --out "$dir/out.ct"
done
# the same file with its parameter block's scale changed: other parameters than the keys'
edit "$dir/b.ct" "$dir/bad.ct" block-scale=134217728
refuse "different CKKS parameters" "$dir/out.csv" "$ppnn" decrypt --keys "$dir/k" --in "$dir/bad.ct" --out "$dir/out.csv"
echo "cli_hostile_files: $pass passed, $fail failed"
[[ $fail -eq 0 ]]

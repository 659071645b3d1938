#!/usr/bin/env python3
"""Known answers of ppnn_chunk_digest (src/util/chunked.c; test_batch_digest pins them).

Independent of ppnn's C code: the Python xxhash binding (Debian python3-xxhash, run with
/usr/bin/python3), XXH3-128 with seed = the chunk index, canonical (big-endian) bytes. For
index 0 (seed 0) `xxhsum -H2` (Debian package xxhash) gives the same value; the script checks
that when xxhsum is on PATH. Inputs: body[i] = (37 i + 11) mod 256, of the lengths below (the
short, mid and > 240-byte long paths of XXH3), at indices 0, 5 and 2^40 + 3 (a seed above 32
bits). Prints the C table test_batch_digest.c holds."""
import shutil
import subprocess
import xxhash


def body(n):
    return bytes((37 * i + 11) % 256 for i in range(n))


CASES = [(0, 0), (0, 17), (0, 300), (5, 17), (5, 300), (2**40 + 3, 300), (5, 0)]

for index, n in CASES:
    d = xxhash.xxh3_128_digest(body(n), seed=index)
    if index == 0 and shutil.which("xxhsum"):
        out = subprocess.run(["xxhsum", "-H2", "-"], input=body(n), capture_output=True,
                             check=True).stdout.split()[0].decode()
        assert out == d.hex(), (n, out, d.hex())
    print('    {UINT64_C(%d), %d, "%s"},' % (index, n, d.hex()))

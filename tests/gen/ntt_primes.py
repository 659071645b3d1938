#!/usr/bin/env python3
"""Independent reference for tests/test_modq.c: the largest NTT-friendly primes.

For each (bits, 2N) prints the first `count` primes q with 2^(bits-1) < q < 2^bits and
q = 1 (mod 2N), largest first, using sympy's primality test (not ppnn's Miller-Rabin), and
the smallest generator g of (Z/qZ)^* with psi = g^((q-1)/2N) for the first prime.
Run: python3 tests/gen/ntt_primes.py
"""
from sympy import isprime, primitive_root

CASES = [(20, 1 << 5, 3), (30, 1 << 14, 3), (40, 1 << 14, 2), (49, 1 << 17, 2), (50, 1 << 14, 2),
         (60, 1 << 14, 3), (60, 1 << 17, 2)]

for bits, two_n, count in CASES:
    out = []
    c = (1 << bits) + 1 - two_n
    while len(out) < count:
        if isprime(c):
            out.append(c)
        c -= two_n
    g = primitive_root(out[0])  # smallest primitive root
    psi = pow(g, (out[0] - 1) // two_n, out[0])
    print(f"    {{{bits}, {two_n}u, {{{', '.join(f'{q}u' for q in out)}}}, {psi}u}},")

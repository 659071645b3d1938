#!/usr/bin/env bash
# keygen writes what some command reads (issue 13 item 13): secret.key and relin.key; public.key
# only with --public-key (for encryptors without the secret key: no ppnn command reads it).
. "$(dirname "$0")/clilib.sh"
ok "$ppnn" keygen --out k
ok test -f k/secret.key -a -f k/relin.key
ok test ! -e k/public.key
ok test "$(ls k | wc -l)" = 2
ok "$ppnn" keygen --out kp --public-key
ok test "$(head -c 12 kp/public.key | tail -c 4)" = PKEY
ok test "$(ls kp | wc -l)" = 3
finish cli_keygen

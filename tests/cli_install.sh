#!/usr/bin/env bash
# `cmake --install` into a temporary prefix, then build and run a program against the installed
# library twice: through pkg-config and through find_package(ppnn).
set -u
ppnn=$1; build=$(dirname "$ppnn"); pass=0; fail=0
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
check() { if "$@" >"$tmp/log" 2>&1; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL: $*" >&2; tail -20 "$tmp/log" >&2; fi; }
san=""
grep -q '^PPNN_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" && san="-fsanitize=address,undefined"
check cmake --install "$build" --prefix "$tmp/prefix"
cat > "$tmp/ext.c" <<'C'
#include <ppnn/ckks.h>
#include <stdio.h>
int main(void)
{
    ckks_spec s;
    ckks_params *p;
    if (ckks_preset(&s, "n13") || ckks_params_new(&p, &s))
        return 1;
    printf("%zu %zu\n", p->n, p->nq);
    ckks_params_free(p);
    return 0;
}
C
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
check bash -c "gcc -std=c17 $san '$tmp/ext.c' \$(pkg-config --cflags --libs --static ppnn) -o '$tmp/ext-pc'"
check bash -c "'$tmp/ext-pc' | grep -q '^8192 6$'"
mkdir -p "$tmp/cm"
cat > "$tmp/cm/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.25)
project(ext C)
find_package(ppnn REQUIRED)
add_executable(ext "$tmp/ext.c")
target_link_libraries(ext PRIVATE ppnn::ppnn)
CM
check cmake -S "$tmp/cm" -B "$tmp/cm/b" -DCMAKE_PREFIX_PATH="$tmp/prefix" -DCMAKE_C_FLAGS="$san"
check cmake --build "$tmp/cm/b"
check bash -c "'$tmp/cm/b/ext' | grep -q '^8192 6$'"
echo "cli_install: $pass passed, $fail failed"
[[ $fail -eq 0 ]]

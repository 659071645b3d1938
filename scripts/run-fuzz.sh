#!/usr/bin/env bash
# Runs every libFuzzer harness in BUILD for SECONDS each, starting from the seed corpus in fuzz/corpus/<name>.
set -euo pipefail
build=$1; seconds=$2
root=$(cd "$(dirname "$0")/.." && pwd)
shopt -s nullglob
n=0
for bin in "$build"/fuzz_*; do
  [[ -x $bin && -f $bin ]] || continue
  name=$(basename "$bin")
  corpus=$(mktemp -d)
  [[ -d $root/fuzz/corpus/$name ]] && cp -r "$root/fuzz/corpus/$name/." "$corpus/"
  echo "fuzz: $name for ${seconds}s"
  "$bin" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 "$corpus" 2>"$build/$name.log" || {
    echo "fuzz: $name FAILED; tail of log:"; tail -40 "$build/$name.log"; exit 1; }
  rm -rf "$corpus"
  n=$((n+1))
done
echo "fuzz: $n harness(es) ran clean"

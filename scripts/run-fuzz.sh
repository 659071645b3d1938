#!/usr/bin/env bash
# Runs every libFuzzer harness in BUILD (fuzz/README.md):
#   1. the coverage-floor run: RUNS executions from the committed seed corpus with -seed=1
#      (fuzz/coverage_floors.txt); fails if libFuzzer's final "cov:" is below the floor, if the
#      harness crashes, or if a harness has no floor line;
#   2. then, when SECONDS > 0, SECONDS more of ordinary fuzzing (fails on any crash).
# Usage: run-fuzz.sh BUILD SECONDS [HARNESS...]   (all harnesses when none are named)
set -euo pipefail
build=$1; seconds=$2; shift 2
root=$(cd "$(dirname "$0")/.." && pwd)
floors=$root/fuzz/coverage_floors.txt
scratch_root=/tmp
[[ -d /dev/shm && -w /dev/shm ]] && scratch_root=/dev/shm # corpus writes are not the bottleneck
export OMP_NUM_THREADS=1 TMPDIR=$scratch_root
shopt -s nullglob
if (($#)); then bins=(); for h in "$@"; do bins+=("$build/$h"); done; else bins=("$build"/fuzz_*); fi
n=0
for bin in "${bins[@]}"; do
  [[ -x $bin && -f $bin ]] || { [[ $bin == *.log ]] && continue; echo "fuzz: $bin is not a harness"; exit 1; }
  name=$(basename "$bin")
  read -r _ runs floor max_len < <(awk -v h="$name" '$1 == h { print; exit }' "$floors") || true
  if [[ -z ${floor:-} ]]; then
    echo "fuzz: $name has no line in fuzz/coverage_floors.txt (add: $name RUNS FLOOR MAX_LEN)"; exit 1
  fi
  corpus=$(mktemp -d -p "$scratch_root" ppnn-corpus.XXXXXX)
  [[ -d $root/fuzz/corpus/$name ]] && cp -r "$root/fuzz/corpus/$name/." "$corpus/"
  log=$build/$name.log
  opts=(-max_len="$max_len" -rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=25)
  if ! "$bin" -runs="$runs" -seed=1 "${opts[@]}" "$corpus" 2>"$log"; then
    echo "fuzz: $name FAILED during the floor run; tail of $log:"; tail -40 "$log"; rm -rf "$corpus"; exit 1
  fi
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | awk '{ print $2 }')
  echo "fuzz: $name cov $cov after $runs runs (floor $floor)"
  if [[ -z $cov ]] || ((cov < floor)); then
    echo "fuzz: $name coverage ${cov:-?} is below its floor $floor: the harness no longer reaches the parser"
    rm -rf "$corpus"; exit 1
  fi
  if ((seconds > 0)); then
    if ! "$bin" -max_total_time="$seconds" "${opts[@]}" "$corpus" 2>"$log"; then
      echo "fuzz: $name FAILED; tail of $log:"; tail -40 "$log"; rm -rf "$corpus"; exit 1
    fi
  fi
  rm -rf "$corpus"
  unset floor
  n=$((n+1))
done
echo "fuzz: $n harness(es) ran clean, every one at or above its coverage floor"

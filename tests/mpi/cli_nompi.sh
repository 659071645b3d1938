#!/usr/bin/env bash
# A build without MPI (PPNN_MPI=OFF) started by an MPI launcher refuses in one line instead of
# running R copies of the single-process job that would all write the same result.
set -u
ppnn=$1; dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
err=$(OMPI_COMM_WORLD_SIZE=2 OMPI_COMM_WORLD_RANK=0 "$ppnn" infer --model "$dir/m" --keys "$dir" \
      --in "$dir/b.ct" --out "$dir/r.ct" 2>&1 >/dev/null); rc=$?
if [[ $rc -ne 0 && $err == *"built without MPI"* && $(printf '%s\n' "$err" | grep -c .) -eq 1 &&
      ! -e $dir/r.ct ]]; then echo "cli_nompi: 1 passed, 0 failed"; exit 0; fi
echo "FAIL: expected the without-MPI refusal (rc=$rc: $err)" >&2; exit 1

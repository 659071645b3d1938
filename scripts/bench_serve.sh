#!/usr/bin/env bash
# Service benchmark (not a test): back-to-back batches through `ppnn serve` vs `ppnn infer` on the
# same batches and keys, in two client patterns:
#   sequential  upload batch i, wait for it (long poll), download; then batch i+1;
#   pipelined   upload batch i+1 while batch i runs (what a real client with several batches
#               does), then wait for i and download it.
# Each run times `ppnn infer` on every batch, then both patterns; RUNS runs, medians reported
# (and every run's figures). Wall and CPU seconds (the server process's user + system; a
# shared machine moves wall times far more than CPU times). Every service result must be
# byte-identical to `ppnn infer`'s. Also: upload seconds per batch, queueing + download
# overhead per batch, server RSS idle and after an upload. Prints one JSON object.
# Usage: scripts/bench_serve.sh PPNN [BATCHES] [RUNS] [MODEL.ppnn]
# (default: 4 batches of 16 MNIST images, 3 runs, a freshly trained 1-epoch CryptoNets model).
set -euo pipefail
ppnn=$1; n=${2:-4}; runs=${3:-3}; model=${4:-}
dir=$(mktemp -d); spid=
trap '[[ -n $spid ]] && kill "$spid" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
mkdir -p "$dir/models"
if [[ -z $model ]]; then
  "$ppnn" train --data mnist --count 500 --epochs 1 --out "$dir/models/m.ppnn" >/dev/null 2>&1
else cp "$model" "$dir/models/m.ppnn"; fi
"$ppnn" keygen --params n13 --out "$dir/k" >/dev/null 2>&1
for ((i = 0; i < n; i++)); do
  "$ppnn" encrypt --keys "$dir/k" --data mnist --split test --offset $((i * 16)) --count 16 --out "$dir/b$i.ct" >/dev/null 2>&1
done
now() { date +%s.%N; }
add() { echo "$1 + $2" | bc; }
# (printed as %.3f: bc writes ".5", which JSON does not allow)
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {printf "%.3f", a[int((NR + 1) / 2)]}'; }
printf 'cn = "localhost"\nip_address = "127.0.0.1"\nexpiration_days = 1\ntls_www_server\nsigning_key\nencryption_key\n' > "$dir/c.cfg"
certtool --generate-privkey --key-type ecdsa --outfile "$dir/key.pem" 2>/dev/null
certtool --generate-self-signed --load-privkey "$dir/key.pem" --template "$dir/c.cfg" --outfile "$dir/cert.pem" 2>/dev/null
tok=$("$ppnn" serve token add bench --state "$dir/s" 2>/dev/null)
"$ppnn" serve --models "$dir/models" --state "$dir/s" --listen 127.0.0.1:0 --tls-cert "$dir/cert.pem" \
  --tls-key "$dir/key.pem" --workers 1 --max-queue 64 2>"$dir/log" & spid=$!
for ((t = 0; t < 100; t++)); do url=$(grep -o 'https://127.0.0.1:[0-9]*' "$dir/log" | head -1 || true); [[ -n $url ]] && break; sleep 0.1; done
rss_idle=$(awk '/VmRSS/ {print $2}' /proc/$spid/status)
srv_cpu() { awk '{print ($14 + $15) / 100}' /proc/$spid/stat; }
C() { curl -s --cacert "$dir/cert.pem" -H "Authorization: Bearer $tok" "$@"; }
kid=$(C --data-binary @"$dir/k/relin.key" "$url/v1/keys" | sed 's/.*"key_id":"\([0-9a-f]*\)".*/\1/')
up_s=0
upload() { # upload I: job id in id[I]; adds the upload's wall time to up_s
  local u0; u0=$(now)
  id[$1]=$(C -T "$dir/b$1.ct" -X POST "$url/v1/jobs?model=m&key=$kid" | sed 's/.*"job_id":"\([0-9a-f]*\)".*/\1/')
  up_s=$(add "$up_s" "$(echo "$(now) - $u0" | bc)")
}
fetch() { # fetch I: long-polls job I until done, downloads and compares its result
  local s
  for ((t = 0; t < 100; t++)); do
    s=$(C "$url/v1/jobs/${id[$1]}?wait=30"); [[ $s == *'"state":"done"'* ]] && break
    [[ $s == *'"state":"failed"'* ]] && { echo "bench_serve: job $1 failed: $s" >&2; exit 1; }
  done
  C -o "$dir/s$1.ct" "$url/v1/jobs/${id[$1]}/result"
  cmp -s "$dir/s$1.ct" "$dir/r$1.ct" || { echo "bench_serve: result $1 differs from ppnn infer" >&2; exit 1; }
}
declare -a I_W I_C S_W S_C P_W P_C S_UP P_UP S_OV
for ((r = 0; r < runs; r++)); do
  cpu=0; t0=$(now)
  for ((i = 0; i < n; i++)); do
    /usr/bin/time -f "%U %S" -o "$dir/time" "$ppnn" infer --model "$dir/models/m.ppnn" --keys "$dir/k" \
      --in "$dir/b$i.ct" --out "$dir/r$i.ct" --quiet >/dev/null
    cpu=$(add "$cpu" "$(awk '{print $1 + $2}' "$dir/time")")
  done
  I_W[$r]=$(echo "$(now) - $t0" | bc); I_C[$r]=$cpu
  # sequential
  c0=$(srv_cpu); t0=$(now); up_s=0
  for ((i = 0; i < n; i++)); do upload $i; [[ $r = 0 && $i = 0 ]] && rss_upload=$(awk '/VmHWM/ {print $2}' /proc/$spid/status); fetch $i; done
  S_W[$r]=$(echo "$(now) - $t0" | bc); S_C[$r]=$(echo "$(srv_cpu) - $c0" | bc); S_UP[$r]=$(echo "scale=3; $up_s / $n" | bc)
  # what the sequential client waits beyond the uploads and `ppnn infer`'s own time, per batch
  S_OV[$r]=$(echo "scale=3; (${S_W[$r]} - $up_s - ${I_W[$r]}) / $n" | bc)
  # pipelined: batch i+1 uploads while batch i runs
  c0=$(srv_cpu); t0=$(now); up_s=0
  upload 0
  for ((i = 0; i < n; i++)); do ((i + 1 < n)) && upload $((i + 1)); fetch $i; done
  P_W[$r]=$(echo "$(now) - $t0" | bc); P_C[$r]=$(echo "$(srv_cpu) - $c0" | bc); P_UP[$r]=$(echo "scale=3; $up_s / $n" | bc)
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a / b}'; }
declare -a RS RP CS CP
for ((r = 0; r < runs; r++)); do
  RS[$r]=$(ratio "${I_W[$r]}" "${S_W[$r]}"); RP[$r]=$(ratio "${I_W[$r]}" "${P_W[$r]}")
  CS[$r]=$(ratio "${I_C[$r]}" "${S_C[$r]}"); CP[$r]=$(ratio "${I_C[$r]}" "${P_C[$r]}")
done
list() { local IFS=, v=(); for x in "$@"; do v+=("$(awk -v x="$x" 'BEGIN {printf "%.3f", x}')"); done; echo "[${v[*]}]"; }
cat <<J
{"batches": $n, "runs": $runs, "batch_bytes": $(stat -c %s "$dir/b0.ct"),
 "infer_seconds": $(median "${I_W[@]}"), "infer_cpu_seconds": $(median "${I_C[@]}"),
 "sequential_seconds": $(median "${S_W[@]}"), "sequential_server_cpu_seconds": $(median "${S_C[@]}"),
 "pipelined_seconds": $(median "${P_W[@]}"), "pipelined_server_cpu_seconds": $(median "${P_C[@]}"),
 "throughput_ratio_sequential": $(median "${RS[@]}"), "throughput_ratio_pipelined": $(median "${RP[@]}"),
 "cpu_ratio_sequential": $(median "${CS[@]}"), "cpu_ratio_pipelined": $(median "${CP[@]}"),
 "upload_seconds_per_batch_sequential": $(median "${S_UP[@]}"),
 "upload_seconds_per_batch_pipelined": $(median "${P_UP[@]}"),
 "queue_and_download_seconds_per_batch_sequential": $(median "${S_OV[@]}"),
 "rss_idle_kb": $rss_idle, "rss_peak_after_first_upload_kb": $rss_upload,
 "per_run": {"infer_seconds": $(list "${I_W[@]}"), "sequential_seconds": $(list "${S_W[@]}"),
   "pipelined_seconds": $(list "${P_W[@]}"), "throughput_ratio_pipelined": $(list "${RP[@]}"),
   "cpu_ratio_pipelined": $(list "${CP[@]}")}}
J

#!/usr/bin/env bash
# Service benchmark (not a test): back-to-back batches through `ppnn serve` vs `ppnn infer` on the
# same batches and keys; upload + queueing overhead per batch; server RSS idle and during an
# upload. Prints one JSON object. Usage: scripts/bench_serve.sh PPNN [BATCHES] [MODEL.ppnn]
# (default: 4 batches of 16 MNIST images through a freshly trained 1-epoch CryptoNets model).
set -euo pipefail
ppnn=$1; n=${2:-4}; model=${3:-}
dir=$(mktemp -d); spid=
trap '[[ -n $spid ]] && kill "$spid" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
mkdir -p "$dir/models"
if [[ -z $model ]]; then
  "$ppnn" train --data mnist --count 500 --epochs 1 --out "$dir/models/m.ppnn" >/dev/null 2>&1
else cp "$model" "$dir/models/m.ppnn"; fi
"$ppnn" keygen --params n13 --out "$dir/k" >/dev/null
for ((i = 0; i < n; i++)); do
  "$ppnn" encrypt --keys "$dir/k" --data mnist --split test --offset $((i * 16)) --count 16 --out "$dir/b$i.ct" >/dev/null 2>&1
done
now() { date +%s.%N; }
# CPU seconds (user + system) as well as wall time: on a shared machine the wall figures drift
# with the load; CPU time of the same work much less.
cpu_infer=0; t0=$(now)
for ((i = 0; i < n; i++)); do
  /usr/bin/time -f "%U %S" -o "$dir/time" "$ppnn" infer --model "$dir/models/m.ppnn" --keys "$dir/k" --in "$dir/b$i.ct" --out "$dir/r$i.ct" --quiet >/dev/null
  cpu_infer=$(echo "$cpu_infer + $(awk '{print $1 + $2}' "$dir/time")" | bc)
done
t_infer=$(echo "$(now) - $t0" | bc)
srv_cpu() { awk '{print ($14 + $15) / 100}' /proc/$spid/stat; }
printf 'cn = "localhost"\nip_address = "127.0.0.1"\nexpiration_days = 1\ntls_www_server\nsigning_key\nencryption_key\n' > "$dir/c.cfg"
certtool --generate-privkey --key-type ecdsa --outfile "$dir/key.pem" 2>/dev/null
certtool --generate-self-signed --load-privkey "$dir/key.pem" --template "$dir/c.cfg" --outfile "$dir/cert.pem" 2>/dev/null
tok=$("$ppnn" serve token add bench --state "$dir/s" 2>/dev/null)
"$ppnn" serve --models "$dir/models" --state "$dir/s" --listen 127.0.0.1:0 --tls-cert "$dir/cert.pem" \
  --tls-key "$dir/key.pem" --workers 1 --max-queue 64 2>"$dir/log" & spid=$!
for ((t = 0; t < 100; t++)); do url=$(grep -o 'https://127.0.0.1:[0-9]*' "$dir/log" | head -1 || true); [[ -n $url ]] && break; sleep 0.1; done
rss_idle=$(awk '/VmRSS/ {print $2}' /proc/$spid/status)
auth=(-H "Authorization: Bearer $tok")
kid=$(curl -s --cacert "$dir/cert.pem" "${auth[@]}" --data-binary @"$dir/k/relin.key" "$url/v1/keys" | sed 's/.*"key_id":"\([0-9a-f]*\)".*/\1/')
# back-to-back: all batches submitted at once, the queue keeps the worker busy
c0=$(srv_cpu); t0=$(now); up=0
for ((i = 0; i < n; i++)); do
  u0=$(now)
  id[$i]=$(curl -s --cacert "$dir/cert.pem" "${auth[@]}" -T "$dir/b$i.ct" -X POST "$url/v1/jobs?model=m&key=$kid" | sed 's/.*"job_id":"\([0-9a-f]*\)".*/\1/')
  up=$(echo "$up + $(now) - $u0" | bc)
  [[ $i = 0 ]] && rss_upload=$(awk '/VmHWM/ {print $2}' /proc/$spid/status)
done
for ((i = 0; i < n; i++)); do
  until curl -s --cacert "$dir/cert.pem" "${auth[@]}" "$url/v1/jobs/${id[$i]}" | grep -q '"state":"done"'; do sleep 0.5; done
  curl -s --cacert "$dir/cert.pem" "${auth[@]}" -o "$dir/s$i.ct" "$url/v1/jobs/${id[$i]}/result"
  cmp -s "$dir/s$i.ct" "$dir/r$i.ct" || { echo "bench_serve: result $i differs from ppnn infer" >&2; exit 1; }
done
t_serve=$(echo "$(now) - $t0" | bc); cpu_serve=$(echo "$(srv_cpu) - $c0" | bc)
bytes=$(stat -c %s "$dir/b0.ct")
cat <<J
{"batches": $n, "batch_bytes": $bytes, "infer_seconds": $t_infer, "serve_seconds": $t_serve,
 "throughput_ratio": $(echo "scale=3; $t_infer / $t_serve" | bc),
 "infer_cpu_seconds": $cpu_infer, "serve_cpu_seconds": $cpu_serve,
 "cpu_ratio": $(echo "scale=3; $cpu_infer / $cpu_serve" | bc),
 "upload_seconds_per_batch": $(echo "scale=3; $up / $n" | bc),
 "rss_idle_kb": $rss_idle, "rss_peak_after_first_upload_kb": $rss_upload}
J

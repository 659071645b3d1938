#!/usr/bin/env bash
# Service benchmark (not a test): back-to-back batches through `ppnn serve` vs `ppnn infer` on the
# same batches and keys, in two client patterns:
#   sequential  upload batch i, wait for it (long poll), download; then batch i+1;
#   pipelined   upload batch i+1 while batch i runs (what a real client with several batches
#               does), then wait for i and download it.
# Each run times `ppnn infer` on every batch, then both patterns; RUNS runs, medians reported
# (and every run's figures). Wall and CPU seconds (the server process's user + system; a
# shared machine moves wall times far more than CPU times). Every service result must be
# byte-identical to `ppnn infer`'s. Besides the whole-run figures:
#   steady state     the interval between consecutive job completions after the first (the
#                    server's finished_at times), per batch, against `ppnn infer`'s per batch:
#                    the throughput once the pipeline is full, without the first upload;
#   upload           the client's wall time of each upload request (until 202);
#   queue            accepted_at -> started_at of each job (waiting behind the previous one);
#   worker idle      how long the worker waited for work between jobs: started_at of job i
#                    minus the later of its accepted_at and job i-1's finished_at;
#   RSS              of the idle server, after the first upload, after the runs, and once the
#                    workers have given their memory back (idle for more than 5 s).
# Prints one JSON object (made by python3's json module).
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
jfield() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
printf 'cn = "localhost"\nip_address = "127.0.0.1"\nexpiration_days = 1\ntls_www_server\nsigning_key\nencryption_key\n' > "$dir/c.cfg"
certtool --generate-privkey --key-type ecdsa --outfile "$dir/key.pem" 2>/dev/null
certtool --generate-self-signed --load-privkey "$dir/key.pem" --template "$dir/c.cfg" --outfile "$dir/cert.pem" 2>/dev/null
tok=$("$ppnn" serve token add bench --state "$dir/s" 2>/dev/null)
"$ppnn" serve --models "$dir/models" --state "$dir/s" --listen 127.0.0.1:0 --tls-cert "$dir/cert.pem" \
  --tls-key "$dir/key.pem" --workers 1 --max-queue 64 2>"$dir/log" & spid=$!
for ((t = 0; t < 100; t++)); do url=$(grep -o 'https://127.0.0.1:[0-9]*' "$dir/log" | head -1 || true); [[ -n $url ]] && break; sleep 0.1; done
rss() { awk -v k="$1:" '$1 == k {print $2}' /proc/$spid/status; }
rss_idle=$(rss VmRSS)
srv_cpu() { awk '{print ($14 + $15) / 100}' /proc/$spid/stat; }
C() { curl -s --cacert "$dir/cert.pem" -H "Authorization: Bearer $tok" "$@"; }
kid=$(C --data-binary @"$dir/k/relin.key" "$url/v1/keys" | jfield key_id)
raw=$dir/raw # one "run pattern key value" line per measurement, summarised below
upload() { # upload RUN PATTERN I: job id in id[I]
  local u0 u1 body; u0=$(now)
  body=$(C -T "$dir/b$3.ct" -X POST "$url/v1/jobs?model=m&key=$kid"); u1=$(now)
  id[$3]=$(sed -n 's/.*"job_id":"\([0-9a-f]*\)".*/\1/p' <<<"$body")
  [[ -n ${id[$3]} ]] || { echo "bench_serve: upload $3 refused: $body" >&2; exit 1; }
  echo "$1 $2 upload $u0 $u1" >>"$raw"
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
job_times() { # job_times RUN PATTERN: every job's status document (accepted/started/finished), in order
  for ((i = 0; i < n; i++)); do echo "$1 $2 status $(C "$url/v1/jobs/${id[$i]}")" >>"$raw"; done
}
for ((r = 0; r < runs; r++)); do
  cpu=0; t0=$(now)
  for ((i = 0; i < n; i++)); do
    /usr/bin/time -f "%U %S" -o "$dir/time" "$ppnn" infer --model "$dir/models/m.ppnn" --keys "$dir/k" \
      --in "$dir/b$i.ct" --out "$dir/r$i.ct" --quiet >/dev/null
    cpu=$(awk -v c="$cpu" '{print c + $1 + $2}' "$dir/time")
  done
  echo "$r infer wall $t0 $(now)" >>"$raw"; echo "$r infer cpu $cpu" >>"$raw"
  # sequential
  c0=$(srv_cpu); t0=$(now)
  for ((i = 0; i < n; i++)); do
    upload $r sequential $i; [[ $r = 0 && $i = 0 ]] && rss_upload=$(rss VmHWM); fetch $i
  done
  echo "$r sequential wall $t0 $(now)" >>"$raw"; echo "$r sequential cpu $c0 $(srv_cpu)" >>"$raw"
  job_times $r sequential
  # pipelined: batch i+1 uploads while batch i runs
  c0=$(srv_cpu); t0=$(now)
  upload $r pipelined 0
  for ((i = 0; i < n; i++)); do ((i + 1 < n)) && upload $r pipelined $((i + 1)); fetch $i; done
  echo "$r pipelined wall $t0 $(now)" >>"$raw"; echo "$r pipelined cpu $c0 $(srv_cpu)" >>"$raw"
  job_times $r pipelined
done
rss_jobs=$(rss VmRSS)
sleep 7 # past the workers' idle time (TRIM_AFTER_IDLE, src/serve/worker.c)
rss_trimmed=$(rss VmRSS)
python3 - "$raw" "$n" "$runs" "$(stat -c %s "$dir/b0.ct")" "$rss_idle" "$rss_upload" "$rss_jobs" \
  "$rss_trimmed" <<'PY'
import json, statistics, sys
raw, n, runs, batch_bytes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rss = [int(x) for x in sys.argv[5:9]]
d = {}  # (run, pattern) -> {"wall": s, "cpu": s, "upload": [s], "status": [doc]}
for line in open(raw):
    r, pat, key, rest = line.rstrip("\n").split(" ", 3)
    e = d.setdefault((int(r), pat), {"upload": [], "status": []})
    v = rest.split()
    if key == "wall": e["wall"] = float(v[1]) - float(v[0])
    elif key == "cpu": e["cpu"] = float(v[0]) if len(v) == 1 else float(v[1]) - float(v[0])
    elif key == "upload": e["upload"].append(float(v[1]) - float(v[0]))
    else: e["status"].append(json.loads(rest))
def med(xs): return round(statistics.median(xs), 3)
out = {"batches": n, "runs": runs, "batch_bytes": batch_bytes}
per_run = {}
infer = [d[(r, "infer")] for r in range(runs)]
out["infer_seconds"] = med([e["wall"] for e in infer])
out["infer_cpu_seconds"] = med([e["cpu"] for e in infer])
out["infer_seconds_per_batch"] = med([e["wall"] / n for e in infer])
per_run["infer_seconds"] = [round(e["wall"], 3) for e in infer]
for pat in ("sequential", "pipelined"):
    es = [d[(r, pat)] for r in range(runs)]
    ratio, cpu_ratio, steady, steady_ratio, queue, idle = [], [], [], [], [], []
    for i, e in zip(infer, es):
        ratio.append(i["wall"] / e["wall"]); cpu_ratio.append(i["cpu"] / e["cpu"])
        acc = [s["accepted_at"] for s in e["status"]]
        sta = [s["started_at"] for s in e["status"]]
        fin = [s["finished_at"] for s in e["status"]]
        if n > 1:
            steady.append((fin[-1] - fin[0]) / (n - 1))
            steady_ratio.append(i["wall"] / n / steady[-1])
            idle.append(statistics.mean(max(0.0, sta[k] - max(acc[k], fin[k - 1]))
                                        for k in range(1, n)))
        queue.append(statistics.mean(b - a for a, b in zip(acc, sta)))
    out[pat + "_seconds"] = med([e["wall"] for e in es])
    out[pat + "_server_cpu_seconds"] = med([e["cpu"] for e in es])
    out["throughput_ratio_" + pat] = med(ratio)
    out["cpu_ratio_" + pat] = med(cpu_ratio)
    if n > 1:
        out["steady_state_seconds_per_batch_" + pat] = med(steady)
        out["steady_state_ratio_" + pat] = med(steady_ratio)
        out["worker_idle_seconds_per_batch_" + pat] = med(idle)
    out["upload_seconds_per_batch_" + pat] = med([statistics.mean(e["upload"]) for e in es])
    out["first_upload_seconds_" + pat] = med([e["upload"][0] for e in es])
    out["queue_seconds_per_batch_" + pat] = med(queue)
    per_run[pat + "_seconds"] = [round(e["wall"], 3) for e in es]
    per_run["throughput_ratio_" + pat] = [round(x, 3) for x in ratio]
    per_run["cpu_ratio_" + pat] = [round(x, 3) for x in cpu_ratio]
    if n > 1:
        per_run["steady_state_ratio_" + pat] = [round(x, 3) for x in steady_ratio]
out.update({"rss_idle_kb": rss[0], "rss_peak_after_first_upload_kb": rss[1],
            "rss_after_runs_kb": rss[2], "rss_idle_after_trim_kb": rss[3], "per_run": per_run})
print(json.dumps(out, indent=1))
PY

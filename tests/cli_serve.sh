#!/usr/bin/env bash
# ppnn serve / ppnn submit on loopback (issue 12): the full flow over HTTPS with a self-signed
# certificate made here; 8 concurrent clients (results identical to `ppnn infer`'s, isolated);
# 401 / 404 / secret key / truncated / corrupted / 413 / 429 refusals; kill -9 during an upload,
# with a job queued, during a job and after completion, then restart: every accepted job
# completes exactly once with the right result; the server's RSS stays flat during a large
# upload. Every wait is bounded; every server started here is killed on exit.
set -u
ppnn=$1; pass=0; fail=0
dir=$(mktemp -d); spid=
cleanup() { [[ -n $spid ]] && kill -9 "$spid" 2>/dev/null; wait 2>/dev/null; [[ -n ${PPNN_KEEP_TEST_DIR:-} ]] || rm -rf "$dir"; }
trap cleanup EXIT
source "$(dirname "$0")/lib_cli.sh" # ok, refuse, flip_byte
check() { local what=$1; shift; if "$@"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL: $what" >&2; fi; }
# Sanitizer runs (PPNN_TEST_REDUCED): 2 concurrent clients instead of 8, a small "large" batch,
# no RSS bound (ASan's allocator has its own footprint), no demo, longer time limits.
reduced=${PPNN_TEST_REDUCED:-}
if [[ -n $reduced ]]; then nc=2; nk=5; limit=900; else nc=8; nk=8; limit=120; fi
B() { timeout $limit "$ppnn" "$@"; }

# ---- fixtures: an 8x8 data set (64 inputs -> 11.7 MB batches at n13), models, keys, batches
mkdir -p "$dir/tiny" "$dir/models"
labels() { for ((i = 0; i < $1; i++)); do printf "\\$(printf %03o $((i * 7 % 10)))"; done; }
for pre in train:512 t10k:64; do
  name=${pre%:*}; n=${pre#*:}
  { printf '\x00\x00\x08\x03'; printf "\\x00\\x00\\x$(printf %02x $((n / 256)))\\x$(printf %02x $((n % 256)))"
    printf '\x00\x00\x00\x08\x00\x00\x00\x08'; head -c $((n * 64)) /dev/urandom; } > "$dir/tiny/$name-images-idx3-ubyte"
  { printf '\x00\x00\x08\x01'; printf "\\x00\\x00\\x$(printf %02x $((n / 256)))\\x$(printf %02x $((n % 256)))"; labels "$n"; } > "$dir/tiny/$name-labels-idx1-ubyte"
done
ok B train --data "$dir/tiny" --epochs 1 --seed 2 --out "$dir/models/tiny.ppnn"
[[ -n $reduced ]] || ok B train --data mnist --count 500 --epochs 1 --seed 2 --out "$dir/models/mnist.ppnn"
for ((i = 1; i <= nk; i++)); do
  ok B keygen --params n13 --out "$dir/k$i" $( ((i == 1)) && echo --public-key)
  ok B encrypt --keys "$dir/k$i" --data "$dir/tiny" --split test --offset $((i * 4)) --count 4 --out "$dir/b$i.ct"
  ok B infer --model "$dir/models/tiny.ppnn" --keys "$dir/k$i" --in "$dir/b$i.ct" --out "$dir/ref$i.ct" --quiet
done
# The large batch: 28x28 (143 MB); reduced runs reuse client 1's small batch.
if [[ -z $reduced ]]; then
  bigmodel=mnist
  ok B encrypt --keys "$dir/k1" --data mnist --split test --count 16 --out "$dir/big.ct"
  ok B infer --model "$dir/models/mnist.ppnn" --keys "$dir/k1" --in "$dir/big.ct" --out "$dir/refbig.ct" --quiet
else
  bigmodel=tiny; cp "$dir/b1.ct" "$dir/big.ct"; cp "$dir/ref1.ct" "$dir/refbig.ct"
fi
cat > "$dir/cert.cfg" <<'T'
cn = "localhost"
dns_name = "localhost"
ip_address = "127.0.0.1"
expiration_days = 2
tls_www_server
signing_key
encryption_key
T
ok certtool --generate-privkey --key-type ecdsa --outfile "$dir/key.pem"
ok certtool --generate-self-signed --load-privkey "$dir/key.pem" --template "$dir/cert.cfg" --outfile "$dir/cert.pem"
state=$dir/state
for ((i = 1; i <= nk; i++)); do tok[$i]=$(B serve token add "client$i" --state "$state" 2>/dev/null); done
check "tokens are distinct and well formed" test "$(printf '%s\n' "${tok[@]}" | sort -u | grep -c '^ppnn_[A-Za-z0-9_-]\{43\}$' | tr -d ' ')" = $nk
check "a token is not stored in clear" bash -c "! grep -a -q '${tok[1]#ppnn_}' '$state/jobs.sqlite'"
check "client names are unique" bash -c "! '$ppnn' serve token add client1 --state '$state' 2>/dev/null"

port=0
start() { # start [serve options...]: a server on a free loopback port (the same one on restarts)
  # The previous instance's log goes first: the background child truncates it only once it
  # runs, and its old "listening" line would otherwise let start return before the new server
  # listens (requests then fail and counts read 0: seen in CI).
  rm -f "$dir/serve.log"
  "$ppnn" serve --models "$dir/models" --state "$state" --listen 127.0.0.1:$port \
    --tls-cert "$dir/cert.pem" --tls-key "$dir/key.pem" "$@" 2>"$dir/serve.log" &
  spid=$!
  for ((t = 0; t < 100; t++)); do
    url=$(grep -o 'https://127.0.0.1:[0-9]*' "$dir/serve.log" 2>/dev/null | head -1)
    [[ -n $url ]] && { port=${url##*:}; return 0; }; sleep 0.1
  done
  echo "server did not start:" >&2; cat "$dir/serve.log" >&2; return 1
}
crash() { kill -9 "$spid"; wait "$spid" 2>/dev/null; spid=; }
api() { # api TOKEN METHOD PATH [curl args...]: prints the HTTP status, body to $dir/body
  local t=$1 m=$2 p=$3; shift 3
  curl -s --max-time $limit --cacert "$dir/cert.pem" -H "Authorization: Bearer $t" -X "$m" \
    -o "$dir/body" -w '%{http_code}' "$@" "$url$p"
}
submit() { B submit --server "$url" --cacert "$dir/cert.pem" --poll 0.1 --retries 20 "$@"; }
key_id() { api "$1" POST /v1/keys --data-binary @"$2/relin.key" >/dev/null; sed 's/.*"key_id":"\([0-9a-f]*\)".*/\1/' "$dir/body"; }
njobs() { api "$1" GET /v1/jobs >/dev/null; grep -o '"job_id"' "$dir/body" | wc -l | tr -d ' '; }

echo "fixtures ready after ${SECONDS}s"
# ---- full flow over HTTPS; TLS verification on by default
start --workers 1
ok submit --token "${tok[1]}" --keys "$dir/k1" --model tiny --in "$dir/b1.ct" --out "$dir/r1.ct"
ok cmp "$dir/r1.ct" "$dir/ref1.ct"
ok B decrypt --keys "$dir/k1" --in "$dir/r1.ct" --out "$dir/p1.csv"
err=$(B submit --server "$url" --token "${tok[1]}" --keys "$dir/k1" --model tiny --in "$dir/b1.ct" --out "$dir/x.ct" --retries 2 2>&1)
check "untrusted certificate refused ($err)" test $? -ne 0 -a ! -e "$dir/x.ct"
api "${tok[1]}" GET /v1/models >/dev/null
check "models listed" grep -q '"name":"tiny","input_shape":\[1,8,8\].*"preset":"n13"' "$dir/body"
api "${tok[1]}" GET /v1/jobs >/dev/null; jobf=$(cut -d'"' -f6 "$dir/body")
api "${tok[1]}" GET /v1/jobs/$jobf >/dev/null
check "a done job's status says when it was accepted, started and finished" python3 -c \
  'import json, sys; d = json.load(open(sys.argv[1])); sys.exit(not 0 < d["accepted_at"] <= d["started_at"] <= d["finished_at"])' "$dir/body"

echo "full flow done after ${SECONDS}s"
# ---- 8 concurrent clients, small batches: results identical to infer's and isolated
for ((i = 1; i <= nc; i++)); do
  submit --token "${tok[$i]}" --keys "$dir/k$i" --model tiny --in "$dir/b$i.ct" --out "$dir/c$i.ct" --quiet >"$dir/c$i.log" 2>&1 &
  cpid[$i]=$!
done
for ((i = 1; i <= nc; i++)); do
  check "concurrent client $i finished" wait "${cpid[$i]}"
  ok cmp "$dir/c$i.ct" "$dir/ref$i.ct"
done
check "client 1 sees its 2 jobs" test "$(njobs "${tok[1]}")" = 2
check "client 2 sees its 1 job" test "$(njobs "${tok[2]}")" = 1

echo "concurrent clients done after ${SECONDS}s"
# ---- authorisation and refusals
job1=$(api "${tok[1]}" GET /v1/jobs >/dev/null; grep -o '"job_id":"[0-9a-f]*"' "$dir/body" | head -1 | cut -d'"' -f4)
check "wrong token 401" test "$(api ppnn_wrongtoken GET /v1/jobs/$job1)" = 401
check "no token 401" test "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$dir/cert.pem" "$url/v1/models")" = 401
check "own job 200" test "$(api "${tok[1]}" GET /v1/jobs/$job1)" = 200
check "other client's job 404" test "$(api "${tok[2]}" GET /v1/jobs/$job1)" = 404
check "other client's result 404" test "$(api "${tok[2]}" GET /v1/jobs/$job1/result)" = 404
check "other client's delete 404" test "$(api "${tok[2]}" DELETE /v1/jobs/$job1)" = 404
kid1=$(key_id "${tok[1]}" "$dir/k1")
check "other client's key 404" test "$(api "${tok[2]}" GET /v1/keys/$kid1)" = 404
check "submit under another client's key 404" test "$(api "${tok[2]}" POST "/v1/jobs?model=tiny&key=$kid1" --data-binary @"$dir/b2.ct")" = 404
check "secret key upload refused" test "$(api "${tok[1]}" POST /v1/keys --data-binary @"$dir/k1/secret.key")" = 403
check "... with a reason" grep -q "secret key" "$dir/body"
check "secret key as a batch refused" test "$(api "${tok[1]}" POST "/v1/jobs?model=tiny&key=$kid1" --data-binary @"$dir/k1/secret.key")" = 403
check "public key is not an evaluation key" test "$(api "${tok[1]}" POST /v1/keys --data-binary @"$dir/k1/public.key")" = 415
head -c 5000000 "$dir/b1.ct" > "$dir/trunc.ct"
check "truncated upload refused" test "$(api "${tok[1]}" POST "/v1/jobs?model=tiny&key=$kid1" --data-binary @"$dir/trunc.ct")" = 400
check "... as truncated" grep -q truncated "$dir/body"
cp "$dir/b1.ct" "$dir/flip.ct"; flip_byte "$dir/flip.ct" 3000000
check "corrupted upload refused" test "$(api "${tok[1]}" POST "/v1/jobs?model=tiny&key=$kid1" --data-binary @"$dir/flip.ct")" = 400
check "... by its checksum" grep -q checksum "$dir/body"
{ cat "$dir/b1.ct"; head -c 12000000 /dev/zero; } > "$dir/over.ct"
check "oversized upload 413" test "$(api "${tok[1]}" POST "/v1/jobs?model=tiny&key=$kid1" --data-binary @"$dir/over.ct")" = 413
check "body longer than its header says: 400" test "$(api "${tok[1]}" POST "/v1/jobs?model=tiny&key=$kid1" -H 'Transfer-Encoding: chunked' --data-binary @"$dir/over.ct")" = 400
head -c 30000000 "$dir/big.ct" > "$dir/bighead.ct"   # its header declares 143 MB
[[ -n $reduced ]] || check "oversized chunked upload 413" test "$(api "${tok[1]}" POST "/v1/jobs?model=tiny&key=$kid1" -H 'Transfer-Encoding: chunked' --data-binary @"$dir/bighead.ct")" = 413
[[ -n $reduced ]] || check "a 28x28 batch for the 8x8 model: 413" test "$(api "${tok[1]}" POST "/v1/jobs?model=tiny&key=$kid1" --data-binary @"$dir/big.ct")" = 413
check "refused uploads made no jobs" test "$(njobs "${tok[1]}")" = 2
check "refused uploads left no files" test -z "$(ls "$state/tmp")"
check "batch under other keys than the job's key 422" test "$(api "${tok[1]}" POST "/v1/jobs?model=tiny&key=$kid1" --data-binary @"$dir/b2.ct")" = 422
check "... named as such" grep -q "other keys" "$dir/body"
check "unknown model 404" test "$(api "${tok[1]}" POST "/v1/jobs?model=nope&key=$kid1" --data-binary @"$dir/b1.ct")" = 404
check "delete own job 204" test "$(api "${tok[1]}" DELETE /v1/jobs/$job1)" = 204
check "deleted job gone" test "$(api "${tok[1]}" GET /v1/jobs/$job1)" = 404
crash

echo "refusals done after ${SECONDS}s"
# ---- queue full 429; RSS flat while a 143 MB upload streams; kill -9 with jobs queued
start --workers 0 --max-queue 2
rss0=$(awk '/VmRSS/ {print $2}' /proc/$spid/status)
check "big upload accepted" test "$(api "${tok[1]}" POST "/v1/jobs?model=$bigmodel&key=$kid1" -H 'Idempotency-Key: big-1' --data-binary @"$dir/big.ct")" = 202
jobbig=$(cut -d'"' -f4 "$dir/body")
hwm=$(awk '/VmHWM/ {print $2}' /proc/$spid/status)
[[ -n $reduced ]] || check "server RSS bounded during a 143 MB upload (idle ${rss0} kB, peak ${hwm} kB)" test $((hwm - rss0)) -lt 40000
check "retried submission (same Idempotency-Key) is the same job" test "$(api "${tok[1]}" POST "/v1/jobs?model=$bigmodel&key=$kid1" -H 'Idempotency-Key: big-1' --data-binary @"$dir/big.ct")" = 200
check "... with the same id" grep -q "$jobbig" "$dir/body"
kid3=$(key_id "${tok[3]}" "$dir/k3")
check "second job queued" test "$(api "${tok[3]}" POST "/v1/jobs?model=tiny&key=$kid3" --data-binary @"$dir/b3.ct")" = 202
job3=$(cut -d'"' -f4 "$dir/body")
check "queue full 429" test "$(api "${tok[3]}" POST "/v1/jobs?model=tiny&key=$kid3" -D "$dir/hdr" --data-binary @"$dir/b3.ct")" = 429
check "... with Retry-After" grep -qi '^Retry-After: [0-9]' "$dir/hdr"
crash
start --workers 0 --max-queue 4
n4=$(njobs "${tok[4]}")   # its job from the concurrent run
n1=$(njobs "${tok[1]}")
# kill -9 during an upload: that job was never accepted. The large batch (143 MB; 11.7 MB in
# reduced runs), rate-limited: loopback socket buffers can absorb several MB at once, so a
# small body could be complete by the time a loaded server creates its temporary file.
rate=4M; [[ -n $reduced ]] && rate=256K
curl -s --max-time $limit --cacert "$dir/cert.pem" -H "Authorization: Bearer ${tok[1]}" --limit-rate $rate \
  -o /dev/null "$url/v1/jobs?model=$bigmodel&key=$kid1" --data-binary @"$dir/big.ct" &
upid=$!
for ((t = 0; t < 10 * limit; t++)); do [[ -n $(ls "$state/tmp") ]] && break; sleep 0.1; done
sleep 0.5
check "an upload was in flight" test -n "$(ls "$state/tmp")"
crash; wait $upid 2>/dev/null
start --workers 1 --max-queue 4
check "partial upload removed on restart" test -z "$(ls "$state/tmp")"
check "the interrupted upload made no job" test "$(njobs "${tok[1]}")" = "$n1"
# kill -9 during a job (the 143 MB batch takes seconds)
for ((t = 0; t < 20 * limit; t++)); do api "${tok[1]}" GET /v1/jobs/$jobbig >/dev/null; grep -q '"state":"running"' "$dir/body" && break; sleep 0.05; done
check "big job running" grep -q '"state":"running"' "$dir/body"
kill -0 "$spid" 2>/dev/null || { echo "cli_serve: the server died: $(tail -3 "$dir/serve.log")" >&2; }
crash
start --workers 1 --max-queue 4
check "restart re-queued the running job" grep -q '1 re-queued' "$dir/serve.log"
ok submit --token "${tok[1]}" --keys "$dir/k1" --job "$jobbig" --out "$dir/rbig.ct"
ok cmp "$dir/rbig.ct" "$dir/refbig.ct"
ok submit --token "${tok[3]}" --keys "$dir/k3" --job "$job3" --out "$dir/r3.ct"
ok cmp "$dir/r3.ct" "$dir/ref3.ct"
# kill -9 after completion: the result is still there; the client survives the restart too
ok submit --token "${tok[4]}" --keys "$dir/k4" --model tiny --in "$dir/b4.ct" --out "$dir/r4.ct"
job4=$(api "${tok[4]}" GET /v1/jobs >/dev/null; cut -d'"' -f6 "$dir/body")
crash
submit --token "${tok[4]}" --keys "$dir/k4" --job "$job4" --out "$dir/r4b.ct" >"$dir/c4.log" 2>&1 &
c4=$!
sleep 1   # the client retries while the server is down
start --workers 1
wait $c4; rc4=$?
check "client resumed across a server restart" test $rc4 = 0
[[ $rc4 = 0 ]] || cat "$dir/c4.log" >&2
ok cmp "$dir/r4b.ct" "$dir/ref4.ct"
check "nothing duplicated or lost (client 1: 2 jobs)" test "$(njobs "${tok[1]}")" = 2
n3=$((nc >= 3 ? 2 : 1))
check "nothing duplicated or lost (client 3: $n3 jobs)" test "$(njobs "${tok[3]}")" = $n3
check "nothing duplicated or lost (client 4: $((n4 + 1)) jobs)" test "$(njobs "${tok[4]}")" = $((n4 + 1))
check "no job failed" test "$(sqlite3 "$state/jobs.sqlite" "SELECT COUNT(*) FROM jobs WHERE state NOT IN ('done')")" = 0
crash
# results are kept until fetched, then for --result-ttl seconds (0 here)
start --workers 1 --result-ttl 0
for ((t = 0; t < 50; t++)); do [[ $(api "${tok[3]}" GET /v1/jobs/$job3) = 404 ]] && break; sleep 0.1; done
check "a fetched result expires after the TTL" test "$(api "${tok[3]}" GET /v1/jobs/$job3)" = 404
check "... and its file is deleted" test ! -e "$state/jobs/$job3.out"
check "fresh job accepted" test "$(api "${tok[5]}" POST "/v1/jobs?model=tiny&key=$(key_id "${tok[5]}" "$dir/k5")" --data-binary @"$dir/b5.ct")" = 202
job5=$(cut -d'"' -f4 "$dir/body")
for ((t = 0; t < 10 * limit; t++)); do api "${tok[5]}" GET /v1/jobs/$job5 >/dev/null; grep -q '"state":"done"' "$dir/body" && break; sleep 0.1; done
sleep 1.5   # two janitor rounds
check "an unfetched result is kept" test "$(api "${tok[5]}" GET /v1/jobs/$job5/result)" = 200
ok cmp "$dir/body" "$dir/ref5.ct"
for ((t = 0; t < 50; t++)); do [[ $(api "${tok[5]}" GET /v1/jobs/$job5) = 404 ]] && break; sleep 0.1; done
check "... until fetched" test "$(api "${tok[5]}" GET /v1/jobs/$job5)" = 404
if [[ -z $reduced ]]; then   # an 8x8 batch for the 28x28 model: accepted (small enough), fails
  err=$(submit --token "${tok[6]}" --keys "$dir/k6" --model mnist --in "$dir/b6.ct" --out "$dir/x.ct" --quiet 2>&1 >/dev/null)
  check "a job the model cannot run fails with the reason ($err)" test $? -ne 0 -a ! -e "$dir/x.ct"
  check "... in one line, naming no server path" test "$(printf '%s\n' "$err" | grep -c 'expects 1x28x28')" = 1 -a -z "$(printf '%s' "$err" | grep -F "$state")"
fi
crash
# Long polls (GET /v1/jobs/ID?wait=S) and the worker's trust in what the upload verified: a
# queued job's input changed on disk after its upload is verified in full again, and refused.
start --workers 0
kid2=$(key_id "${tok[2]}" "$dir/k2")
check "job for the tamper test queued" test "$(api "${tok[2]}" POST "/v1/jobs?model=tiny&key=$kid2" --data-binary @"$dir/b2.ct")" = 202
jobt=$(cut -d'"' -f4 "$dir/body")
check "a long poll on a queued job ends at its bound" test "$(api "${tok[2]}" GET "/v1/jobs/$jobt?wait=1" --max-time 20)" = 200
check "... with the job still queued" grep -q '"state":"queued"' "$dir/body"
check "wait beyond the bound refused" test "$(api "${tok[2]}" GET "/v1/jobs/$jobt?wait=31")" = 400
check "wait not a number refused" test "$(api "${tok[2]}" GET "/v1/jobs/$jobt?wait=1x")" = 400
check "another client's long poll is 404" test "$(api "${tok[3]}" GET "/v1/jobs/$jobt?wait=1")" = 404
in=$state/jobs/$jobt.in; off=$(($(stat -c %s "$in") / 2))
byte=$(od -An -tu1 -j $off -N1 "$in" | tr -d ' ')
printf "\\$(printf %03o $((byte ^ 64)))" | dd of="$in" bs=1 seek=$off conv=notrunc status=none
crash
start --workers 1
for ((t = 0; t < limit / 20 + 1; t++)); do  # sanitizer runs may need more than one wait
  check "a long poll returns by its bound" test "$(api "${tok[2]}" GET "/v1/jobs/$jobt?wait=20" --max-time 40)" = 200
  grep -q '"state":"\(done\|failed\)"' "$dir/body" && break
done
check "... the changed input was verified again and refused" grep -q '"state":"failed".*checksum' "$dir/body"
check "a fresh job for the wake-up test" test "$(api "${tok[2]}" POST "/v1/jobs?model=tiny&key=$kid2" --data-binary @"$dir/b2.ct")" = 202
jobw=$(cut -d'"' -f4 "$dir/body")
# The worker wakes on the submission and the long poll on the finish: one request sees 'done'.
if [[ -z $reduced ]]; then  # --max-time 15 < wait=20: only a wake-up on the finish answers in time
  api "${tok[2]}" GET "/v1/jobs/$jobw?wait=20" --max-time 15 >/dev/null
  check "one long poll sees the submitted job done, woken by its finish" grep -q '"state":"done"' "$dir/body"
fi
crash
# ppnn demo --serve: the demo's server step through an in-process server on loopback
if [[ -z $reduced ]]; then
  mkdir -p "$dir/dm"; cp "$dir/models/mnist.ppnn" "$dir/dm/mnist-cryptonets-element-kd.ppnn"
  B demo --serve --count 16 --models "$dir/dm" >"$dir/demo.log" 2>&1
  check "demo --serve agrees with plaintext" grep -q "agreement *100.00 %" "$dir/demo.log"
fi
# plain HTTP: loopback only, explicit
ok bash -c "! '$ppnn' serve --models '$dir/models' --state '$state' --listen 0.0.0.0:0 --plain-http 2>&1 | grep -q loopback || true"
err=$("$ppnn" serve --models "$dir/models" --state "$state" --listen 0.0.0.0:0 --plain-http 2>&1)
check "plain HTTP off loopback refused ($err)" test $? -ne 0 -a "$(printf '%s\n' "$err" | grep -c loopback)" = 1
err=$("$ppnn" serve --models "$dir/models" --state "$state" --listen 127.0.0.1:0 2>&1)
check "TLS is the default ($err)" test $? -ne 0 -a "$(printf '%s\n' "$err" | grep -c tls-cert)" = 1
echo "cli_serve: $pass passed in ${SECONDS}s, $fail failed"
[[ $fail -eq 0 ]]

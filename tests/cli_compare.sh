#!/usr/bin/env bash
# Reduced `ppnn compare` (tiny trainings, a few images): the report and the two plots are well
# formed — structure, not timings — and a second run reuses the cached models. Bad options are
# refused with a one-line error.
set -u
ppnn=$1; pass=0; fail=0
check() { if [[ $1 == 1 ]]; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL: $2" >&2; fi; }
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
# Sanitizer runs (PPNN_TEST_REDUCED): smaller trainings and no element-wise encrypted run (its
# executor has its own tests); the report must then mark those columns "not measured".
if [[ -n ${PPNN_TEST_REDUCED:-} ]]; then
    batches=1,2; element=0
    args=(--count 64 --test 4 --channel-images 1 --skip-element)
else
    batches=1,8; element=1
    args=(--count 256 --test 16 --channel-images 2)
fi
args+=(--out "$dir/r" --models "$dir/m" --teacher-epochs 1 --epochs 1 --batches "$batches"
       --threads 2)
out=$("$ppnn" compare "${args[@]}" 2>"$dir/log"); rc=$?
check $(( rc == 0 )) "compare exit code $rc: $(tail -3 "$dir/log")"
check $([[ $out == *"paper +1.65"* && $out == *"paper -99.5 %"* ]] && echo 1 || echo 0) \
      "headline deltas printed next to the paper's: $out"
python3 - "$dir/r" "$batches" "$element" <<'PY'
import re, sys, xml.etree.ElementTree as ET
d, batches, element = sys.argv[1], [int(b) for b in sys.argv[2].split(",")], sys.argv[3] == "1"
md = open(f"{d}/compare.md").read()
for h in ["# Element-wise (BEAA) vs channel-wise packing: mnist", "## Headline",
          "## Accuracy", "## Inference time per batch", "## Setup", "## Commands",
          "extrapolated linearly", "| threads | 2 |", "n13: N = 8192"]:
    assert h in md, h
allrows = [[c.strip() for c in l.split("|")[1:-1]] for l in md.splitlines() if re.match(r"\| \d+ \|", l)]
rows = [r for r in allrows if len(r) == 7]
assert [int(r[0]) for r in rows] == batches, rows
# --packing auto: one row per batch size, a packing per row, and the crossover stated.
assert "## Automatic packing" in md and re.search(r"no slower from \*\*\d+ images\*\*", md), md
auto = [r for r in allrows if len(r) == (6 if element else 4)]
assert [int(r[0]) for r in auto] == batches, auto
timing = {int(r[0]): r for r in allrows if len(r) == 7}
for r in auto:
    assert r[1] in ("element-wise", "channel-wise"), r
    if element:
        # auto's time is the measured time of its choice; the envelope the faster of the two.
        assert r[2] in ("element-wise", "channel-wise"), r
        t = timing[int(r[0])]
        elem_s, chan_s = float(t[1]), float(t[4])
        assert abs(float(r[3]) - (chan_s if r[1] == "channel-wise" else elem_s)) <= 1e-3, (r, t)
        assert abs(float(r[4]) - min(elem_s, chan_s)) <= 1e-3, (r, t)
        assert (r[5] == "+0.0 %") == (r[1] == r[2]) or abs(elem_s - chan_s) < 2e-3, (r, t)
if element:
    m = re.search(r"lower envelope of the two measured curves at (\d+) of (\d+) batch sizes", md)
    assert m and int(m.group(2)) == len(batches), md
    assert int(m.group(1)) == sum(r[1] == r[2] for r in auto), (m.group(0), auto)
def amortized_ok(total_s, ms):  # ms/image = 1000 * total / batch, up to the printed rounding
    return abs(float(ms) - 1e3 * float(total_s) / b) <= 1e3 * 0.0005 / b + 0.0005 + 1e-6
for r in rows:
    b = int(r[0])
    assert amortized_ok(r[4], r[5]), r
    if element:
        assert amortized_ok(r[1], r[2]), r
    else:
        assert r[1] == r[2] == r[3] == "not measured", r
acc = re.findall(r"^\| (element-wise|channel-wise)[^|]*\| ([0-9.]+) % \| ([0-9.]+) % \| (\d+) \|"
                 r" ([0-9.]+) % \| ([0-9.]+) % \| ([0-9.e+-]+) \|", md, re.M)
assert len(acc) == (2 if element else 1), acc
for a in acc:
    assert all(0 <= float(a[i]) <= 100 for i in (1, 2, 4, 5)), a
    # Encrypted logits must match the plaintext ones (both packings keep errors ~1e-3 at n13).
    assert float(a[6]) < 0.05, ("logit error", a)
for name, kind in [("amortized.svg", "polyline"), ("accuracy.svg", "rect")]:
    root = ET.parse(f"{d}/{name}").getroot()
    assert root.tag.endswith("svg"), name
    assert any(e.tag.endswith(kind) for e in root.iter()), (name, kind)
PY
check $((! $?)) "report structure"
# Second run: the cached models are reused, not retrained.
"$ppnn" compare "${args[@]}" --batches 1 --channel-images 1 >/dev/null 2>"$dir/log2"
check $(( $(grep -c "reusing" "$dir/log2") == 3 )) "models reused: $(cat "$dir/log2")"
# Given models (trained elsewhere) are used as they are; one in the wrong role is refused.
teach=$(ls "$dir"/m/mnist-teacher-*.ppnn | head -1)
elem=$(ls "$dir"/m/mnist-element-kd-*.ppnn | head -1)
chan0=$(ls "$dir"/m/mnist-channel-kd-*.ppnn | head -1)
"$ppnn" compare "${args[@]}" --out "$dir/g" --models "$dir/none" --batches 1 --channel-images 1 \
    --teacher-model "$teach" --element-model "$elem" --channel-model "$chan0" >/dev/null 2>"$dir/log3"
check $(( $? == 0 && $(grep -c "^compare: using" "$dir/log3") == 3 )) "given models used: $(tail -2 "$dir/log3")"
check $(( $(grep -c '(given) |' "$dir/g/compare.md") == 3 )) "report marks the given models"
"$ppnn" compare "${args[@]}" --out "$dir/g2" --batches 1 --channel-images 1 \
    --element-model "$chan0" >/dev/null 2>"$dir/log4"; rc=$?
err=$(grep -v '^compare: \(reusing\|using\)' "$dir/log4")
check $(( rc != 0 && $(printf '%s\n' "$err" | wc -l) == 1 )) "channel model as element refused: $err"
check $([[ ! -e $dir/g2 && $err == *"element-wise student"* ]] && echo 1 || echo 0) \
      "refusal names the role, no report dir: $err"
# keygen for the channel-wise plan of the cached student: Galois keys exactly for its rotations.
chan=$(ls "$dir"/m/mnist-channel-kd-*.ppnn | head -1)
"$ppnn" keygen --out "$dir/k" --packing channel --model "$chan" 2>"$dir/klog"
check $(( $? == 0 )) "keygen --packing channel: $(cat "$dir/klog")"
check $([[ -s $dir/k/galois.key && -s $dir/k/relin.key ]] && echo 1 || echo 0) "galois.key written"
err=$("$ppnn" keygen --out "$dir/k2" --packing channel 2>&1 >/dev/null); rc=$?
check $(( rc != 0 && $(printf '%s\n' "$err" | wc -l) == 1 )) "channel without --model refused: $err"
err=$("$ppnn" keygen --out "$dir/k2" --model "$chan" 2>&1 >/dev/null); rc=$?
check $(( rc != 0 )) "--model without --packing channel refused: $err"
err=$("$ppnn" compare --out "$dir/x" --batches 0,4 2>&1 >/dev/null); rc=$?
check $(( rc != 0 && $(printf '%s\n' "$err" | wc -l) == 1 )) "--batches 0 refused: $err"
err=$("$ppnn" compare --out "$dir/x" --models "$dir/m" --count 256 --teacher-epochs 1 \
      --epochs 1 --test 4 --batches 8 2>&1 >/dev/null); rc=$?
check $(( rc != 0 )) "more batch images than test images refused: $err"
echo "cli_compare: $pass passed, $fail failed"
[[ $fail -eq 0 ]]

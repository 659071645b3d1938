#!/usr/bin/env bash
# Silent nonsense turned into errors (issue 13 item 9): an offset past the end, refusals that
# used to come only after training or keygen, partial output left by failed runs, a data
# directory with a slash, the memory refusal's real rule, whole-usage dumps on argument errors.
. "$(dirname "$0")/clilib.sh"
tiny_data tiny
mkdir -p sub && cp -r tiny sub/

# an offset past the end selects nothing: an error, not "accuracy 0 % (0/0)" with exit 0
ok "$ppnn" train --data tiny --count 16 --epochs 1 --out t.ppnn
refuse "offset 16 is past the end" /nonexistent "$ppnn" eval --model t.ppnn --data tiny --offset 16
refuse "offset 10000 is past the end" /nonexistent "$ppnn" eval --model t.ppnn --data mnist --offset 10000

# compare: a bad parameter set is refused before any directory is made or model trained
refuse "n15" out "$ppnn" compare --data tiny --params n15 --out out --models models
ok test ! -e models

# demo: a cached ReLU or too-deep model is refused before keygen
ok "$ppnn" train --data mnist --count 300 --epochs 1 --act relu --out relu.ppnn
ok "$ppnn" train --data mnist --count 300 --epochs 1 --arch deep --act element --out deep.ppnn
mkdir -p MR MD && cp relu.ppnn MR/mnist-cryptonets-element-kd.ppnn && cp deep.ppnn MD/mnist-cryptonets-element-kd.ppnn
refuse "ReLU" /nonexistent "$ppnn" demo --models MR --count 16
refuse "parameter set n13 has only 5 levels" /nonexistent "$ppnn" demo --models MD --count 16
for m in MR MD; do
  out=$("$ppnn" demo --models $m --count 16 2>/dev/null)
  ok test -z "$(printf '%s' "$out" | grep -i keygen)"
done

# a failed demo leaves neither the models it trained nor the directories it made
# (PPNN_MEMORY_LIMIT makes the server step refuse, after training and keygen)
err=$(PPNN_MEMORY_LIMIT=1000 "$ppnn" demo --data ./sub/tiny --models new/models --count 16 2>&1 >/dev/null); rc=$?
ok test $rc -ne 0
ok test -n "$(printf '%s' "$err" | grep 'ppnn infer: error: memory budget .* is below the minimum this model needs')"
ok test ! -e new

# --data DIR with a slash works; the cache file names carry no path
ok "$ppnn" demo --data ./sub/tiny --models cache --count 16
ok test "$(ls cache | grep -c '^tiny-[0-9a-f]\{16\}-\(teacher\|cryptonets-element-kd\)\.ppnn$')" = 2
ok "$ppnn" demo --data "$dir/sub/tiny" --models cache --count 16   # same directory: cached
ok test "$(ls cache | wc -l)" = 2

# argument errors: one line pointing to --help, exit code 2
for cmd in demo data train eval keygen encrypt infer decrypt bench compare; do
  err=$("$ppnn" $cmd --no-such-flag 2>&1 >/dev/null); rc=$?
  if [[ $rc -eq 2 && $(printf '%s\n' "$err" | grep -c .) -eq 1 && $err == *"see 'ppnn $cmd --help'"* ]]; then pass=$((pass+1))
  else fail=$((fail+1)); echo "FAIL: $cmd --no-such-flag: rc=$rc: $err" >&2; fi
done
err=$("$ppnn" encrypt --packing channel --bogus 2>&1 >/dev/null); rc=$?
ok test $rc -eq 2 -a "$(printf '%s\n' "$err" | grep -c .)" -eq 1
finish cli_nonsense

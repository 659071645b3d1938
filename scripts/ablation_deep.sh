#!/usr/bin/env bash
# The ablation at depth (issue 14): the deep net (two conv + avgpool, 9 levels) with activation
# granularity element / channel / layer / square, each distilled from a ReLU teacher or trained
# without distillation, over several seeds; plus element / channel distilled from the weaker
# plain teacher, to show how the students depend on the teacher.
#
# usage: scripts/ablation_deep.sh PPNN_BINARY OUT_DIR [DATASETS] [SEEDS]
#   e.g. scripts/ablation_deep.sh build/ppnn /work/abl "fashion mnist" "1 2 3"
# Every model trains on the first 55000 training images; the last 5000 are the validation
# split (--holdout), the only data any recipe decision looked at (the epoch counts below were
# chosen on it: docs/training.md); the test split is only evaluated. JOBS trainings run at once
# (default 2), each on one thread, niced. Existing models are reused, so the script resumes.
# Environment: E_TEACHER (15), E_DEEP (40), JOBS (2), TEACHER (teacher-wide), CONFIGS (the
# student configurations to train, "ACT TEACHER" separated by commas, TEACHER "-" for none;
# default all ten below: e.g. CONFIGS="element teacher-wide,channel teacher-wide" trains the
# rows that matter first). The table covers every configuration whatever CONFIGS says.
# KD_TEMP (2), KD_ALPHA (0.9), KD_MODE (--kd-offline; empty: teacher logits per augmented batch)
# set the distillation recipe of every distilled student (one recipe per OUT_DIR).
# Prints a markdown table (test accuracy, mean ± sample std over seeds) and the paired
# element − channel difference per seed with its mean and std.
set -eu
ppnn=$1; out=$2; datasets=${3:-fashion}; seeds=${4:-"1 2 3"}
E_T=${E_TEACHER:-15}; E_D=${E_DEEP:-40}; JOBS=${JOBS:-2}; TEACHER=${TEACHER:-teacher-wide}
# The recipe, chosen on the validation split (deep element student, Fashion-MNIST, seed 1, 40
# epochs, teacher-wide, offline): T 4 / alpha 0.5 90.88 %, T 4 / 0.9 90.88 %, T 2 / 0.5 91.42 %,
# T 2 / 0.9 91.46 %; no distillation 91.10 % (docs/training.md).
KD_T=${KD_TEMP:-2}; KD_A=${KD_ALPHA:-0.9}; KD_MODE=${KD_MODE:---kd-offline} # KD_MODE="" distils online
all_cfgs=("element $TEACHER" "channel $TEACHER" "layer $TEACHER" "square $TEACHER"
          "element -" "channel -" "layer -" "square -" "element teacher" "channel teacher")
if [[ -n ${CONFIGS:-} ]]; then IFS=, read -r -a train_cfgs <<<"$CONFIGS"; else train_cfgs=("${all_cfgs[@]}"); fi
mkdir -p "$out"
train() { # OUT ARGS...: trains unless OUT exists; the log goes beside it
  local m=$1; shift
  [[ -e $m ]] && return 0
  OMP_NUM_THREADS=1 nice "$ppnn" train --threads 1 --holdout 5000 "$@" --out "$m" \
    >"$m.log" 2>&1 || { echo "ablation: training $m failed: $(tail -1 "$m.log")" >&2; return 1; }
}
acc() { "$ppnn" eval --model "$1" --data "$2" --json | python3 -c \
  'import json,sys; print(json.load(sys.stdin)["accuracy"])'; }
for d in $datasets; do
  # Teachers: the strong one (TEACHER, seed 1) and the plain one (seed 1).
  train "$out/${d}_${TEACHER}.ppnn" --data "$d" --arch "$TEACHER" --act relu --epochs "$E_T" \
        --shift 2 --seed 1 &
  need_plain=0 # the plain teacher only if a student needs it
  for cfg in "${train_cfgs[@]}"; do set -- $cfg; [[ $2 == teacher ]] && need_plain=1; done
  if (( need_plain )); then
    train "$out/${d}_teacher.ppnn" --data "$d" --arch teacher --act relu --epochs "$E_T" \
          --shift 2 --seed 1 &
  fi
  wait
  jobs_run=0
  for s in $seeds; do
    for cfg in "${train_cfgs[@]}"; do
      set -- $cfg
      kd=(); [[ $2 != - ]] && kd=(--teacher "$out/${d}_$2.ppnn" --kd-temp "$KD_T" --kd-alpha "$KD_A" $KD_MODE)
      [[ -e $out/${d}_deep_$1_kd-$2_s$s.ppnn ]] && continue # done: keep both job slots busy
      train "$out/${d}_deep_$1_kd-$2_s$s.ppnn" --data "$d" --arch deep --act "$1" \
            --epochs "$E_D" --shift 1 --seed "$s" "${kd[@]}" &
      jobs_run=$((jobs_run + 1))
      if (( jobs_run % JOBS == 0 )); then wait; fi
    done
  done
  wait
done
echo "| dataset | model | teacher | seeds | test accuracy % (mean ± std) |"
echo "|---|---|---|---|---|"
for d in $datasets; do
  for t in "$TEACHER" teacher; do
    [[ -e $out/${d}_$t.ppnn ]] || continue
    printf '| %s | ReLU %s | — | 1 | %.2f |\n' "$d" "$t" "$(python3 -c "print(100*$(acc "$out/${d}_$t.ppnn" "$d"))")"
  done
  for cfg in "${all_cfgs[@]}"; do
    set -- $cfg
    vals=()
    for s in $seeds; do
      f=$out/${d}_deep_$1_kd-$2_s$s.ppnn
      [[ -e $f ]] && vals+=("$(acc "$f" "$d")")
    done
    [[ ${#vals[@]} -eq 0 ]] && continue
    printf '%s\n' "${vals[@]}" | python3 -c '
import sys, statistics as st
v = [100 * float(x) for x in sys.stdin]
sd = st.stdev(v) if len(v) > 1 else float("nan")
print("| %s | deep %s | %s | %d | %.2f ± %.2f |" % (sys.argv[1], sys.argv[2], sys.argv[3], len(v), st.mean(v), sd))' \
      "$d" "$1" "$( [[ $2 == - ]] && echo "none" || echo "$2")"
  done
  # Paired by seed: element minus channel, same teacher and seed.
  for t in "$TEACHER" -; do
    diffs=()
    for s in $seeds; do
      e=$out/${d}_deep_element_kd-${t}_s$s.ppnn; c=$out/${d}_deep_channel_kd-${t}_s$s.ppnn
      [[ -e $e && -e $c ]] && diffs+=("$(python3 -c "print(100*($(acc "$e" "$d")-$(acc "$c" "$d")))")")
    done
    [[ ${#diffs[@]} -eq 0 ]] && continue
    printf '%s\n' "${diffs[@]}" | python3 -c '
import sys, statistics as st
v = [float(x) for x in sys.stdin]
sd = st.stdev(v) if len(v) > 1 else float("nan")
print("%s, teacher %s: element - channel per seed %s: mean %+.2f points, std %.2f (paper +1.65)"
      % (sys.argv[1], sys.argv[2], " ".join("%+.2f" % x for x in v), st.mean(v), sd))' "$d" "$t"
  done
done

#!/usr/bin/env bash
# Reproduces the plaintext accuracy table of issue 4: for each dataset a ReLU teacher, then
# cryptonets students (element/channel/layer + KD, square, element without KD) and the deep net
# with element + KD. Every model trains on the first 55000 training images; the last 5000 are
# the validation ("holdout") split used for any recipe decision; the test split is only
# evaluated, never used for choices.
#
# usage: scripts/accuracy_table.sh PPNN_BINARY OUT_DIR [DATASETS] [SEEDS]
#   e.g. scripts/accuracy_table.sh build/ppnn /work/models "mnist fashion" "1 2 3"
# Runs one training at a time, niced, on one thread. Prints a markdown table at the end.
# Environment: E_TEACHER, E_STUDENT, E_DEEP (epochs; the 9-level deep net converges more slowly:
# on the Fashion validation split 20 epochs gave 90.05 %, 40 epochs 91.20 %), SHIFT (augmentation of students),
# KD_OFFLINE=1 (default; teacher logits once per image) or 0 (teacher run on every batch),
# TEACHER_SEED=K to distil every seed's students from the seed-K teacher.
set -eu
ppnn=$1; out=$2; datasets=${3:-"mnist fashion"}; seeds=${4:-1}
E_T=${E_TEACHER:-15}; E_S=${E_STUDENT:-20}; E_DEEP=${E_DEEP:-40}; SHIFT=${SHIFT:-1}
mkdir -p "$out"
run() { OMP_NUM_THREADS=1 nice "$ppnn" train --threads 1 --holdout 5000 "$@" >/dev/null 2>&1; }
acc() { "$ppnn" eval --model "$1" --data "$2" --json | sed -n 's/.*"accuracy": *\([0-9.]*\).*/\1/p'; }
for d in $datasets; do
  for s in $seeds; do
    t=$out/${d}_teacher_s${TEACHER_SEED:-$s}.ppnn
    [[ -e $t ]] || run --data "$d" --arch teacher --act relu --epochs "$E_T" --shift 2 --seed "$s" --out "$t"
    kd=(--teacher "$t" --kd-temp 4 --kd-alpha 0.5)
    [[ ${KD_OFFLINE:-1} == 1 ]] && kd+=(--kd-offline)
    for cfg in "cryptonets element kd" "cryptonets channel kd" "cryptonets layer kd" \
               "cryptonets square -" "cryptonets element -" "deep element kd"; do
      set -- $cfg
      m=$out/${d}_$1_$2_$3_s$s.ppnn
      extra=(); [[ $3 == kd ]] && extra=("${kd[@]}")
      e=$E_S; [[ $1 == deep ]] && e=$E_DEEP
      [[ -e $m ]] || run --data "$d" --arch "$1" --act "$2" --epochs "$e" --shift "$SHIFT" \
                         --seed "$s" "${extra[@]}" --out "$m"
    done
  done
done
echo "| dataset | model | seeds | test accuracy % (mean ± half-range) |"
echo "|---|---|---|---|"
for d in $datasets; do
  for name in teacher_relu_- cryptonets_element_kd cryptonets_channel_kd cryptonets_layer_kd \
              cryptonets_square_- cryptonets_element_- deep_element_kd; do
    vals=()
    for s in $seeds; do
      f=$out/${d}_${name}_s$s.ppnn; [[ $name == teacher_relu_- ]] && f=$out/${d}_teacher_s$s.ppnn
      [[ -e $f ]] && vals+=("$(acc "$f" "$d")")
    done
    [[ ${#vals[@]} -eq 0 ]] && continue
    printf '%s\n' "${vals[@]}" | awk -v d="$d" -v n="$name" '
      {v=$1*100; s+=v; if(NR==1||v<lo)lo=v; if(NR==1||v>hi)hi=v}
      END{printf "| %s | %s | %d | %.2f ± %.2f |\n", d, n, NR, s/NR, (hi-lo)/2}'
  done
done

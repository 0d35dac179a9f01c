#!/usr/bin/env bash
# Soak the 2-rank torchrun test: run it N times in a row (default 50) and stop at the first failure.
# A hang at exit shows up as a failed run (the test's own time limit), so "N/N passed" means no rank hung.
# Usage: bash scripts/torchrun_soak.sh [N] [PYTEST -k EXPRESSION]
set -uo pipefail
cd "$(dirname "$0")/.."
N=${1:-50}
K=${2:-torchrun_two_ranks}
PY=.venv/bin/python
t_all=$(date +%s)
max=0
for i in $(seq 1 "$N"); do
  t0=$(date +%s)
  if ! out=$("$PY" -m pytest -q -p no:cacheprovider tests/training/test_trainer_integration.py -k "$K" 2>&1); then
    echo "$out" | tail -40
    echo "soak: run $i of $N FAILED after $(( $(date +%s) - t0 )) s ($((i - 1)) passed before it)"
    exit 1
  fi
  dt=$(( $(date +%s) - t0 ))
  (( dt > max )) && max=$dt
  echo "soak: run $i/$N passed in ${dt} s"
done
echo "soak: $N/$N runs of '$K' passed in a row; slowest run ${max} s, total $(( $(date +%s) - t_all )) s"

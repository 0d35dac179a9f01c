#!/usr/bin/env bash
# The CPU demo of docs/bench/trainer.md, end to end: render chair pairs (train and held-out instances), train
# manifests/runs/chair_cpu_demo.yaml, then score the trained model, the untrained model, the identity warp, the
# zero-shot nearest-neighbour baseline (untrained and trained backbone) and dense SIFT on the held-out pairs, and
# plot curves.
#   bash scripts/chair_cpu_demo.sh            (from the repository root; set SKIP_DATA=1 / SKIP_TRAIN=1 to reuse)
set -euo pipefail
PY=${PY:-.venv/bin/python}
RUN=runs/chair_cpu_demo
TEST=data/demo/chair112_test
export PYTHONPATH=${PYTHONPATH:-.} PYOPENGL_PLATFORM=${PYOPENGL_PLATFORM:-egl}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # per-pair evaluation of a small model: one thread is fastest on 2 shared cores

if [ -z "${SKIP_DATA:-}" ]; then
  $PY -m datagen render --category chair --n 4000 --size 112 --shard-size 200 --seed 0 --out data/demo/chair112_train
  $PY -m datagen render --category chair --n 300 --size 112 --shard-size 100 --seed 1000 --out $TEST
fi
if [ -z "${SKIP_TRAIN:-}" ]; then
  start=$(date +%s)
  $PY -m training train manifests/runs/chair_cpu_demo.yaml
  echo "training wall time: $(( $(date +%s) - start )) s"
fi
$PY scripts/export_comparisons.py $RUN --out $RUN/compare
for threshold in bbox img; do
  for name in model compare/untrained identity compare/zeroshot_untrained compare/zeroshot_trained sift; do
    ckpt=$RUN/$name; case $name in sift|identity) ckpt=$name;; esac
    $PY -m training eval --checkpoint "$ckpt" --shards $TEST --size 112 --threshold $threshold \
      --out "$RUN/eval/$threshold/$(basename $name)"
  done
done
$PY scripts/plot_curves.py $RUN --out docs/bench/trainer_chair_cpu_demo.png --title "chair_cpu_demo (CPU, from scratch)"

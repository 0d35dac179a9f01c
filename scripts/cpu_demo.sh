#!/usr/bin/env bash
# The CPU demo of docs/bench/trainer.md for any category: render pairs of one category (train instances and
# held-out instances of another root seed) at 112 px, train manifests/runs/<category>_cpu_demo.yaml from scratch,
# then score the trained model, the untrained model, the identity warp, the zero-shot nearest-neighbour baseline
# (untrained and trained backbone) and dense SIFT on the held-out pairs, and plot curves.
#   CATEGORY=dog bash scripts/cpu_demo.sh     (from the repository root; default CATEGORY=chair)
# Environment: SKIP_DATA=1 / SKIP_TRAIN=1 reuse the data / the trained run; COMPARE="model identity sift" limits
# the matchers scored (default: all six); THRESHOLDS="bbox" limits the PCK thresholds (default: bbox img).
# scripts/chair_cpu_demo.sh is the chair run of the same protocol.
set -euo pipefail
PY=${PY:-.venv/bin/python}
CATEGORY=${CATEGORY:-chair}
MANIFEST=manifests/runs/${CATEGORY}_cpu_demo.yaml
RUN=runs/${CATEGORY}_cpu_demo
TRAIN=data/demo/${CATEGORY}112_train
TEST=data/demo/${CATEGORY}112_test
COMPARE=${COMPARE:-model compare/untrained identity compare/zeroshot_untrained compare/zeroshot_trained sift}
THRESHOLDS=${THRESHOLDS:-bbox img}
export PYTHONPATH=${PYTHONPATH:-.} PYOPENGL_PLATFORM=${PYOPENGL_PLATFORM:-egl}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # per-pair evaluation of a small model: one thread is fastest on 2 shared cores

[ -f "$MANIFEST" ] || { echo "cpu_demo: no run manifest $MANIFEST (copy manifests/runs/chair_cpu_demo.yaml)" >&2; exit 2; }
if [ -z "${SKIP_DATA:-}" ]; then
  $PY -m datagen render --category "$CATEGORY" --n 4000 --size 112 --shard-size 200 --seed 0 --out $TRAIN
  $PY -m datagen render --category "$CATEGORY" --n 300 --size 112 --shard-size 100 --seed 1000 --out $TEST
fi
if [ -z "${SKIP_TRAIN:-}" ]; then
  start=$(date +%s)
  $PY -m training train "$MANIFEST"
  echo "training wall time: $(( $(date +%s) - start )) s"
fi
case " $COMPARE " in
  *" compare/"*) $PY scripts/export_comparisons.py $RUN --out $RUN/compare ;;
esac
for threshold in $THRESHOLDS; do
  for name in $COMPARE; do
    ckpt=$RUN/$name; case $name in sift|identity) ckpt=$name;; esac
    $PY -m training eval --checkpoint "$ckpt" --shards $TEST --size 112 --threshold $threshold \
      --out "$RUN/eval/$threshold/$(basename $name)"
  done
done
$PY scripts/plot_curves.py $RUN --out docs/bench/trainer_${CATEGORY}_cpu_demo.png \
  --title "${CATEGORY}_cpu_demo (CPU, from scratch)"

#!/usr/bin/env bash
# Issue 13: the effect of appearance on matching, measured on the CPU demo (docs/bench/trainer.md, "Appearance:
# BlenderProc and photo backgrounds"). Training sets of the same chair pairs (root seed 0: the same instances,
# cameras and ground truth) that differ only in how the images look:
#   pyrender        the default GL renderer over procedural backgrounds
#   blenderproc     Cycles path tracing (--renderer blenderproc --samples $SAMPLES; needs EXTRAS=photoreal); about
#                   25 min for 2,000 pairs at 112 px on the 2 shared cores
#   photo           pyrender over real photographs (--backgrounds: 11 train photos)
#   blenderproc_mix (not in the default VARIANTS) a 50/50 mix of Cycles renders of the first N_BP = N_TRAIN/2
#                   pairs and the pyrender set, for a machine where the full Cycles set takes too long
# and three held-out test sets (pyrender, blenderproc, photo; root seed 1000: other instances, the same pairs in the
# three; the photo set uses 11 other photos). One model is trained from scratch on each training set with
# manifests/runs/chair_cpu_demo_appearance.yaml (the demo's model and recipe, reduced: 2,000 pairs, 700 + 120 steps,
# one thread, same seed), every model and the identity warp are scored on every test set (PCK@0.1, bbox threshold),
# and the grid is printed and written to $RUNS/table.md (wall times in $RUNS/wall_times.txt).
#   bash scripts/cpu_demo_appearance.sh            (from the repository root)
# Environment: SKIP_DATA=1 / SKIP_TRAIN=1 reuse the data / the trained runs; VARIANTS="pyrender photo" limits the
# training sets (default: pyrender blenderproc photo); TESTS likewise the test sets; N_TRAIN (2000), N_BP
# (N_TRAIN/2), N_TEST (300), SAMPLES (16), WORKERS (2: render processes), STEPS="700 120" (dense, refine), ROOT
# (data/appearance), RUNS (runs/appearance),
# PHOTOS_TRAIN / PHOTOS_TEST (folders of your own photos instead of the fetched ones: Debian's mate-backgrounds and
# scikit-image's bundled photographs, through apt-get download and pip download; scripts/appearance_bench.py).
# Renders resume (--resume), so a killed run picks up where it stopped. Heavy steps run under nice -n ${NICE:-5}.
set -euo pipefail
PY=${PY:-.venv/bin/python}
CATEGORY=chair
MANIFEST=manifests/runs/chair_cpu_demo_appearance.yaml
ROOT=${ROOT:-data/appearance}
RUNS=${RUNS:-runs/appearance}
N_TRAIN=${N_TRAIN:-2000}
N_BP=${N_BP:-$((N_TRAIN / 2))}
N_TEST=${N_TEST:-300}
SAMPLES=${SAMPLES:-16}
WORKERS=${WORKERS:-2}
STEPS=(${STEPS:-700 120})
VARIANTS=${VARIANTS:-pyrender blenderproc photo}
TESTS=${TESTS:-pyrender blenderproc photo}
PHOTOS_TRAIN=${PHOTOS_TRAIN:-$ROOT/photos/train}
PHOTOS_TEST=${PHOTOS_TEST:-$ROOT/photos/test}
NICE="nice -n ${NICE:-5}"
export PYTHONPATH=${PYTHONPATH:-.} PYOPENGL_PLATFORM=${PYOPENGL_PLATFORM:-egl}
mkdir -p "$RUNS"
WALL=$RUNS/wall_times.txt

timed() {  # timed LABEL CMD...: run CMD, append its wall time to $WALL
  local label=$1 start
  shift
  start=$(date +%s)
  "$@"
  echo "$label $(($(date +%s) - start)) s" | tee -a "$WALL"
}

kind_args() {  # kind_args KIND SPLIT: the render options of a kind of images
  case $1 in
    pyrender) ;;
    blenderproc | blenderproc_mix) echo "--renderer blenderproc --samples $SAMPLES" ;;
    photo) if [ "$2" = train ]; then echo "--backgrounds $PHOTOS_TRAIN"; else echo "--backgrounds $PHOTOS_TEST"; fi ;;
    *) echo "cpu_demo_appearance: unknown kind $1 (pyrender, blenderproc, blenderproc_mix, photo)" >&2; return 2 ;;
  esac
}

if [ -z "${SKIP_DATA:-}" ]; then
  case " $VARIANTS $TESTS " in
    *" photo "*)
      if [ ! -d "${PHOTOS_TRAIN}" ] || [ ! -d "${PHOTOS_TEST}" ]; then
        $PY scripts/appearance_bench.py photos --out "$ROOT/photos" --cache "$ROOT/photo_sources"
      fi ;;
  esac
  case " $VARIANTS $TESTS " in
    *" blenderproc"*) $PY -c "import bpy" 2>/dev/null \
      || { echo "cpu_demo_appearance: bpy missing: EXTRAS=photoreal bash scripts/setup.sh" >&2; exit 2; } ;;
  esac
  for kind in $TESTS; do
    # shellcheck disable=SC2046
    timed "render test_$kind" $NICE $PY -m datagen render --category $CATEGORY --n "$N_TEST" --size 112 --shard-size 100 \
      --seed 1000 --workers "$WORKERS" --resume --no-progress $(kind_args "$kind" test) --out "$ROOT/test_$kind"
  done
  train_sets=""
  for kind in $VARIANTS; do
    case $kind in blenderproc_mix) train_sets="$train_sets pyrender blenderproc_half" ;; *) train_sets="$train_sets $kind" ;; esac
  done
  for set in $(echo "$train_sets" | tr ' ' '\n' | awk 'NF && !seen[$0]++'); do  # each set once, in order
    n=$N_TRAIN kind=$set
    [ "$set" = blenderproc_half ] && { n=$N_BP; kind=blenderproc; }
    # shellcheck disable=SC2046
    timed "render train_$set" $NICE $PY -m datagen render --category $CATEGORY --n "$n" --size 112 --shard-size 100 \
      --seed 0 --workers "$WORKERS" --resume --no-progress $(kind_args "$kind" train) --out "$ROOT/train_$set"
  done
fi

if [ -z "${SKIP_TRAIN:-}" ]; then
  for kind in $VARIANTS; do
    rm -rf "${RUNS:?}/$kind"
    data=("data.sources.chair.path=$ROOT/train_$kind")
    if [ "$kind" = blenderproc_mix ]; then  # half the draws from the Cycles pairs, half from the pyrender set
      data=("data.sources.chair.path=$ROOT/train_blenderproc_half" "data.sources.pyrender={path: $ROOT/train_pyrender}"
        "stages.0.data={chair: 0.5, pyrender: 0.5}" "stages.1.data={chair: 0.5, pyrender: 0.5}")
    fi
    timed "train $kind" $NICE $PY -m training train $MANIFEST "name=appearance_$kind" "out_dir=$RUNS/$kind" \
      "${data[@]}" "stages.0.steps=${STEPS[0]}" "stages.1.steps=${STEPS[1]}" "eval.source.path=$ROOT/test_${TESTS%% *}"
  done
fi

models=""
for name in $VARIANTS identity; do
  ckpt=$RUNS/$name/model; model=trained_on_$name
  [ "$name" = identity ] && { ckpt=identity; model=identity; }
  models="$models $model"
  for kind in $TESTS; do
    # per-pair evaluation of a small model: one thread is fastest on 2 shared cores
    OMP_NUM_THREADS=1 timed "eval $model on test_$kind" $NICE $PY -m training eval --checkpoint "$ckpt" \
      --shards "$ROOT/test_$kind" --size 112 --threshold bbox --out "$RUNS/eval/$model/test_$kind" >/dev/null
  done
done
tests=""
for kind in $TESTS; do tests="$tests test_$kind"; done
# shellcheck disable=SC2086
$PY scripts/appearance_bench.py table "$RUNS/eval" --models $models --tests $tests --out "$RUNS/table.md"

#!/usr/bin/env bash
# The GPU checks of issue 14 in one go (one GPU, ~8 minutes): the VGGT-1B smoke recipe in the real trainer
# (throughput, MFU, data wait, memory over 50 measured steps; it compiles the graphs, which the later parts then
# find in inductor's cache), the speed ladder (each option's cost and gain on the VGGT-1B matcher at 518 px), and
# the gpu test tier. Results (logs, JSON, a Markdown summary) go to $OUT.
#
#   bash scripts/gpu_check.sh                  # from the repository root, after rendering the smoke data:
#   (the data commands in the header of manifests/runs/vggt1b_gpu_smoke.yaml, into data/gpu_smoke/)
#
# Wheels in .whl/ (webdataset, braceexpand, zstandard for a bare image) are installed first if present.
# Each part has its own time limit; a part that fails does not stop the others.
set -u
OUT=${OUT:-out/gpu_check}
mkdir -p "$OUT"
PY=${PY:-python3}
export PYTHONUNBUFFERED=1 TQDM_MININTERVAL=10 TORCHINDUCTOR_CACHE_DIR=${TORCHINDUCTOR_CACHE_DIR:-/tmp/inductor_cache}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
start=$(date +%s)
stamp() { echo "[gpu_check +$(( $(date +%s) - start )) s] $*"; }

if ls .whl/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
{
  date -u +%FT%TZ; nvidia-smi; nproc; free -g
  $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
} >"$OUT/env.txt" 2>&1
stamp "environment: $(tail -1 "$OUT/env.txt")"

stamp "trainer: manifests/runs/vggt1b_gpu_smoke.yaml"
rm -rf /tmp/gpu_smoke
timeout "${TRAIN_S:-240}" $PY -m training train manifests/runs/vggt1b_gpu_smoke.yaml out_dir=/tmp/gpu_smoke \
  >"$OUT/train.log" 2>&1
rc=$?
stamp "trainer: exit $rc"
if [ $rc -ne 0 ] && [ $rc -ne 124 ]; then  # failed (not timed out): the log's end, then the same run eager
  tail -n 30 "$OUT/train.log"
  rm -rf /tmp/gpu_smoke
  timeout "${TRAIN_EAGER_S:-150}" $PY -m training train manifests/runs/vggt1b_gpu_smoke.yaml out_dir=/tmp/gpu_smoke \
    model.compile=none stages.0.steps=40 >>"$OUT/train.log" 2>&1
  stamp "trainer without compilation: exit $?"
fi
cp /tmp/gpu_smoke/metrics.jsonl "$OUT/metrics.jsonl" 2>/dev/null

stamp "speed ladder"
timeout "${LADDER_S:-130}" $PY scripts/speed_ladder.py --device cuda --batch 8 --ref-batch 4 --profile 2 \
  --big-batch "${BIG_BATCH:-0}" --budget-s "${LADDER_BUDGET_S:-100}" --warmup 2 --iters 3 --json "$OUT/speed_ladder.json" \
  >"$OUT/speed_ladder.log" 2>&1
stamp "speed ladder: exit $?"

stamp "pytest -m gpu"
timeout "${PYTEST_S:-110}" $PY -m pytest -m gpu -q -s -p no:cacheprovider tests/training/test_gpu_tier.py \
  >"$OUT/pytest_gpu.log" 2>&1
stamp "pytest: exit $?"

$PY scripts/gpu_summary.py "$OUT" | tee "$OUT/summary.md"
stamp "done"

#!/usr/bin/env bash
# Render one dataset as a Slurm job array: array task k makes shards [k*S, (k+1)*S) of it (S = SHARDS_PER_TASK,
# default 1) into one shared folder. All arguments go to `datagen render` unchanged (not --shards/--resume).
#
# Usage (50000 pairs in shards of 100 = 500 shards; at most 64 tasks at once):
#   mkdir -p logs
#   sbatch --array=0-499%64 scripts/slurm_render.sh --category chair --n 50000 --out /shared/data/chair
#   SHARDS_PER_TASK=10 sbatch --array=0-49 scripts/slurm_render.sh --category chair --n 50000 --out /shared/data/chair
#   datagen verify /shared/data/chair                # once the array is done
#
# Array size = ceil(n / shard_size / SHARDS_PER_TASK); a task past the end exits 0 with nothing to do.
# Tasks may run in any order, on any node, be requeued or resubmitted: shard i is a pure function of the
# settings and i, every task passes --resume (complete shards are kept, a dead task's temp files removed), and a
# shard another live task is making is left to it. Resubmitting the same array finishes a partly failed run.
# Environment: DATAGEN (the command, default `datagen`), SHARDS_PER_TASK; workers = SLURM_CPUS_PER_TASK.
#SBATCH --job-name=datagen-render
#SBATCH --cpus-per-task=4
#SBATCH --mem=16G
#SBATCH --time=04:00:00
#SBATCH --output=logs/datagen-render-%A_%a.out
#SBATCH --requeue
set -euo pipefail
: "${SLURM_ARRAY_TASK_ID:?submit this with sbatch --array=0-K (see the header)}"
per=${SHARDS_PER_TASK:-1}
first=$((SLURM_ARRAY_TASK_ID * per))
echo "task ${SLURM_ARRAY_TASK_ID} on $(hostname): shards ${first}:$((first + per))"
${DATAGEN:-datagen} render "$@" --shards "${first}:$((first + per))" --resume \
  --workers "${SLURM_CPUS_PER_TASK:-1}" --no-progress --past-end-ok

#!/usr/bin/env bash
# CI: an extra installed with pip after set-up must not leave a silently broken renderer (issue 19).
# pip re-resolves the dependencies and puts back pyrender's PyOpenGL pin; `datagen render` must then refuse in
# one line (exit 2) naming the command that fixes it, and render once that command has run.
# Usage: bash scripts/ci_extra_render.sh [EXTRA]      (default: cluster)
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRA=${1:-cluster}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
t0=$(date +%s)
.venv/bin/python -m pip install -q -e ".[$EXTRA]"
echo "ci: installed .[$EXTRA] in $(( $(date +%s) - t0 )) s; PyOpenGL $(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("PyOpenGL"))')"
render=(.venv/bin/datagen render --category chair --n 2 --size 56 --workers 1 --no-progress)
set +e
"${render[@]}" --out "$tmp/first" 2> "$tmp/err"
rc=$?
set -e
if [ "$rc" -ne 0 ]; then
  cat "$tmp/err" >&2
  [ "$rc" -eq 2 ] && [ "$(wc -l < "$tmp/err")" -eq 1 ] || { echo "ci: expected one line and exit 2, got $rc" >&2; exit 1; }
  fix=$(sed -n 's/.*run `\(.*\)`.*/\1/p' "$tmp/err")
  [ -n "$fix" ] || { echo "ci: the error does not say what to run" >&2; exit 1; }
  echo "ci: running the printed fix: $fix"
  $fix -q
  "${render[@]}" --out "$tmp/second"
  .venv/bin/datagen verify "$tmp/second" --samples 0 --no-progress  # files and decoding (GT checks are the tests')
else
  echo "ci: rendering worked straight after the pip install"
  .venv/bin/datagen verify "$tmp/first" --samples 0 --no-progress
fi
echo "ci: extra + render step done in $(( $(date +%s) - t0 )) s"

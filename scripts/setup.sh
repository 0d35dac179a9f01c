#!/usr/bin/env bash
# One-command setup: a virtual environment in .venv with the project and its test tools installed.
# Usage: bash scripts/setup.sh                       (re-running it is safe and quick)
#        EXTRAS=cluster bash scripts/setup.sh        also an extra (cluster, photoreal; comma-separated)
# Install extras this way, or re-run this script after any pip install: pip puts back pyrender's PyOpenGL pin
# (3.1.0), which this project's GL rendering cannot use (`datagen render` then says so and what to run).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -d .venv ] || "$PY" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
# torch is pinned: a bare `torch` requirement can pull a multi-GB CUDA build.
python -m pip install -q torch==2.13.0
python -m pip install -q -e ".[dev,browser${EXTRAS:+,$EXTRAS}]"
# pyrender 0.1.45 pins PyOpenGL==3.1.0, which cannot drive OSMesa; 3.1.10 works with EGL and OSMesa.
python -m pip install -q --no-deps PyOpenGL==3.1.10
# Optional software-GL fallback (EGL through Mesa needs nothing extra). Never fatal.
if ! ldconfig -p 2>/dev/null | grep -q libOSMesa; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get install -y -q libosmesa6 >/dev/null 2>&1 || (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q libosmesa6 >/dev/null 2>&1)) \
      || echo "note: libosmesa6 not installed; the EGL backend will be used" >&2
  fi
fi
# Debian's headless Chromium for the explorer's browser tests (Playwright drives it; they skip without it). Never
# fatal: without apt (or root / passwordless sudo) it warns and goes on. About 20 s and 100 MB of packages.
if [ -z "${SEMMATCH_CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo -n"
  if command -v apt-get >/dev/null && { [ -z "$SUDO" ] || sudo -n true 2>/dev/null; }; then
    APT="$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium"
    ($APT >/dev/null 2>&1 || ($SUDO apt-get update -q >/dev/null 2>&1 && $APT >/dev/null 2>&1)) \
      || echo "warning: chromium did not install; the browser tests (tests/datagen/test_explore.py) will skip" >&2
  else
    echo "warning: no apt-get with root or sudo: chromium not installed; tests/datagen/test_explore.py's browser tests will" \
      "skip (install Chromium, or set SEMMATCH_CHROMIUM to a Chromium binary)" >&2
  fi
fi
echo "setup done: activate with '. .venv/bin/activate'"

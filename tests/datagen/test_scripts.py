"""The datagen scripts under ``scripts/``: they import the installed packages (no ``sys.path`` edits) and run from
any folder; the photoreal benchmark lives in ``scripts/bench_photoreal.py`` (not in the package) and
``scripts/bench_datagen.py --renderer`` reuses it."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from datagen.photoreal import photoreal_available

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts"


def test_no_script_edits_sys_path():
    """The package is installed (``pip install -e .``, ``scripts/setup.sh``), so no script puts the checkout on
    ``sys.path`` itself."""
    edits = re.compile(r"sys\.path\.(insert|append)|sys\.path\s*\[.*\]\s*=|sys\.path\s*\+=")
    offenders = [p.name for p in sorted(SCRIPTS.glob("*.py")) if edits.search(p.read_text())]
    assert offenders == []


@pytest.mark.integration
@pytest.mark.parametrize(
    "script",
    [
        "bench_shards.py",
        "bench_gt_fidelity.py",
        "ray_render.py",
        "bench_datagen.py",
        "bench_photoreal.py",
        "bench_mesh_gt.py",
    ],
)
def test_script_runs_from_another_folder(script, tmp_path):
    """``--help`` from outside the checkout, without PYTHONPATH: the imports resolve to the installed package."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run(
        [sys.executable, str(SCRIPTS / script), "--help"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage:")


@pytest.fixture
def scripts(monkeypatch):
    """Import scripts by name, as they import their siblings when run (``scripts/`` first on ``sys.path``)."""
    import importlib

    monkeypatch.syspath_prepend(str(SCRIPTS))
    return importlib.import_module


@pytest.fixture
def no_bpy(monkeypatch):
    """``bpy`` cannot be found, as without the photoreal extra."""
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "bpy" else find_spec(name, *a))


def test_photoreal_bench_lives_in_scripts(scripts):
    """Benchmark code is not part of the package: ``scripts/bench_photoreal.py`` has it."""
    import importlib.util

    assert importlib.util.find_spec("datagen.photoreal.bench") is None
    bench = scripts("bench_photoreal")
    for name in ("agreement_by_family", "frame_seconds", "pair_seconds", "pair_figure", "cpu_seconds"):
        assert callable(getattr(bench, name))


def test_bench_datagen_renderer_option(scripts):
    bench = scripts("bench_datagen")
    assert bench.renderers("pyrender") == ["pyrender"]
    assert bench.renderers("blenderproc") == ["blenderproc"]
    assert bench.renderers("pyrender, blenderproc,pyrender") == ["pyrender", "blenderproc"]
    for bad in ("cycles", "", "pyrender,cycles"):
        with pytest.raises(argparse.ArgumentTypeError, match="pyrender or blenderproc"):
            bench.renderers(bad)


@pytest.mark.parametrize("renderer", ["blenderproc", "pyrender,blenderproc"])
def test_bench_datagen_blenderproc_without_bpy_is_one_line(scripts, no_bpy, renderer, capsys):
    """Without the photoreal extra, ``--renderer blenderproc`` refuses before measuring anything, in one line."""
    bench = scripts("bench_datagen")
    assert bench.main(["--renderer", renderer, "--sizes", "32", "--pairs", "1", "--parallel", "0"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("bench_datagen: error: --renderer blenderproc: ") and err.count("\n") == 1
    assert "bpy" in err and "photoreal" in err


def test_bench_photoreal_without_bpy_is_one_line(scripts, no_bpy, capsys):
    assert scripts("bench_photoreal").main(["--pairs", "1", "--sizes", "32"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("bench_photoreal: error: ") and err.count("\n") == 1 and "bpy" in err


def _table_row(out: str, size: int) -> list[str]:
    rows = [line for line in out.splitlines() if line.startswith(f"| {size} |")]
    assert len(rows) == 1, out
    return [c.strip() for c in rows[0].strip("|").split("|")]


@pytest.mark.integration
def test_bench_datagen_pyrender_tiny_run(scripts, capsys):
    """The default (pyrender) table, measured on a tiny run."""
    bench = scripts("bench_datagen")
    args = ["--sizes", "32", "--pairs", "2", "--repeats", "1", "--parallel", "0", "--raster-views", "2"]
    assert bench.main(args) == 0
    out = capsys.readouterr().out
    row = _table_row(out, 32)
    assert float(row[1]) > 0 and float(row[2]) > 0  # pairs/s per core, pairs per CPU-s
    assert "blenderproc" not in out


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.skipif(not photoreal_available(), reason="bpy is not installed (the photoreal extra)")
def test_bench_datagen_blenderproc_tiny_run(scripts, capsys):
    """``--renderer blenderproc``: Cycles' seconds per frame and pairs/s per core beside pyrender's, one table."""
    bench = scripts("bench_datagen")
    args = ["--renderer", "blenderproc", "--sizes", "32", "--pairs", "1", "--frames", "1", "--samples", "1"]
    assert bench.main(args) == 0
    out = capsys.readouterr().out
    assert "Cycles s per frame" in out and "pyrender pairs/s per core" in out
    assert "raster-only" not in out  # the pyrender-only table was not asked for
    size, frame_s, cycles_s, cycles_rate, pyrender_s, pyrender_rate, ratio, dropped = _table_row(out, 32)
    assert float(frame_s) > 0 and float(cycles_s) > 0 and float(pyrender_s) > 0
    assert float(pyrender_rate) > float(cycles_rate) > 0
    assert int(dropped) >= 0

"""Verify a dataset folder: manifest, files, checksums, stock-webdataset readability, schema, docs/design.md §5.

:func:`verify_dataset` checks, and reports every problem it finds (naming the shard and sample):

1. ``dataset.json`` loads, and lists every shard ``0 .. n_shards - 1`` (a run that is not finished fails);
   no ``pairs-*.tar`` in the folder is left unlisted;
2. each listed shard exists with the recorded byte size and sha256;
3. each shard reads with stock ``webdataset.WebDataset`` (no custom tar code), every sample decodes and
   passes :func:`loaders.schema.check_sample`, keys are unique across the dataset, and each shard holds the
   recorded number of samples (and, for rendered data, images of the configured size);
4. the docs/design.md §5 invariants (:mod:`datagen.invariants`) on a seeded random subset of ``samples`` pairs.
"""

from __future__ import annotations

import importlib
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from datagen.shards import format_bytes
from loaders.dataset_manifest import DatasetManifest, ManifestError, ShardEntry, sha256_file

__all__ = ["ShardResult", "VerifyReport", "verify_dataset", "format_report"]


@dataclass
class ShardResult:
    """What checking one shard found."""

    index: int
    name: str
    decoded: int = 0  # samples that read and decode under the schema
    keys: list[str] = field(default_factory=list)
    file_problems: list[str] = field(default_factory=list)  # missing, size, sha256
    read_problems: list[str] = field(default_factory=list)  # tar, schema, counts
    invariant_problems: list[str] = field(default_factory=list)
    invariants: list[dict[str, Any]] = field(default_factory=list)  # one row per sampled pair

    @property
    def problems(self) -> list[str]:
        return self.file_problems + self.read_problems + self.invariant_problems


@dataclass
class VerifyReport:
    """The outcome of :func:`verify_dataset`; ``ok`` when ``problems`` is empty."""

    root: Path
    manifest: DatasetManifest | None = None
    shards: list[ShardResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    checksums: bool = True
    invariants_available: bool = True
    aggregate: dict[str, float] = field(default_factory=dict)  # dataset-level docs/design.md §5 numbers

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def invariant_rows(self) -> list[dict[str, Any]]:
        return [row for s in self.shards for row in s.invariants]


def _invariant_checker() -> Callable[[dict[str, Any]], tuple[dict[str, float], list[str]]] | None:
    """``check(sample) -> (metrics, failures)`` of docs/design.md §5, or None where ``datagen.invariants`` is
    missing."""
    try:
        invariants = importlib.import_module("datagen.invariants")
    except ModuleNotFoundError as e:
        if e.name != "datagen.invariants":
            raise
        return None

    def check(sample: dict[str, Any]) -> tuple[dict[str, float], list[str]]:
        metrics = invariants.evaluate(sample)
        return metrics, invariants.failures(metrics)

    return check


def _check_shard(
    root: str, entry: dict[str, Any], picks: list[int], checksums: bool, image_size: int | None
) -> ShardResult:
    import webdataset as wds

    from loaders.members import decode_sample
    from loaders.schema import SchemaError, has_dense

    entry_ = ShardEntry(**entry)
    path = Path(root) / entry_.name
    result = ShardResult(entry_.index, entry_.name)
    if not path.is_file():
        result.file_problems.append(f"{entry_.name}: listed in the manifest but missing")
        return result
    size = path.stat().st_size
    if size != entry_.bytes:
        result.file_problems.append(f"{entry_.name}: {size} bytes, the manifest says {entry_.bytes}")
    if checksums and sha256_file(path) != entry_.sha256:
        result.file_problems.append(f"{entry_.name}: sha256 differs from the manifest (corrupted or replaced)")
    check_invariants = _invariant_checker() if picks else None
    pending = set(picks)
    dataset = wds.WebDataset(str(path), shardshuffle=False, nodesplitter=None, workersplitter=None, empty_check=False)
    j = -1
    try:
        for j, members in enumerate(dataset):  # noqa: B007 (j reports how far reading got)
            key = members.get("__key__")
            try:
                sample = decode_sample(members)
            except SchemaError as e:
                result.read_problems.append(f"{entry_.name}: sample #{j} ({key}): {e}")
                continue
            result.decoded += 1
            result.keys.append(key)
            got = sample["meta"]["image_size0"]
            if image_size is not None and list(got) != [image_size, image_size]:
                result.read_problems.append(
                    f"{entry_.name}: sample {key}: image size {got}, the config says {image_size}"
                )
            if j in pending and check_invariants is not None and has_dense(sample):  # real pairs: sparse only
                pending.discard(j)
                metrics, failures = check_invariants(sample)
                same = bool(sample["meta"].get("same_instance", False))
                result.invariants.append({"key": key, "same": same, **metrics, "ok": not failures})
                if failures:
                    result.invariant_problems.append(f"{entry_.name}: sample {key}: DESIGN §5: {'; '.join(failures)}")
    except Exception as e:  # tar damage surfaces from the stock reader as various exception types
        where = "at its start" if j < 0 else f"after sample #{j}"
        reason = e.args[0] if e.args else type(e).__name__
        result.read_problems.append(f"{entry_.name}: stock webdataset cannot read it {where}: {reason}")
        result.read_problems.append(
            f"{entry_.name}: could read only {j + 1} of the {entry_.samples} samples the manifest lists"
        )
        return result
    count = j + 1
    if count != entry_.samples:
        result.read_problems.append(f"{entry_.name}: holds {count} samples, the manifest says {entry_.samples}")
    return result


def verify_dataset(
    root: str | Path, samples: int = 8, seed: int = 0, workers: int = 1, checksums: bool = True, progress: bool = True
) -> VerifyReport:
    """Check a dataset folder (see the module docstring).

    Args:
        root: the folder holding ``dataset.json``.
        samples: pairs drawn (seeded, without replacement, across all shards) for the docs/design.md §5 invariants.
        seed: seed of that draw.
        workers: processes checking shards in parallel.
        checksums: hash every shard (off: sizes only).
        progress: tqdm bar over shards.
    """
    report = VerifyReport(Path(root).absolute(), checksums=checksums)
    try:
        manifest = report.manifest = DatasetManifest.load(report.root)
    except ManifestError as e:
        report.problems.append(str(e))
        return report
    listed = {s.index for s in manifest.shards}
    missing = sorted(set(range(manifest.n_shards)) - listed)
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (", ..." if len(missing) > 10 else "")
        report.problems.append(
            f"incomplete: {len(missing)} of {manifest.n_shards} shards not listed ({shown}); "
            "finish the run with `datagen render ... --resume`"
        )
    names = {s.name for s in manifest.shards}
    report.problems += [f"{p.name}: in the folder but not in dataset.json" for p in sorted(report.root.glob("*.tar"))
                        if p.name not in names]  # fmt: skip
    entries = sorted(manifest.shards, key=lambda s: s.index)
    picks = _draw(entries, samples, seed)
    report.invariants_available = _invariant_checker() is not None
    config = manifest.generator.get("config", {}) if manifest.generator.get("name") == "datagen.render" else {}
    jobs = [(str(report.root), asdict(e), picks.get(e.index, []), checksums, config.get("size")) for e in entries]
    bar = tqdm(total=len(jobs), unit="shard", disable=not progress)
    if workers > 1 and len(jobs) > 1:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=ctx) as pool:
            for result in pool.map(_check_shard, *zip(*jobs)):
                report.shards.append(result)
                bar.update(1)
    else:
        for job in jobs:
            report.shards.append(_check_shard(*job))
            bar.update(1)
    bar.close()
    if report.invariants_available and report.invariant_rows:
        invariants = importlib.import_module("datagen.invariants")
        report.aggregate = invariants.aggregate(report.invariant_rows)
        report.problems += [f"DESIGN §5: {p}" for p in invariants.aggregate_failures(report.aggregate)]
    seen: dict[str, str] = {}
    for result in report.shards:
        report.problems += result.problems
        for key in result.keys:
            if key in seen:
                report.problems.append(f"{result.name}: sample key {key} also appears in {seen[key]}")
            seen[key] = result.name
    return report


def _draw(entries: list[ShardEntry], k: int, seed: int) -> dict[int, list[int]]:
    """Seeded choice of ``k`` samples across shards -> {shard index: [sample positions]}."""
    total = sum(e.samples for e in entries)
    if total == 0 or k <= 0:
        return {}
    flat = np.sort(np.random.default_rng(seed).choice(total, size=min(k, total), replace=False))
    starts = np.cumsum([0] + [e.samples for e in entries])
    picks: dict[int, list[int]] = {}
    for g in flat:
        s = int(np.searchsorted(starts, g, side="right") - 1)
        picks.setdefault(entries[s].index, []).append(int(g - starts[s]))
    return picks


def format_report(report: VerifyReport) -> str:
    """A summary table a person reads at a glance; problems are listed in full after it."""
    m = report.manifest
    lines = [f"dataset: {report.root}"]

    def row(check: str, ok: bool, text: str) -> None:
        lines.append(f"  {check:<11} {'ok  ' if ok else 'FAIL'}  {text}")

    if m is None:
        row("manifest", False, report.problems[0])
        return "\n".join(lines)
    cfg = m.generator.get("config", {})
    what = ", ".join(f"{k} {cfg[k]}" for k in ("category", "size", "seed") if k in cfg)
    listed = len(m.shards)
    row(
        "manifest", m.complete, f"{listed}/{m.n_shards} shards, {m.n_samples} pairs ({m.generator.get('name')}; {what})"
    )
    files_ok = not any(s.file_problems for s in report.shards)
    size = format_bytes(sum(s.bytes for s in m.shards))
    row("files", files_ok, f"{size}, sizes{' and sha256' if report.checksums else ''} checked")
    decoded = sum(s.decoded for s in report.shards)
    read_ok = not any(s.read_problems for s in report.shards) and decoded == m.n_samples
    row("decode", read_ok, f"{decoded}/{m.n_samples} samples read by stock webdataset and decode under the schema")
    inv = report.invariant_rows
    if not report.invariants_available:
        row("invariants", True, "skipped: datagen.invariants is not available in this install")
    else:
        n_bad = sum(not r["ok"] for r in inv)
        row("invariants", n_bad == 0, f"{len(inv) - n_bad}/{len(inv)} sampled pairs pass DESIGN §5")
        lines += _fidelity_rows(report.aggregate, row)
        lines += _invariant_table(inv)
    if report.problems:
        lines.append(f"{len(report.problems)} problem(s):")
        lines += [f"  - {p}" for p in report.problems]
    lines.append("OK" if report.ok else "FAILED")
    return "\n".join(lines)


def _fidelity_rows(agg: dict[str, Any], row: Callable[[str, bool, str], None]) -> list[str]:
    """The dataset-level docs/design.md §5 figures (pooled over the sampled pairs), one line each, then a table per
    part."""
    from datagen.invariants import (
        AGGREGATE_MIN_COUNTS,
        AGGREGATE_THRESHOLDS,
        AGGREGATE_THRESHOLDS_MESHES,
        RAW_CYCLE_TARGET,
    )

    rules = {**AGGREGATE_THRESHOLDS, **(AGGREGATE_THRESHOLDS_MESHES if agg.get("n_mesh_pairs") else {})}
    for key, (count, least, loose) in AGGREGATE_MIN_COUNTS.items():
        if agg.get(count, 0) < least:
            rules[key] = (rules[key][0], loose)

    def ok(key: str) -> bool:
        op, limit = rules[key]
        return agg[key] <= limit if op == "<=" else agg[key] >= limit

    def lim(key: str) -> str:
        op, limit = rules[key]
        return f"{op} {limit:.3g}" if limit > 1 else f"{op} {limit:.1%}".replace(".0%", "%")

    if "cycle_frac_within_1.5px" in agg:
        raw = agg["cycle_frac_within_1.5px"]
        text = (f"{raw:.2%} of {agg['n_cycle']} mutually valid pixels return within 1.5 px (raw bilinear, "
                f"cross-instance; {lim('cycle_frac_within_1.5px')}, target >= {RAW_CYCLE_TARGET:.0%} over >= 40 "
                "pairs")  # fmt: skip
        if "cycle_frac_within_1.5px_smooth" in agg:
            text += (f"); {agg['cycle_frac_within_1.5px_smooth']:.2%} of the {agg['n_cycle_smooth']} whose landing "
                     f"block sees one surface ({lim('cycle_frac_within_1.5px_smooth')})")  # fmt: skip
        else:
            text += ")"
        row("cycle", ok("cycle_frac_within_1.5px") and ok("cycle_frac_within_1.5px_smooth"), text)
    if "collapse_frac" in agg:
        worst = ""
        if "part_collapse_frac" in agg:
            worst = f"; worst part {agg['part_collapse_worst']} {agg['part_collapse_frac']:.2%} "
            worst += f"({lim('part_collapse_frac')})"
        row("stretch", ok("collapse_frac") and ("part_collapse_frac" not in agg or ok("part_collapse_frac")),
            f"{agg['collapse_frac']:.2%} of {agg['n_stretch']} measured pixels map beyond 10x of the pair's scale "
            f"({lim('collapse_frac')}{worst})")  # fmt: skip
    kp = "kp_frac_within_0.05"
    if kp in agg:
        row("keypoints", ok(kp), f"{agg[kp]:.2%} of {agg['n_kp']} keypoints visible in both views land within 0.05 of "
            f"the object's longer side ({lim(kp)})")  # fmt: skip
    if "lr_violations" in agg:
        row("left/right", agg["lr_violations"] == 0, f"{agg['lr_violations']} swaps in {agg['n_lr']} checks")
    if "off_mask_frac" in agg:
        row("on object", ok("off_mask_frac"), f"{agg['off_mask_frac']:.3%} of {agg['n_matched']} matched pixels "
            "land more than 1 px from the other view's object")  # fmt: skip
    if "valid_agreement" in agg:
        text = f"valid agrees with an independent test on {agg['valid_agreement']:.2%} of {agg['n_object']} object "
        row("visibility", ok("valid_agreement"), text + f"pixels (same-instance pairs; {lim('valid_agreement')})")
    parts = agg.get("parts") or {}
    if not parts:
        return []
    out = [f"    {'part':<16}{'pixels':>9}{'cycle<=1.5px':>14}{'smooth':>9}{'stretch px':>12}{'collapsed':>11}"]
    for name, p in parts.items():
        cyc = f"{p['n_cycle']:>9}{p['cycle_frac_within_1.5px']:>14.2%}{p['cycle_frac_within_1.5px_smooth']:>9.2%}"
        out.append(f"    {name:<16}{cyc}{p['n_stretch']:>12}{p['collapse_frac']:>11.2%}")
    return out


_TABLE_COLUMNS = {  # metric -> header, in display order
    "reproj_median_px": "reproj_med",
    "reproj_p99_px": "reproj_p99",
    "valid_agreement": "valid_agree",
    "cycle_frac_within_1.5px": "cycle<=1.5px",
    "cycle_frac_within_1.5px_smooth": "smooth",
    "collapse_frac": "collapsed",
    "kp_frac_within_0.05": "kp<=0.05",
    "lr_violations": "lr_viol",
}


def _invariant_table(rows: list[dict[str, Any]], limit: int = 12) -> list[str]:
    """One line per sampled pair with the docs/design.md §5 numbers ('-' where a check does not apply): the failing
    pairs first, at most ``limit`` lines."""
    if not rows:
        return []
    shown = sorted(rows, key=lambda r: r["ok"])[:limit]
    more = len(rows) - len(shown)
    rows = shown
    cols = [c for c in _TABLE_COLUMNS if any(c in r for r in rows)]
    out = ["    " + f"{'key':<15}{'pair':<6}" + "".join(f"{_TABLE_COLUMNS[c]:>13}" for c in cols) + "  ok"]
    for r in rows:
        cells = "".join(f"{r[c]:>13.4g}" if c in r else f"{'-':>13}" for c in cols)
        out.append(f"    {r['key']:<15}{'same' if r['same'] else 'cross':<6}{cells}  {'yes' if r['ok'] else 'NO'}")
    if more:
        out.append(f"    ... and {more} more passing pairs")
    return out

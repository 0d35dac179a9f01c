"""Verify a dataset folder: manifest, files, checksums, stock-webdataset readability, schema, docs/design.md §5.

:func:`verify_dataset` checks, and reports every problem it finds (naming the shard and sample):

1. ``dataset.json`` loads, and lists every shard ``0 .. n_shards - 1`` (a run that is not finished fails);
   no ``pairs-*.tar`` in the folder is left unlisted;
2. each listed shard exists with the recorded byte size and sha256;
3. each shard reads with stock ``webdataset.WebDataset`` (no custom tar code), every sample decodes and
   passes :func:`loaders.schema.check_sample`, keys are unique across the dataset, and each shard holds the
   recorded number of samples (and, for rendered data, images of the configured size);
4. the docs/design.md §5 invariants (:mod:`datagen.invariants`) on a seeded random subset of ``samples`` pairs.

One module, over ~400 lines: the four checks above and the report that pools them; the invariants themselves
live in :mod:`datagen.invariants`.
"""

from __future__ import annotations

import importlib
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from datagen.shards import format_bytes
from loaders.dataset_manifest import DatasetManifest, ManifestError, ShardEntry, sha256_file

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ShardResult",
    "VerifyReport",
    "verify_dataset",
    "report_frame",
    "format_report",
    "write_report",
]


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
                    result.invariant_problems.append(
                        f"{entry_.name}: sample {key}: docs/design.md §5: {'; '.join(failures)}"
                    )
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
        report.problems += [f"docs/design.md §5: {p}" for p in invariants.aggregate_failures(report.aggregate)]
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


SECTIONS = ("check", "part", "pair", "problem")
_TABLE_COLUMNS = {  # per-pair metric -> header of the printed table, in display order
    "reproj_median_px": "reproj_med",
    "reproj_p99_px": "reproj_p99",
    "valid_agreement": "valid_agree",
    "cycle_frac_within_1.5px": "cycle<=1.5px",
    "cycle_frac_within_1.5px_smooth": "smooth",
    "collapse_frac": "collapsed",
    "kp_frac_within_0.05": "kp<=0.05",
    "lr_violations": "lr_viol",
}
_PART_COLUMNS = ("n_cycle", "cycle_frac_within_1.5px", "cycle_frac_within_1.5px_smooth", "n_stretch", "collapse_frac")


def report_frame(report: VerifyReport) -> pd.DataFrame:
    """The report as one table, one row per item, ``section`` saying which kind:

    * ``check``: ``name`` (manifest, files, decode, invariants, then the dataset-level docs/design.md §5 figures:
      cycle, stretch, keypoints, left/right, on object, visibility), ``ok``, ``text`` (the printed line) and, for
      the figures, the pooled numbers they judge in the metric columns (e.g. ``cycle_frac_within_1.5px``,
      ``n_cycle``);
    * ``part``: ``name`` (a mesh part) with its pooled ``n_cycle``, ``cycle_frac_within_1.5px``,
      ``cycle_frac_within_1.5px_smooth``, ``n_stretch``, ``collapse_frac``;
    * ``pair``: ``name`` (the sample key), ``shard``, ``pair`` (``same``/``cross`` instance), ``ok`` and every
      number docs/design.md §5 measured on it (all sampled pairs, not only those printed);
    * ``problem``: ``text``, one row per problem (``ok`` False).

    Missing values are NA; counts (``n_*``, ``lr_violations``) are integers, fractions in [0, 1].
    """
    import pandas as pd

    rows: list[dict[str, Any]] = []

    def check(name: str, ok: bool, text: str, **numbers: Any) -> None:
        rows.append({"section": "check", "name": name, "ok": ok, "text": text, **numbers})

    m = report.manifest
    if m is None:
        check("manifest", False, report.problems[0])
    else:
        cfg = m.generator.get("config", {})
        what = ", ".join(f"{k} {cfg[k]}" for k in ("category", "size", "seed") if k in cfg)
        text = f"{len(m.shards)}/{m.n_shards} shards, {m.n_samples} pairs ({m.generator.get('name')}; {what})"
        check("manifest", m.complete, text)
        files_ok = not any(s.file_problems for s in report.shards)
        size = format_bytes(sum(s.bytes for s in m.shards))
        check("files", files_ok, f"{size}, sizes{' and sha256' if report.checksums else ''} checked")
        decoded = sum(s.decoded for s in report.shards)
        read_ok = not any(s.read_problems for s in report.shards) and decoded == m.n_samples
        check(
            "decode", read_ok, f"{decoded}/{m.n_samples} samples read by stock webdataset and decode under the schema"
        )
        inv = report.invariant_rows
        if not report.invariants_available:
            check("invariants", True, "skipped: datagen.invariants is not available in this install")
        else:
            n_bad = sum(not r["ok"] for r in inv)
            check("invariants", n_bad == 0, f"{len(inv) - n_bad}/{len(inv)} sampled pairs pass docs/design.md §5")
            rows.extend(_fidelity_checks(report.aggregate))
            for name, p in (report.aggregate.get("parts") or {}).items():
                rows.append({"section": "part", "name": name, **{k: p[k] for k in _PART_COLUMNS}})
            for shard in report.shards:
                for r in shard.invariants:
                    numbers = {k: v for k, v in r.items() if k not in ("key", "same", "ok") and _is_number(v)}
                    pair = "same" if r["same"] else "cross"
                    rows.append({"section": "pair", "name": r["key"], "shard": shard.name, "pair": pair,
                                 "ok": r["ok"], **numbers})  # fmt: skip
    rows += [{"section": "problem", "ok": False, "text": p} for p in report.problems]
    frame = pd.DataFrame(rows)
    first = ["section", "name", "ok", "shard", "pair", "text"]
    metrics = [c for c in _TABLE_COLUMNS if c in frame] + [
        c for c in frame if c not in first and c not in _TABLE_COLUMNS
    ]
    frame = frame.reindex(columns=first + metrics)
    frame["ok"] = frame["ok"].astype("boolean")
    for c in metrics:
        if c.startswith("n_") or c == "lr_violations":
            v = pd.to_numeric(frame[c])
            if ((v.dropna() % 1) == 0).all():
                frame[c] = v.astype("Int64")
    return frame


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool | np.bool_)


def format_report(report: VerifyReport, frame: pd.DataFrame | None = None) -> str:
    """A summary a person reads at a glance, built from :func:`report_frame` (pass ``frame`` to reuse one): the
    check lines, a table per part, the sampled pairs (failing first, at most 12), then every problem in full."""
    frame = report_frame(report) if frame is None else frame
    lines = [f"dataset: {report.root}"]
    for r in _records(frame, "check"):
        lines.append(f"  {r['name']:<11} {'ok  ' if r['ok'] else 'FAIL'}  {r['text']}")
    if report.manifest is None:
        return "\n".join(lines)
    lines += _part_table(_records(frame, "part"))
    lines += _invariant_table(_records(frame, "pair"))
    problems = [r["text"] for r in _records(frame, "problem")]
    if problems:
        lines.append(f"{len(problems)} problem(s):")
        lines += [f"  - {p}" for p in problems]
    lines.append("OK" if report.ok else "FAILED")
    return "\n".join(lines)


def write_report(frame: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """Write :func:`report_frame`'s table in the format ``path``'s suffix names (:func:`loaders.tables.write_table`):
    ``.csv`` (the whole table, full precision, empty cells for NA), ``.json`` (a list of row records, NA as null) or
    ``.md`` (one Markdown table per section, holding only the columns that section fills)."""
    from loaders.tables import check_suffix, write_table

    return write_table(frame, check_suffix(path), _markdown(frame, title))


def _records(frame: pd.DataFrame, section: str | None = None) -> list[dict[str, Any]]:
    """Rows as plain-Python dicts (NA as None), all or one section's."""
    from loaders.tables import frame_records

    return frame_records(frame if section is None else frame[frame["section"] == section])


def _markdown(frame: pd.DataFrame, title: str) -> str:
    """One Markdown table per section (its non-empty columns; numbers to 4 significant digits)."""
    out = [f"# {title}", ""] if title else []
    for section in SECTIONS:
        part = frame[frame["section"] == section].drop(columns="section").dropna(axis=1, how="all")
        if part.empty:
            continue
        cols = list(part.columns)
        out += [f"## {section}s", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for r in _records(part):
            cells = ["" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v) for v in r.values()]
            out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        out.append("")
    return "\n".join(out)


def _fidelity_checks(agg: dict[str, Any]) -> list[dict[str, Any]]:
    """The dataset-level docs/design.md §5 figures (pooled over the sampled pairs) as check rows, each with the
    numbers it judges."""
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
    rows: list[dict[str, Any]] = []

    def row(name: str, ok: bool, text: str, *keys: str) -> None:
        numbers = {k: agg[k] for k in keys if k in agg}
        rows.append({"section": "check", "name": name, "ok": ok, "text": text, **numbers})

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
        row("cycle", ok("cycle_frac_within_1.5px") and ok("cycle_frac_within_1.5px_smooth"), text,
            "cycle_frac_within_1.5px", "n_cycle", "cycle_frac_within_1.5px_smooth", "n_cycle_smooth")  # fmt: skip
    if "collapse_frac" in agg:
        worst = ""
        if "part_collapse_frac" in agg:
            worst = f"; worst part {agg['part_collapse_worst']} {agg['part_collapse_frac']:.2%} "
            worst += f"({lim('part_collapse_frac')})"
        row("stretch", ok("collapse_frac") and ("part_collapse_frac" not in agg or ok("part_collapse_frac")),
            f"{agg['collapse_frac']:.2%} of {agg['n_stretch']} measured pixels map beyond 10x of the pair's scale "
            f"({lim('collapse_frac')}{worst})", "collapse_frac", "n_stretch", "part_collapse_frac")  # fmt: skip
    kp = "kp_frac_within_0.05"
    if kp in agg:
        row("keypoints", ok(kp), f"{agg[kp]:.2%} of {agg['n_kp']} keypoints visible in both views land within 0.05 of "
            f"the object's longer side ({lim(kp)})", kp, "n_kp")  # fmt: skip
    if "lr_violations" in agg:
        row("left/right", agg["lr_violations"] == 0, f"{agg['lr_violations']} swaps in {agg['n_lr']} checks",
            "lr_violations", "n_lr")  # fmt: skip
    if "off_mask_frac" in agg:
        row("on object", ok("off_mask_frac"), f"{agg['off_mask_frac']:.3%} of {agg['n_matched']} matched pixels "
            "land more than 1 px from the other view's object", "off_mask_frac", "n_matched")  # fmt: skip
    if "valid_agreement" in agg:
        text = f"valid agrees with an independent test on {agg['valid_agreement']:.2%} of {agg['n_object']} object "
        row("visibility", ok("valid_agreement"), text + f"pixels (same-instance pairs; {lim('valid_agreement')})",
            "valid_agreement", "n_object")  # fmt: skip
    return rows


def _part_table(parts: list[dict[str, Any]]) -> list[str]:
    """The per-part pooled figures, one line each."""
    if not parts:
        return []
    out = [f"    {'part':<16}{'pixels':>9}{'cycle<=1.5px':>14}{'smooth':>9}{'stretch px':>12}{'collapsed':>11}"]
    for p in parts:
        cyc = f"{p['n_cycle']:>9}{_pct(p['cycle_frac_within_1.5px'], 14)}{_pct(p['cycle_frac_within_1.5px_smooth'], 9)}"
        out.append(f"    {p['name']:<16}{cyc}{p['n_stretch']:>12}{_pct(p['collapse_frac'], 11)}")
    return out


def _pct(v: float | None, width: int) -> str:
    return f"{float('nan') if v is None else v:>{width}.2%}"


def _invariant_table(rows: list[dict[str, Any]], limit: int = 12) -> list[str]:
    """One line per sampled pair with the docs/design.md §5 numbers ('-' where a check does not apply): the failing
    pairs first, at most ``limit`` lines."""
    if not rows:
        return []
    shown = sorted(rows, key=lambda r: r["ok"])[:limit]
    more = len(rows) - len(shown)
    cols = [c for c in _TABLE_COLUMNS if any(r.get(c) is not None for r in shown)]
    out = ["    " + f"{'key':<15}{'pair':<6}" + "".join(f"{_TABLE_COLUMNS[c]:>13}" for c in cols) + "  ok"]
    for r in shown:
        cells = "".join(f"{r[c]:>13.4g}" if r.get(c) is not None else f"{'-':>13}" for c in cols)
        out.append(f"    {r['name']:<15}{r['pair']:<6}{cells}  {'yes' if r['ok'] else 'NO'}")
    if more:
        out.append(f"    ... and {more} more passing pairs")
    return out

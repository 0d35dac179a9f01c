"""``semmatch eval``: PCK on SPair-71k / PF-PASCAL / AP-10K (peers' protocol), or PCK + dense EPE on pair shards.

Examples::

    semmatch eval --checkpoint runs/x/ckpt-best --dataset spair --root data/SPair-71k --split test
    semmatch eval --checkpoint sift --dataset pfpascal --root data/PF-dataset-PASCAL --per-category 20
    semmatch eval --checkpoint zero-shot:weights/vggt1b.pt --shards out/chair-test

Defaults follow the peers (reference/benchmarks.md §B.5): SPair-71k and AP-10K use the target-bbox threshold and
α = 0.01/0.05/0.1; PF-PASCAL uses the image threshold and α = 0.05/0.1/0.15; PCK is averaged per image.
Writes into ``--out``: the per-category table (one DataFrame, training/eval/report.py) as ``pck.md`` (percent,
for reading) and ``pck.csv`` (fractions, for notebooks: ``pandas.read_csv``), ``pck.json`` (settings and summary),
``pairs.jsonl`` (per-pair predictions and errors) and ``pck_curve.png``. ``--format`` picks what is printed: the
Markdown table (default), or the same table as CSV or JSON records (then the "wrote ..." line goes to stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval",
        help="PCK (and dense EPE on shards) of a matcher",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[2:]),
    )
    p.add_argument(
        "--checkpoint", required=True, help="checkpoint folder/file, 'sift[:opts]', 'identity' or 'zero-shot:<w|tiny>'"
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", choices=("spair", "pfpascal", "ap10k"), help="real benchmark (with --root)")
    src.add_argument("--shards", type=Path, help="a folder of pair shards (dataset.json + pairs-*.tar)")
    p.add_argument("--root", type=Path, help="the benchmark folder (SPair-71k, PF-dataset-PASCAL, ap-10k)")
    p.add_argument("--split", default="test", help="benchmark split (default test; AP-10K: test_cross_species, ...)")
    p.add_argument("--categories", nargs="+", help="only these categories")
    p.add_argument("--per-category", type=int, default=0, help="at most N pairs per category (0 = all, as papers)")
    p.add_argument("--limit", type=int, help="shards: at most N samples")
    p.add_argument("--alpha", type=float, nargs="+", help="PCK thresholds α (default per dataset)")
    p.add_argument("--threshold", choices=("bbox", "img"), help="α · max side of the target bbox or image")
    p.add_argument("--average", choices=("image", "keypoint"), default="image", help="PCK averaging (default image)")
    p.add_argument("--size", type=int, default=518, help="model frame side in px (default 518)")
    p.add_argument("--resize", choices=("pad", "stretch"), default="pad", help="how images enter the model frame")
    p.add_argument("--device", default=None, help="torch device (default cuda when available)")
    p.add_argument("--seed", type=int, default=0, help="seed of --per-category sampling")
    p.add_argument("--out", type=Path, help="output folder (default eval-<dataset|shards>-<split>)")
    p.add_argument("--skip-bad", action="store_true", help="shards: pass over (and count) samples that do not read")
    p.add_argument("--format", choices=("md", "csv", "json"), default="md", help="printed table (default md)")
    p.add_argument("--html", type=Path, help="also write an interactive HTML report (PCK, worst pairs first)")
    p.add_argument("--html-pairs", type=int, default=30, help="pairs in the HTML report (default 30)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from datagen.real import DatasetFormatError, read_pairs
    from loaders.dataset_manifest import ManifestError
    from loaders.schema import SchemaError
    from loaders.sources import ShardError
    from training.eval.benchmark import subsample_pairs
    from training.eval.matchers import load_eval_matcher
    from training.eval.pck import DEFAULT_ALPHAS, DEFAULT_THRESHOLD

    name = args.dataset or "shards"
    alphas = tuple(args.alpha or DEFAULT_ALPHAS.get(name, (0.01, 0.05, 0.1)))
    threshold = args.threshold or DEFAULT_THRESHOLD.get(name, "bbox")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    out = args.out or Path(f"eval-{name}-{args.split if args.dataset else args.shards.name}")
    if args.dataset and args.root is None:
        print("semmatch eval: --dataset needs --root", file=sys.stderr)
        return 2
    try:
        pairs = None
        if args.dataset:  # validate the whole split before loading a model
            pairs = subsample_pairs(
                read_pairs(args.dataset, args.root, args.split, args.categories), args.per_category, args.seed
            )
        matcher = load_eval_matcher(args.checkpoint, device)
    except (DatasetFormatError, FileNotFoundError, RuntimeError, ValueError) as e:
        print(f"semmatch eval: {e}", file=sys.stderr)
        return 2
    try:
        out.mkdir(parents=True, exist_ok=True)
        return _evaluate(args, name, alphas, threshold, device, out, pairs, matcher)
    except (DatasetFormatError, SchemaError, ShardError, ManifestError, OSError) as e:  # bad data met on the way
        print(f"semmatch eval: {e}", file=sys.stderr)
        return 2


def _evaluate(args, name, alphas, threshold, device, out, pairs, matcher) -> int:
    from training.eval.benchmark import evaluate_pairs
    from training.eval.matchers import describe_matcher
    from training.eval.report import format_table, markdown_table, pck_frame, plot_pck_curve, write_json, write_table
    from training.eval.synthetic import evaluate_shards

    t0 = time.perf_counter()
    record: dict = {
        "checkpoint": args.checkpoint,
        "dataset": name,
        "root": str(args.root or args.shards),
        "split": args.split if args.dataset else None,
        "threshold": threshold,
        "average": args.average,
        "size": args.size,
        "resize": args.resize,
        "device": device,
    }
    if pairs is not None:
        acc, per_pair = evaluate_pairs(matcher, pairs, threshold, args.size, args.resize, device)
        with open(out / "pairs.jsonl", "w") as f:
            f.writelines(json.dumps(r, separators=(",", ":")) + "\n" for r in per_pair)
    else:
        acc, dense = evaluate_shards(
            matcher, args.shards, threshold, args.size, args.resize, device, args.limit, skip_bad=args.skip_bad
        )
        record["dense"] = dense.summary()
        record["skipped_samples"] = len(dense.skipped)
        if dense.skipped:
            print(f"skipped {len(dense.skipped)} bad sample(s); the first: {dense.skipped[0]}", file=sys.stderr)
    record["seconds"] = round(time.perf_counter() - t0, 2)
    summary = acc.summary(alphas, args.average)
    record["summary"] = summary
    label = describe_matcher(args.checkpoint)
    title = f"{label} on {name}" + (f" {args.split}" if args.dataset else "") + f" (threshold {threshold})"
    frame = pck_frame(summary, threshold)
    table = markdown_table(frame, title) if acc.pairs else f"### {title}\n\nno pair with mutually visible keypoints\n"
    if "dense" in record:
        d = record["dense"]["all"]
        if d["pixels"]:
            table += (
                f"\ndense EPE over {d['pixels']} valid pixels: mean {d['epe_mean']:.2f} px, median "
                f"{d['epe_median']:.2f} px, within 1/3/5/10 px: "
                + " / ".join(f"{100 * d[f'within_{t}px']:.1f}%" for t in (1, 3, 5, 10))
                + "\n"
            )
    if args.format == "md":
        print(table)
    else:  # the table alone on stdout, for a pipe; notes to stderr
        print(format_table(frame, args.format), end="")
    notes = sys.stdout if args.format == "md" else sys.stderr
    (out / "pck.md").write_text(table)
    write_table(frame, out / "pck.csv")
    write_json(out / "pck.json", record)
    if acc.pairs:
        plot_pck_curve({label: acc}, out / "pck_curve.png", args.average, title, marks=alphas)
    written = (
        ["pck.md", "pck.csv", "pck.json"]
        + (["pairs.jsonl"] if pairs is not None else [])
        + (["pck_curve.png"] if acc.pairs else [])
    )
    print(f"wrote {', '.join(str(out / n) for n in written)}", file=notes)
    if args.html:
        from training.report_html import eval_html

        print(f"wrote {eval_html(args, acc, record, pairs, matcher, device, out)}", file=notes)
    return 0

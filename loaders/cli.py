"""``python -m loaders``: look at a data manifest before training (``stats``, ``verify``; see :data:`EPILOG`).

``stats`` builds one pandas DataFrame per table it prints (:func:`sources_frame`, :func:`mixture_frame`, the speed
table) and prints them as Markdown with :func:`loaders.tables.frame_markdown`; ``--report`` writes them with
:func:`loaders.tables.write_tables`."""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter

__all__ = ["main", "build_parser"]

DESCRIPTION = "Look at a data manifest before training."
EPILOG = """\
commands:
  stats DATA    three Markdown tables: the sources (path, weight, shards, samples, bytes), the mixture actually
                drawn over -k samples of the resampled stream against the weights asked, and the speed in this
                process (samples read, decoded (+ transformed) pairs/s); --report PATH also writes them as .md,
                .csv (one table, a "table" column naming which) or .json ({table: rows})
  verify DATA   check every shard against its dataset.json (size and sha256)

DATA is a YAML data manifest, or one or more dataset folders (with dataset.json) and shard specs (tar files,
brace patterns, globs): each folder is a source of its own, the loose shards together form one.

examples:
  python -m loaders stats manifests/data/chair.yaml
  python -m loaders stats manifests/data/mixed.yaml --report stats.csv
  python -m loaders verify data/synthetic/chair --mode size
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m loaders",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    st = sub.add_parser("stats", help="sources, sample counts, drawn mixture and decoding speed of a data manifest")
    st.add_argument("data", nargs="+", help="a data manifest (manifests/data/*.yaml), dataset folders or shards")
    st.add_argument("--data-root", default=None, help="override the manifest's data_root")
    st.add_argument("-k", "--samples", type=int, default=1000, help="draws for the mixture (default 1000)")
    st.add_argument("--decode", type=int, default=32, help="pairs to decode for the speed (default 32; 0 skips)")
    st.add_argument("--seed", type=int, default=0)
    st.add_argument(
        "--transforms", default="vggt_crop", choices=["none", "vggt_crop", "train"], help="what the timed pairs get"
    )
    st.add_argument(
        "--report", default=None, metavar="PATH", help="also write the tables to PATH: .md, .csv or .json (by suffix)"
    )
    st.set_defaults(func=_stats)
    ve = sub.add_parser("verify", help="check shards against their dataset.json (size, sha256)")
    ve.add_argument("data", nargs="+", help="a data manifest, dataset folders or shards")
    ve.add_argument("--data-root", default=None)
    ve.add_argument("--mode", default="sha256", choices=["size", "sha256"])
    ve.set_defaults(func=_verify)
    return parser


def _pipeline(name: str):
    from loaders.augment import ColorJitter, Compose, RandomAffine, RandomHFlip, RandomSwap, VggtPreprocess

    if name == "none":
        return None
    if name == "vggt_crop":
        return Compose([VggtPreprocess("crop")])
    return Compose(
        [RandomAffine((518, 518), scale=(1.0, 1.25), rotate_deg=10), RandomHFlip(0.5), ColorJitter(), RandomSwap()]
    )


def _sources(specs: list[str], data_root: str | None) -> tuple[list, str]:
    """The sources of ``DATA`` (see the module doc) and a header line saying where they come from."""
    from pathlib import Path

    from loaders.data_manifest import DataManifest, Source
    from loaders.sources import expand_spec

    if len(specs) == 1 and specs[0].endswith((".yaml", ".yml")):
        manifest = DataManifest.load(specs[0], data_root=data_root)
        return manifest.resolve(), f"manifest  {specs[0]}\ndata_root {manifest.data_root}"
    if any(s.endswith((".yaml", ".yml")) for s in specs):
        raise ValueError("give one data manifest, or dataset folders and shards, not both")
    sources, loose = [], []
    for spec in specs:
        path = Path(data_root or "", spec)
        if path.is_dir() or path.name == "dataset.json":
            folder = path if path.is_dir() else path.parent
            sources.append(Source(name=folder.resolve().name, shards=expand_spec(spec, base=data_root)))
        else:
            loose += expand_spec(spec, base=data_root)
    if loose:
        sources.append(Source(name="shards", shards=loose))
    return sources, f"data      {' '.join(specs)}"


def _size(n: float) -> str:
    """``1234567`` -> ``"1.2 MB"`` (decimal units, as ``datagen`` prints sizes)."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def _source_path(source) -> str | None:
    """Where a source's shards are: their folder when they share one, else the first shard."""
    import posixpath

    urls = [r.url for r in source.shards]
    if not urls:
        return None
    folders = {posixpath.dirname(u) for u in urls}
    if len(folders) == 1 and folders != {""} and not urls[0].startswith("pipe:"):
        return folders.pop()
    return urls[0]


def sources_frame(sources: list):
    """One row per source: ``source``, ``path`` (see :func:`_source_path`), ``weight``, ``share`` (of the summed
    weights), ``shards``, ``samples`` and ``bytes`` (NA when some shard's count or size is unknown)."""
    import pandas as pd

    total_w = sum(s.weight for s in sources)

    def known(values: list) -> int | None:
        return None if any(v is None for v in values) else sum(values)

    rows = [
        {
            "source": s.name,
            "path": _source_path(s),
            "weight": float(s.weight),
            "share": s.weight / total_w,
            "shards": len(s.shards),
            "samples": s.n_samples,
            "bytes": known([r.nbytes for r in s.shards]),
        }
        for s in sources
    ]
    frame = pd.DataFrame(rows, columns=["source", "path", "weight", "share", "shards", "samples", "bytes"])
    return frame.astype({"shards": "int64", "samples": "Int64", "bytes": "Int64"})


def mixture_frame(sources: list, drawn: Counter, epoch: int):
    """One row per source: ``drawn`` (samples of ``epoch`` draws), ``drawn_share`` and ``asked_share`` (its weight's
    share)."""
    import pandas as pd

    total_w = sum(s.weight for s in sources)
    rows = [
        {"source": s.name, "drawn": drawn[s.name], "drawn_share": drawn[s.name] / epoch,
         "asked_share": s.weight / total_w}
        for s in sources
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=["source", "drawn", "drawn_share", "asked_share"]).astype({"drawn": "int64"})


SOURCE_FORMATS = {"weight": "g", "share": ".3f", "bytes": _size}
MIXTURE_FORMATS = {"drawn_share": ".3f", "asked_share": ".3f"}
SPEED_FORMATS = {"seconds": ".2f", "per_s": ".1f"}


def _stats(args: argparse.Namespace) -> int:
    import pandas as pd

    from loaders.stream import PairStream
    from loaders.tables import check_suffix, frame_markdown, write_tables

    report = check_suffix(args.report) if args.report else None  # a wrong suffix fails before any work
    sources, header = _sources(args.data, args.data_root)
    tables = {"sources": sources_frame(sources)}
    blocks = [header + "\n", "sources:\n\n" + frame_markdown(tables["sources"], SOURCE_FORMATS, na="?")]
    print(blocks[0])
    print(blocks[1])
    epoch = max(args.samples, 1)
    raw = PairStream(sources, mode="resampled", seed=args.seed, epoch_samples=epoch, decode=False, progress=False)
    t0 = time.perf_counter()
    drawn = Counter(item["source"] for item in raw)
    dt = time.perf_counter() - t0
    tables["mixture"] = mixture_frame(sources, drawn, epoch)
    caption = f"mixture drawn over {epoch} samples (resampled, seed {args.seed}; {epoch / dt:.0f} samples/s read):"
    blocks.append(f"{caption}\n\n" + frame_markdown(tables["mixture"], MIXTURE_FORMATS))
    print(blocks[-1])
    speed = [{"stage": "read", "n": epoch, "unit": "samples (not decoded)", "seconds": dt, "per_s": epoch / dt,
              "transforms": None}]  # fmt: skip
    if args.decode > 0:
        import cv2
        import torch

        torch.set_num_threads(1)
        cv2.setNumThreads(1)
        from loaders.loader import PairLoader

        stream = PairStream(
            sources,
            mode="resampled",
            seed=args.seed,
            epoch_samples=args.decode,
            transform=_pipeline(args.transforms),
            progress=False,
        )
        t0 = time.perf_counter()
        n = sum(len(b["key"]) for b in PairLoader(stream, batch_size=min(8, args.decode)))
        dt = time.perf_counter() - t0
        speed.append({"stage": "decode", "n": n, "unit": "pairs into float32 batches", "seconds": dt,
                      "per_s": n / dt, "transforms": args.transforms})  # fmt: skip
    tables["speed"] = pd.DataFrame(speed, columns=["stage", "n", "unit", "seconds", "per_s", "transforms"])
    blocks.append("speed (1 process; decoding on 1 thread):\n\n" + frame_markdown(tables["speed"], SPEED_FORMATS))
    print(blocks[-1], end="")
    if report is not None:
        write_tables(tables, report, "\n".join(blocks))
        print(f"\nreport: {report}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from loaders.sources import verify_shards

    problems = []
    for s in _sources(args.data, args.data_root)[0]:
        problems += verify_shards(s.shards, args.mode)
    for p in problems:
        print(p, file=sys.stderr)
    print(f"{len(problems)} problem(s)")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, RuntimeError, OSError) as e:  # manifest/shard errors: one clear line, no traceback
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

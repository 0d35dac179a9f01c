"""``python -m loaders``: look at a data manifest before training (``stats``, ``verify``; see :data:`EPILOG`)."""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter

__all__ = ["main", "build_parser"]

DESCRIPTION = "Look at a data manifest before training."
EPILOG = """\
commands:
  stats DATA    the sources (weights, shards, samples), the mixture actually drawn over -k samples of the
                resampled stream, and decoded (+ transformed) pairs/s in this process
  verify DATA   check every shard against its dataset.json (size and sha256)

DATA is a YAML data manifest, or one or more dataset folders (with dataset.json) and shard specs (tar files,
brace patterns, globs): each folder is a source of its own, the loose shards together form one.

examples:
  python -m loaders stats manifests/data/chair.yaml
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


def _stats(args: argparse.Namespace) -> int:
    from loaders.stream import PairStream

    sources, header = _sources(args.data, args.data_root)
    print(header + "\n")
    total_w = sum(s.weight for s in sources)
    print(f"{'source':<16}{'weight':>8}{'share':>8}{'shards':>8}{'samples':>10}  first shard")
    for s in sources:
        n = "?" if s.n_samples is None else str(s.n_samples)
        first = s.shards[0].url if s.shards else "-"
        print(f"{s.name:<16}{s.weight:>8g}{s.weight / total_w:>8.3f}{len(s.shards):>8}{n:>10}  {first}")
    epoch = max(args.samples, 1)
    raw = PairStream(sources, mode="resampled", seed=args.seed, epoch_samples=epoch, decode=False, progress=False)
    t0 = time.perf_counter()
    drawn = Counter(item["source"] for item in raw)
    dt = time.perf_counter() - t0
    print(f"\nmixture drawn over {epoch} samples (resampled, seed {args.seed}; {epoch / dt:.0f} samples/s read):")
    for s in sources:
        print(f"  {s.name:<16}{drawn[s.name] / epoch:>8.3f}  ({drawn[s.name]}; weight share {s.weight / total_w:.3f})")
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
        print(
            f"\ndecoded pairs/s into float32 batches (1 process, 1 thread, transforms: {args.transforms}): "
            f"{n / dt:.1f}  [{n} pairs in {dt:.2f} s]"
        )
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

"""``python -m loaders``: look at a data manifest before training.

* ``stats MANIFEST``: the sources (weights, shards, samples), the mixture actually drawn over ``-k`` samples of
  the resampled stream, and decoded (+ transformed) pairs/s in this process.
* ``verify MANIFEST``: check every shard against its ``dataset.json`` (size and sha256).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m loaders", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    st = sub.add_parser("stats", help="sources, sample counts, drawn mixture and decoding speed of a data manifest")
    st.add_argument("manifest", help="a YAML data manifest (manifests/data/*.yaml)")
    st.add_argument("--data-root", default=None, help="override the manifest's data_root")
    st.add_argument("-k", "--samples", type=int, default=1000, help="draws for the mixture (default 1000)")
    st.add_argument("--decode", type=int, default=32, help="pairs to decode for the speed (default 32; 0 skips)")
    st.add_argument("--seed", type=int, default=0)
    st.add_argument(
        "--transforms", default="vggt_crop", choices=["none", "vggt_crop", "train"], help="what the timed pairs get"
    )
    st.set_defaults(func=_stats)
    ve = sub.add_parser("verify", help="check shards against their dataset.json (size, sha256)")
    ve.add_argument("manifest")
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


def _stats(args: argparse.Namespace) -> int:
    from loaders.data_manifest import DataManifest
    from loaders.stream import PairStream

    manifest = DataManifest.load(args.manifest, data_root=args.data_root)
    sources = manifest.resolve()
    print(f"manifest  {args.manifest}\ndata_root {manifest.data_root}\n")
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
    from loaders.data_manifest import DataManifest
    from loaders.sources import verify_shards

    problems = []
    for s in DataManifest.load(args.manifest, data_root=args.data_root).resolve():
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

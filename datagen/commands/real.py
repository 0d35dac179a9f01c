"""``datagen real``: write real benchmark pairs (plain, augmented, or warp pairs) into pair shards.

Examples::

    datagen real --dataset spair --root data/SPair-71k --split trn --out data/spair-trn --augment 2
    datagen real --dataset ap10k --root data/ap-10k --split trn --out data/ap10k-warp --warp --warps 3
    datagen real --dataset pfpascal --root data/PF-dataset-PASCAL --split trn --out data/pfp --resume

The split is read and validated before anything is written (a missing or malformed file is reported by name);
shards appear atomically, so an interrupted run leaves only complete shards and ``--resume`` finishes it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["register", "run"]

PROG = "datagen real"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "real",
        help="write real benchmark pairs (augmented or warped) into shards",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[2:]),
    )
    p.add_argument("--dataset", required=True, choices=("spair", "pfpascal", "ap10k"), help="benchmark format")
    p.add_argument("--root", required=True, type=Path, help="the benchmark folder")
    p.add_argument("--split", default="trn", help="split to read; default trn")
    p.add_argument("--out", required=True, type=Path, help="output folder (new, empty, or this dataset's)")
    p.add_argument("--categories", nargs="+", help="only these categories")
    p.add_argument("--size", type=int, default=518, help="longer side (plain) / square side (augmented); default 518")
    p.add_argument("--augment", type=int, default=0, help="augmented copies per pair besides the plain one; default 0")
    p.add_argument("--flip-p", type=float, default=0.5, help="probability of mirroring each view; default 0.5")
    p.add_argument("--scale", type=float, nargs=2, default=(1.0, 1.3), help="zoom range; default 1.0 1.3")
    p.add_argument("--rotate", type=float, default=10.0, help="rotation range in degrees (±); default 10")
    p.add_argument("--translate", type=float, default=0.05, help="shift range, fraction of size; default 0.05")
    p.add_argument("--jitter", type=float, default=0.2, help="brightness/contrast/saturation ±; default 0.2")
    p.add_argument("--hue", type=float, default=0.02, help="hue shift ± (turns); default 0.02")
    p.add_argument("--warp", action="store_true", help="make warp pairs from single images (exact dense GT)")
    p.add_argument("--warps", type=int, default=1, help="warps per image in --warp mode; default 1")
    p.add_argument("--warp-kind", default="mixed", choices=("homography", "tps", "mixed"), help="default mixed")
    p.add_argument("--warp-strength", type=float, default=0.2, help="warp strength in (0, 0.5]; default 0.2")
    p.add_argument("--seed", type=int, default=0, help="root seed; default 0")
    p.add_argument("--shard-size", type=int, default=100, help="samples per shard; default 100")
    p.add_argument("--resume", action="store_true", help="keep complete shards of this dataset, make the rest")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _error(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from datagen.dataset_dir import DatasetDir, OutputFolderError
    from datagen.real import DatasetFormatError, read_pairs
    from datagen.real.augment import AugmentConfig
    from datagen.real.build import RealConfig, generator_record, make_sample, plan_items, shard_items
    from datagen.shards import ShardWriteError, format_bytes, write_shard

    try:
        aug = AugmentConfig(
            size=args.size,
            flip_p=args.flip_p,
            scale=tuple(args.scale),
            rotate_deg=args.rotate,
            translate=args.translate,
            jitter=args.jitter,
            hue=args.hue,
        )
        cfg = RealConfig(
            dataset=args.dataset,
            split=args.split,
            categories=tuple(args.categories) if args.categories else None,
            size=args.size,
            augment=args.augment,
            warp=args.warp,
            warps=args.warps,
            warp_kind=args.warp_kind,
            warp_strength=args.warp_strength,
            seed=args.seed,
            shard_size=args.shard_size,
            augmentation=aug,
        )
        pairs = read_pairs(args.dataset, args.root, args.split, args.categories)  # validates every annotation
        items = plan_items(pairs, cfg)
        shards = shard_items(items, cfg)
        out = args.out.expanduser().absolute()
        dataset = DatasetDir(out, generator_record(pairs, cfg, len(items)), root_seed=cfg.seed, n_shards=len(shards))
        dataset.check(list(range(len(shards))), args.resume)  # read-only: refuse before any work
        dataset.claim()
    except (DatasetFormatError, OutputFolderError, ValueError) as e:
        return _error(str(e))

    done = dataset.completed(list(range(len(shards))), checksums=True) if args.resume else {}
    todo = [i for i in range(len(shards)) if i not in done]
    mode = f"warp pairs ({cfg.warps} per image, {cfg.warp_kind})" if cfg.warp else f"pairs (+{cfg.augment} augmented)"
    print(
        f"{PROG}: {len(pairs)} {args.dataset} {args.split} pairs -> {len(items)} samples as {mode}, "
        f"{len(shards)} shards ({len(done)} already complete)\n  output: {out}",
        flush=True,
    )
    bar = tqdm(total=sum(len(shards[i]) for i in todo), unit="pair", disable=args.no_progress)
    made = []
    try:
        for i in todo:
            samples = (make_sample(pairs, item, cfg, i, j) for j, item in enumerate(shards[i]))
            entry = write_shard(dataset, i, samples, expected_samples=len(shards[i]), on_sample=lambda: bar.update(1))
            if entry is not None:
                made.append(entry)
    except (DatasetFormatError, ShardWriteError) as e:
        bar.close()
        return _error(
            f"{e}\n  the {len(made)} shards made so far are complete and listed; fix it and rerun with --resume"
        )
    except KeyboardInterrupt:
        bar.close()
        print(f"\n{PROG}: interrupted; complete shards are kept. Finish with the same command plus --resume")
        return 130
    bar.close()
    manifest = dataset.sync_manifest()
    size = format_bytes(sum(e.bytes for e in made))
    print(
        f"{PROG}: made {len(made)} shards ({sum(e.samples for e in made)} samples, {size}); "
        f"dataset {'complete' if manifest.complete else 'incomplete'}: {manifest.n_samples} samples"
    )
    return 0

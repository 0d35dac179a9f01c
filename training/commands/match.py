"""``semmatch match``: a picture of a matcher's dense matches between two images.

Examples::

    semmatch match cat1.jpg cat2.jpg --checkpoint runs/x/ckpt-best --out match.png
    semmatch match a.jpg b.jpg --checkpoint sift --out sift.png --points 120

The picture shows lines between points sampled on A and their matches in B (coloured by position in A), B warped
into A by the predicted field, a checkerboard of A and that warp, and the confidence map.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "match",
        help="draw a matcher's dense matches between two images",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[2:]),
    )
    p.add_argument("image_a", type=Path, help="source image A")
    p.add_argument("image_b", type=Path, help="target image B")
    p.add_argument(
        "--checkpoint", required=True, help="checkpoint folder/file, 'sift[:opts]', 'identity' or 'zero-shot:<w|tiny>'"
    )
    p.add_argument("--out", type=Path, default=Path("match.png"), help="PNG to write; default match.png")
    p.add_argument("--points", type=int, default=80, help="about this many sampled points; default 80")
    p.add_argument("--size", type=int, default=518, help="model frame side in px; default 518")
    p.add_argument("--resize", choices=("pad", "stretch"), default="pad", help="how images enter the model frame")
    p.add_argument("--max-side", type=int, default=640, help="images are shown at most this large; default 640")
    p.add_argument("--device", default=None, help="torch device (default cuda when available)")
    p.add_argument("--html", type=Path, help="also write an interactive HTML page (hover: match and confidence)")
    p.set_defaults(func=run)


def _load(path: Path, max_side: int):
    import cv2

    from datagen.real.pair import DatasetFormatError, read_image

    if not path.is_file():
        raise DatasetFormatError(path, "image file is missing")
    img = read_image(path)
    s = max_side / max(img.shape[:2])
    if s < 1:
        img = cv2.resize(img, (round(img.shape[1] * s), round(img.shape[0] * s)), interpolation=cv2.INTER_AREA)
    return img


def run(args: argparse.Namespace) -> int:
    import torch

    from datagen.real.pair import DatasetFormatError
    from training.eval.matchers import describe_matcher, load_eval_matcher
    from training.eval.predict import predict_dense
    from training.viz import save_match_picture

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        image_a, image_b = _load(args.image_a, args.max_side), _load(args.image_b, args.max_side)
        matcher = load_eval_matcher(args.checkpoint, device)
    except (DatasetFormatError, FileNotFoundError, RuntimeError, ValueError) as e:
        print(f"semmatch match: {e}", file=sys.stderr)
        return 2
    dense = predict_dense(matcher, image_a, image_b, args.size, args.resize, device)
    corr_01, conf_0 = dense[0], dense[1]
    title = f"{describe_matcher(args.checkpoint)}: {args.image_a.name} -> {args.image_b.name}"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_match_picture(args.out, image_a, image_b, corr_01, conf_0, n_points=args.points, title=title)
    print(f"wrote {args.out}")
    if args.html:
        from training.report_html import write_match_page

        print(f"wrote {write_match_page(args.html, image_a, image_b, dense, title)}")
    return 0

"""Screenshot an explorer page (``datagen explore`` / ``semmatch ... --html``) in the local headless Chromium.

Usage: python scripts/explore_screenshots.py PAGE.html OUT.png [--layer status|canonical|field|conf|error]
       [--hover VIEW,X,Y] [--width 1400] [--height 900]
"""

from __future__ import annotations

import argparse
import sys

from datagen.explore.browser import browser_problem, screenshot


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("page")
    p.add_argument("out")
    p.add_argument("--layer", help="colour layer to show")
    p.add_argument("--hover", help="VIEW,X,Y: the pixel to hover")
    p.add_argument("--width", type=int, default=1400)
    p.add_argument("--height", type=int, default=900)
    args = p.parse_args(argv)
    problem = browser_problem()
    if problem:
        print(f"explore_screenshots: {problem}", file=sys.stderr)
        return 2
    hover = tuple(int(v) for v in args.hover.split(",")) if args.hover else None
    print(screenshot(args.page, args.out, hover=hover, layer=args.layer, width=args.width, height=args.height))
    return 0


if __name__ == "__main__":
    sys.exit(main())

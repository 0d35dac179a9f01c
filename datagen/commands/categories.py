"""``datagen categories``: list the procedural families, their slots, optional parts and keypoints."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "categories",
        help="list the procedural category families, their parts and keypoints",
        description="List the built-in procedural families: slots (parts) with face counts, which are optional, "
        "keypoints with their side (left/right/center), the left-right flip permutation and symmetric groups.",
    )
    p.add_argument("names", nargs="*", metavar="CATEGORY", help="only these families (default: all)")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    p.add_argument("--slots", action="store_true", help="list every slot (default: grouped by part)")
    p.set_defaults(func=run)


def describe(name: str) -> dict[str, Any]:
    """A JSON-serialisable description of family ``name``."""
    from datagen.families import get_family

    fam = get_family(name)
    kps = fam.keypoint_names
    notes = getattr(fam, "spair_notes", {})
    parts: dict[str, dict[str, Any]] = {}
    for s in fam.slots:
        d = parts.setdefault(s.part, {"slots": 0, "optional": False, "faces": 0})
        d["slots"] += 1
        d["optional"] = d["optional"] or s.optional
        d["faces"] = max(d["faces"], s.n_faces)
    return {
        "name": fam.name,
        "description": fam.description,
        "n_faces_all_slots": int(fam.slot_offsets[-1]),
        "parts": parts,
        "slots": [
            {"name": s.name, "part": s.part, "side": s.side, "optional": s.optional, "n_faces": s.n_faces}
            for s in fam.slots
        ],
        "keypoints": [
            {"index": i, "name": k.name, "side": k.side, "slot": k.slot, "spair": notes.get(k.name, "")}
            for i, k in enumerate(fam.keypoints)
        ],
        "flip_permutation": fam.flip_permutation,
        "symmetric_groups": [[kps[i] for i in g] for g in fam.symmetric_groups],
    }


def _text(d: dict[str, Any], all_slots: bool) -> str:
    lines = [f"{d['name']}: {d['description']}"]
    if all_slots:
        lines.append(f"  slots ({len(d['slots'])}):")
        for s in d["slots"]:
            opt = " optional" if s["optional"] else ""
            lines.append(f"    {s['name']:<28} {s['part']:<14} {s['side']:<7} {s['n_faces']:>5} faces{opt}")
    else:
        lines.append(f"  parts ({len(d['parts'])}, {len(d['slots'])} slots):")
        for part, p in d["parts"].items():
            opt = "optional" if p["optional"] else "always"
            lines.append(f"    {part:<16} {p['slots']:>2} slot(s), {opt}")
    lines.append(f"  keypoints ({len(d['keypoints'])}):")
    for k in d["keypoints"]:
        spair = f"  SPair {k['spair']}" if k["spair"] and k["spair"] != "-" else ""
        lines.append(f"    {k['index']:>2} {k['name']:<28} {k['side']:<7} on {k['slot']}{spair}")
    lines.append("  symmetric groups: " + "; ".join(", ".join(g) for g in d["symmetric_groups"]))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from datagen.families import family_names

    names = args.names or family_names()
    unknown = [n for n in names if n not in family_names()]
    if unknown:
        print(
            f"datagen categories: unknown category {', '.join(unknown)}; known: {', '.join(family_names())}",
            file=sys.stderr,
        )
        return 2
    docs = [describe(n) for n in names]
    if args.json:
        print(json.dumps({"families": docs}, indent=1))
    else:
        print("\n\n".join(_text(d, args.slots) for d in docs))
    return 0

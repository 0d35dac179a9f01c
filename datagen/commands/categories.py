"""``datagen categories``: the SPair-71k categories and their sources, and the procedural families in detail.

Without names it prints one table: each of SPair-71k's 18 categories (and the extra families, e.g. table), its
source (a procedural family, or none yet), how many of SPair's keypoints the family maps (from the family's
``spair_notes``), AP-10K's 17 for the animals (``ap10k_notes``) and a preview picture. With names (or
``--details``) it lists each family's slots, optional parts, keypoints with side and SPair index, the left-right
flip permutation and symmetric groups. A category whose family is not registered prints as missing.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

# SPair-71k's 18 categories and how many keypoint ids each uses (GeoAware-SC's SPAIR_FLIP / SPAIR_GEO_AWARE tables:
# bicycle uses ids 0-10 and 13, bus 0-7 and 10-29; the skipped ids are unused "dummy" ids)
SPAIR_KEYPOINTS: dict[str, int] = {
    "aeroplane": 25, "bicycle": 12, "bird": 17, "boat": 14, "bottle": 10, "bus": 28, "car": 30, "cat": 15,
    "chair": 14, "cow": 21, "dog": 16, "horse": 20, "motorbike": 13, "person": 20, "pottedplant": 9, "sheep": 21,
    "train": 18, "tvmonitor": 16,
}  # fmt: skip
SPAIR_CATEGORIES: tuple[str, ...] = tuple(SPAIR_KEYPOINTS)
AP10K_KEYPOINTS = 17
GALLERY = Path(__file__).resolve().parents[2] / "docs" / "figures" / "families" / "gallery.png"  # in a checkout


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it lies under it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "categories",
        help="list the procedural category families, their parts and keypoints",
        description="List the built-in procedural families: slots (parts) with face counts, which are optional, "
        "keypoints with their side (left/right/center), the left-right flip permutation and symmetric groups.",
    )
    p.add_argument("names", nargs="*", metavar="CATEGORY", help="details of these families (default: the table)")
    p.add_argument("--json", action="store_true", help="print one JSON document (every family and the table)")
    p.add_argument("--details", action="store_true", help="details of every family instead of the table")
    p.add_argument("--slots", action="store_true", help="list every slot (default: grouped by part)")
    p.add_argument(
        "--preview",
        type=Path,
        metavar="DIR",
        help="write DIR/<category>.png for every category with a family (4 instances, keypoints named)",
    )
    p.add_argument("--seed", type=int, default=0, help="which instances --preview draws (default 0)")
    p.set_defaults(func=run)


def _indices(note: str) -> set[int]:
    """The keypoint indices a note names (``"4"``, ``"1"``; ``"-"`` and free text without digits name none)."""
    return {int(m) for m in re.findall(r"\d+", note or "")}


def coverage(name: str) -> dict[str, Any]:
    """The table row of category ``name``: source, keypoints, SPair (and AP-10K) indices the family maps."""
    from datagen.families import family_names, get_family

    spair_n = SPAIR_KEYPOINTS.get(name)
    row: dict[str, Any] = {"category": name, "spair": spair_n is not None, "spair_keypoints": spair_n}
    if name not in family_names():
        row.update(source="none yet", family=None, keypoints=0, spair_mapped=0, ap10k_mapped=None)
        return row
    fam = get_family(name)
    spair = sorted({i for n in getattr(fam, "spair_notes", {}).values() for i in _indices(n)})
    if spair_n is not None:
        spair = [i for i in spair if i < 30]
    ap10k_notes = getattr(fam, "ap10k_notes", None)
    ap10k = sorted({i for n in ap10k_notes.values() for i in _indices(n)}) if ap10k_notes else None
    module = type(fam).__module__.rsplit(".", 1)[-1]
    source = f"procedural ({module})" if module != name else "procedural"
    row.update(
        source=source,
        family=name,
        keypoints=len(fam.keypoints),
        spair_mapped=len(spair) if spair_n is not None else None,
        spair_indices=spair,
        ap10k_mapped=len(ap10k) if ap10k is not None else None,
    )
    return row


def table_rows() -> list[dict[str, Any]]:
    """One row per SPair-71k category (in SPair's order), then the registered families SPair lacks."""
    from datagen.families import family_names

    extra = [n for n in family_names() if n not in SPAIR_KEYPOINTS]
    return [coverage(n) for n in (*SPAIR_CATEGORIES, *extra)]


def _table_text(rows: list[dict[str, Any]], previews: dict[str, str]) -> str:
    head = f"{'category':<12} {'source':<24} {'kps':>4}  {'SPair kps mapped':<17} {'AP-10K':<7} preview"
    lines = [head, "-" * len(head)]
    for r in rows:
        if r["spair"]:
            cov = f"{r['spair_mapped']}/{r['spair_keypoints']}" if r["family"] else f"0/{r['spair_keypoints']}"
        else:
            cov = "(not SPair)"
        ap = f"{r['ap10k_mapped']}/{AP10K_KEYPOINTS}" if r.get("ap10k_mapped") is not None else "-"
        source = r["source"] if r["family"] else "MISSING: none yet"
        lines.append(
            f"{r['category']:<12} {source:<24} {r['keypoints'] or '-':>4}  {cov:<17} {ap:<7} "
            f"{previews.get(r['category'], '-')}"
        )
    done = sum(1 for r in rows if r["spair"] and r["family"])
    lines.append(f"{done}/{len(SPAIR_CATEGORIES)} SPair-71k categories have a family; `datagen categories NAME` "
                 "lists one's parts and keypoints")  # fmt: skip
    return "\n".join(lines)


def describe(name: str) -> dict[str, Any]:
    """A JSON-serialisable description of family ``name``."""
    from datagen.families import get_family

    fam = get_family(name)
    kps = fam.keypoint_names
    notes = getattr(fam, "spair_notes", {})
    ap10k = getattr(fam, "ap10k_notes", {})
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
            {
                "index": i,
                "name": k.name,
                "side": k.side,
                "slot": k.slot,
                "spair": notes.get(k.name, ""),
                "ap10k": ap10k.get(k.name, ""),
            }
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
        spair += f"  AP-10K {k['ap10k']}" if k.get("ap10k") and k["ap10k"] != "-" else ""
        lines.append(f"    {k['index']:>2} {k['name']:<28} {k['side']:<7} on {k['slot']}{spair}")
    lines.append("  symmetric groups: " + "; ".join(", ".join(g) for g in d["symmetric_groups"]))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from datagen.families import family_names

    names = args.names or family_names()
    unknown = [n for n in names if n not in family_names()]
    if unknown:
        missing = [n for n in unknown if n in SPAIR_KEYPOINTS]
        why = f" ({', '.join(missing)}: SPair-71k categories without a family yet)" if missing else ""
        print(
            f"datagen categories: unknown category {', '.join(unknown)}{why}; known: {', '.join(family_names())}",
            file=sys.stderr,
        )
        return 2
    previews: dict[str, str] = {}
    if args.preview is not None:
        from datagen.gallery import category_sheet

        for r in table_rows():
            if r["family"] and (not args.names or r["category"] in args.names):
                previews[r["category"]] = str(category_sheet(r["category"], args.preview / f"{r['category']}.png",
                                                             seed=args.seed))  # fmt: skip
                print(f"datagen categories: wrote {previews[r['category']]}", file=sys.stderr)
    else:  # the category's own sheet (scripts/show_families.py), else its cell of the gallery
        for r in table_rows():
            sheet = GALLERY.parent / f"{r['category']}.png"
            if r["family"] and sheet.exists():
                previews[r["category"]] = _shown(sheet)
            elif r["family"] and r["spair"] and GALLERY.exists():
                previews[r["category"]] = _shown(GALLERY)
    if args.json:
        docs = [describe(n) for n in names]
        print(json.dumps({"families": docs, "table": table_rows(), "previews": previews}, indent=1))
    elif args.names or args.details:
        print("\n\n".join(_text(describe(n), args.slots) for n in names))
    else:
        print(_table_text(table_rows(), previews))
    return 0

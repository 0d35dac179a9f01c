"""A contact sheet of pairs from a dataset folder, for judging the data at a glance.

One row per pair, five panels:

1. view 0 with its named keypoints, 2. view 1 with its keypoints and a line from each keypoint visible in both
   views to its partner (same colour = same keypoint);
3. the correspondence field 0→1: each matched pixel of view 0 is coloured by *where it lands in view 1*;
4. view 1 coloured by its own pixel positions with the same colour map,

so a part of view 0 in panel 3 and the part it maps to in panel 4 share a colour. Hue follows x and brightness
follows y. Pixels without a valid match are drawn distinctly: occluded in the other view (mid grey), landing
outside the other image (near black), no counterpart on the other instance (black/white stripes); the
background is a faded copy of the photo.

5. the status of every pixel of view 0 (0→1) in one flat colour each (:data:`STATUS_COLORS`): matched,
   occluded, outside the other image, no counterpart; the background (occluders included: they are not the
   object) is the faded photo.

The title of each row gives the shares of the statuses and, per view, whether it is truncated and how much of the
object its occluders hide.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.colors import hsv_to_rgb

from loaders.dataset_manifest import DatasetManifest
from loaders.members import decode_sample
from loaders.schema import Status

__all__ = [
    "position_colors",
    "object_box",
    "field_panel",
    "status_panel",
    "load_samples",
    "render_preview",
    "STATUS_STYLE",
    "STATUS_COLORS",
]

OCCLUDED_RGB = (0.45, 0.45, 0.45)
OUTSIDE_RGB = (0.08, 0.08, 0.08)
STATUS_STYLE = {  # legend: name -> RGB (no-counterpart is a stripe pattern, shown with its mean)
    "occluded in the other view": OCCLUDED_RGB,
    "lands outside the other image": OUTSIDE_RGB,
    "no counterpart (part absent)": (0.5, 0.5, 0.5),
}
# panel 5: one flat, saturated colour per object status (no position colours there); background = the faded photo
STATUS_COLORS = {
    Status.MATCHED: (0.16, 0.66, 0.24),  # green
    Status.OCCLUDED: (1.0, 0.56, 0.0),  # orange
    Status.OUTSIDE: (0.86, 0.08, 0.5),  # magenta
    Status.NO_COUNTERPART: (0.16, 0.36, 0.95),  # blue
}
STATUS_NAMES = {
    Status.MATCHED: "matched",
    Status.OCCLUDED: "occluded in the other view",
    Status.OUTSIDE: "outside the other image",
    Status.NO_COUNTERPART: "no counterpart",
}


def position_colors(xy: np.ndarray, box: Sequence[float]) -> np.ndarray:
    """Colour of image positions: hue from x (red → violet), brightness from y (bright at the top).

    Args:
        xy: float [..., 2] pixel positions (x, y).
        box: ``(x_min, y_min, x_max, y_max)`` the colours span (the target object's bounding box, so the whole
            colour range falls on the object); positions outside are clamped.

    Returns:
        float32 [..., 3] RGB in [0, 1]; saturated everywhere, so greys stay free for the status codes.
    """
    x0, y0, x1, y1 = box
    u = np.clip((xy[..., 0] - x0) / max(x1 - x0, 1.0), 0, 1)
    v = np.clip((xy[..., 1] - y0) / max(y1 - y0, 1.0), 0, 1)
    hsv = np.stack([0.8 * u, np.full_like(u, 0.9), 1.0 - 0.6 * v], -1)
    return hsv_to_rgb(hsv).astype(np.float32)


def object_box(mask: np.ndarray) -> tuple[float, float, float, float]:
    """``(x_min, y_min, x_max, y_max)`` of a bool [H, W] mask's pixels (the whole image when empty)."""
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        return 0.0, 0.0, float(mask.shape[1] - 1), float(mask.shape[0] - 1)
    return float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())


def _faded(image: np.ndarray) -> np.ndarray:
    gray = image.astype(np.float32).mean(-1, keepdims=True) / 255.0
    return np.repeat(0.82 + 0.18 * gray, 3, -1)


def field_panel(image: np.ndarray, status: np.ndarray, target_xy: np.ndarray, box: Sequence[float]) -> np.ndarray:
    """Panel 3 (or 4): colour each pixel by status, and matched pixels by their target position.

    Args:
        image: uint8 [H, W, 3], shown faded on the background.
        status: uint8 [H, W] schema status codes.
        target_xy: float [H, W, 2] position in the target image (for panel 4: the pixel's own position).
        box: the target object's bounding box in the target image (see :func:`position_colors`).

    Returns:
        float32 [H, W, 3] RGB in [0, 1].
    """
    out = _faded(image)
    matched = status == Status.MATCHED
    out[matched] = position_colors(target_xy[matched], box)
    out[status == Status.OCCLUDED] = OCCLUDED_RGB
    out[status == Status.OUTSIDE] = OUTSIDE_RGB
    yy, xx = np.mgrid[0 : status.shape[0], 0 : status.shape[1]]
    period = max(2, status.shape[0] // 64)
    stripes = (((xx + yy) // period) % 2 == 0).astype(np.float32)
    none = status == Status.NO_COUNTERPART
    out[none] = stripes[none, None]
    return out


def status_panel(image: np.ndarray, status: np.ndarray) -> np.ndarray:
    """Panel 5: each object pixel in its status's flat colour (:data:`STATUS_COLORS`), the background (occluders
    included) as the faded photo.

    Args:
        image: uint8 [H, W, 3], shown faded on the background.
        status: uint8 [H, W] schema status codes.

    Returns:
        float32 [H, W, 3] RGB in [0, 1].
    """
    out = _faded(image)
    for code, rgb in STATUS_COLORS.items():
        out[status == code] = rgb
    return out


def load_samples(root: str | Path, n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` decoded samples drawn (seeded, without replacement) across the listed shards, in dataset order."""
    import webdataset as wds

    root = Path(root)
    manifest = DatasetManifest.load(root)
    entries = sorted(manifest.shards, key=lambda s: s.index)
    total = sum(e.samples for e in entries)
    if total == 0:
        raise ValueError(f"{root}: the manifest lists no samples yet")
    picks = set(np.random.default_rng(seed).choice(total, size=min(n, total), replace=False).tolist())
    out, start = [], 0
    for e in entries:
        wanted = {g - start for g in picks if start <= g < start + e.samples}
        start += e.samples
        if not wanted:
            continue
        url = str(root / e.name)
        reader = wds.WebDataset(url, shardshuffle=False, nodesplitter=None, workersplitter=None, empty_check=False)
        for j, members in enumerate(reader):
            if j in wanted:
                out.append(decode_sample(members))
    return out


def _pair_title(sample: dict[str, Any]) -> str:
    meta = sample["meta"]
    ids = [meta.get(k) for k in ("instance_id0", "instance_id1") if meta.get(k) is not None]
    if not ids and isinstance(meta.get("instance_ids"), Sequence):
        ids = list(meta["instance_ids"])
    kind = "same instance" if len(ids) == 2 and ids[0] == ids[1] else "cross-instance" if ids else meta["source"]
    parts = [str(sample.get("__key__")), meta["category"], kind]
    views = meta.get("views")
    if isinstance(views, Sequence) and len(views) == 2 and all(isinstance(v, dict) for v in views):
        parts.append("; ".join(f"view {i}: {_view_dressing(v)}" for i, v in enumerate(views)))
    if "status_0to1" in sample:
        st = sample["status_0to1"]
        obj = max(int((st != Status.BACKGROUND).sum()), 1)
        fr = {s: (st == s).sum() / obj for s in Status}
        parts.append(
            f"0→1 of object pixels: matched {fr[Status.MATCHED]:.0%}, occluded {fr[Status.OCCLUDED]:.0%}, "
            f"outside {fr[Status.OUTSIDE]:.0%}, no counterpart {fr[Status.NO_COUNTERPART]:.0%}"
        )
    return "  ·  ".join(parts)


def _view_dressing(view_meta: dict[str, Any]) -> str:
    """``whole`` / ``truncated``, and ``N occluders hide P %`` where there are occluders."""
    text = "truncated" if view_meta.get("truncated") else "whole"
    occ = view_meta.get("occlusion")
    if view_meta.get("occluders") and isinstance(occ, dict):
        n = len(view_meta["occluders"])
        text += f", {n} occluder{'s' * (n > 1)} hide {occ.get('hidden', 0.0):.0%}"
    return text


def _draw_keypoints(ax: Any, kps: np.ndarray, vis: np.ndarray, names: Sequence[str], colors: np.ndarray) -> None:
    import matplotlib.patheffects as pe

    for i in np.flatnonzero(vis):
        x, y = kps[i]
        ax.plot(x, y, "o", ms=4, mfc=colors[i], mec="white", mew=0.7)
        ax.annotate(
            names[i], (x, y), xytext=(3, 2), textcoords="offset points", fontsize=5.5, color=colors[i],
            path_effects=[pe.withStroke(linewidth=1.6, foreground="white")],
        )  # fmt: skip


# layout of the sheet, inches
_PANEL_IN, _GAP_IN, _MARGIN_IN, _TITLE_IN, _HEADER_IN, _LEGEND_IN = 3.1, 0.1, 0.15, 0.3, 0.3, 1.0
_HEADERS = (
    "view 0 + named keypoints",
    "view 1 (lines join the same keypoint)",
    "0→1: colour = landing point in view 1",
    "view 1: colour = its own position",
    "status of view 0's pixels (0→1)",
)
_N_PANELS = len(_HEADERS)


def render_preview(samples: Sequence[dict[str, Any]], out: str | Path, dpi: int = 110) -> Path:
    """Draw the contact sheet of ``samples`` (decoded schema dicts) into the PNG ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import ConnectionPatch, Patch

    n = len(samples)
    row_in = _PANEL_IN + _TITLE_IN
    width = 2 * _MARGIN_IN + _N_PANELS * _PANEL_IN + (_N_PANELS - 1) * _GAP_IN
    height = _HEADER_IN + n * row_in + _LEGEND_IN
    fig = plt.figure(figsize=(width, height))
    for r, s in enumerate(samples):
        top = height - _HEADER_IN - r * row_in - _TITLE_IN  # top edge of the row's panels
        axes = []
        for c in range(_N_PANELS):
            left = _MARGIN_IN + c * (_PANEL_IN + _GAP_IN)
            ax = fig.add_axes((left / width, (top - _PANEL_IN) / height, _PANEL_IN / width, _PANEL_IN / height))
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                fig.text((left + _PANEL_IN / 2) / width, 1 - 0.5 * _HEADER_IN / height, _HEADERS[c],
                         ha="center", va="center", fontsize=8.5, weight="bold")  # fmt: skip
            axes.append(ax)
        fig.text(_MARGIN_IN / width, (top + 0.08) / height, _pair_title(s), fontsize=7.5, va="bottom")
        _draw_pair(fig, axes, s, plt.get_cmap("tab20"), ConnectionPatch)
    legend = [Patch(color=c, label=k) for k, c in STATUS_STYLE.items() if not k.startswith("no counterpart")]
    legend.append(Patch(facecolor="white", edgecolor="black", hatch="////", label="no counterpart (part absent)"))
    legend.append(Patch(facecolor=(0.9, 0.9, 0.9), edgecolor="0.6", label="background (faded photo)"))
    fig.legend(handles=legend, loc="lower center", ncol=5, fontsize=8, frameon=False, bbox_to_anchor=(0.5, 0.0),
               title="panels 3-4 (matched pixels coloured by position)", title_fontsize=8,
               alignment="left")  # fmt: skip
    flat = [Patch(facecolor=STATUS_COLORS[c], edgecolor="0.6", label=STATUS_NAMES[c]) for c in STATUS_COLORS]
    flat.append(Patch(facecolor=(0.9, 0.9, 0.9), edgecolor="0.6", label="background, occluders included (faded)"))
    fig.legend(handles=flat, loc="lower center", ncol=5, fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, 0.5 * _LEGEND_IN / height), title="panel 5 (one colour per status)",
               title_fontsize=8, alignment="left")  # fmt: skip
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out


def _draw_pair(fig: Any, axes: list[Any], s: dict[str, Any], cmap: Any, connection: Any) -> None:
    ax0, ax1, ax2, ax3, ax4 = axes
    names = s["meta"].get("keypoint_names", [])
    colors = cmap(np.arange(len(names)) % 20)
    ax0.imshow(s["image0"])
    ax1.imshow(s["image1"])
    if "kps0" in s and "kps1" in s:
        _draw_keypoints(ax0, s["kps0"], s["kps0_vis"], names, colors)
        _draw_keypoints(ax1, s["kps1"], s["kps1_vis"], names, colors)
        for i in np.flatnonzero(s["kps0_vis"] & s["kps1_vis"]):
            line = connection(s["kps0"][i], s["kps1"][i], "data", "data", axesA=ax0, axesB=ax1, color=colors[i],
                              lw=0.8, alpha=0.8)  # fmt: skip
            fig.add_artist(line)
    if "status_0to1" not in s:
        for ax in (ax2, ax3, ax4):
            ax.text(0.5, 0.5, "no dense field (real pair)", ha="center", va="center", transform=ax.transAxes)
        return
    h1, w1 = s["image1"].shape[:2]
    object1 = s["status_1to0"] != Status.BACKGROUND
    box = object_box(object1)
    ax2.imshow(field_panel(s["image0"], s["status_0to1"], s["corr_0to1"], box))
    yy, xx = np.mgrid[0:h1, 0:w1].astype(np.float32)
    own = np.where(object1, Status.MATCHED, Status.BACKGROUND).astype(np.uint8)
    ax3.imshow(field_panel(s["image1"], own, np.stack([xx, yy], -1), box))
    ax4.imshow(status_panel(s["image0"], s["status_0to1"]))

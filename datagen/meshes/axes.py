"""Axis conventions: which way a file's "up" and "front" point, and the rotation into the canonical frame.

The canonical frame (docs/design.md §3): right-handed, y up, the object's front faces +z, so the object's own left side
is +x. A collection is described by two signed file axes, ``up`` and ``front`` (``--up``/``--front``, or the CSV
columns): the file directions in which the object's top and its front point. The rotation ``R`` with
``R @ up = +y`` and ``R @ front = +z`` is then a proper rotation (rows: ``up x front``, ``up``, ``front``), so a
remap never mirrors the object.

Conventions of the common sources:

- **ShapeNetCore v2** (``model_normalized.obj``): up +y, front -z (``--up +y --front -z``), the y-z plane being the
  bilateral symmetry plane for most categories. ShapeNet's v2 notes say: "The OBJ files are now pre-aligned so
  that the up direction is the +Y axis, and the front is the -Z axis (this fixes the mirroring issue in
  ShapeNetCore v1)" (ShapeNetCore v2 README, mirrored at https://www.graviti.cn/open-datasets/ShapeNet; see also
  https://shapenet.org/annotations on the v1 left-right flips that v2 fixed). The remap is a half turn about y:
  ``(x, y, z) -> (-x, y, -z)``. v2 models are scaled to a unit bounding-box diagonal but not centred exactly
  (https://github.com/fwilliams/point-cloud-utils/issues/53); the intake re-scales and re-centres anyway.
  This is the default for a ShapeNet-layout folder.
- **Objaverse** (GLB): glTF's own convention, "glTF defines +Y as up, +Z as forward, and -X as right; the front of
  a glTF asset faces +Z" (glTF 2.0 spec §3.4, https://registry.khronos.org/glTF/specs/2.0/glTF-2.0.html), in
  metres, which is the canonical frame itself (``--up +y --front +z``, the default for other folders). Objaverse
  gathers user uploads, so many objects do not follow it (z-up exports, arbitrary yaw, arbitrary units): treat
  its orientation as unreliable and filter or fix per object (CSV ``up``/``front`` columns).
"""

from __future__ import annotations

import numpy as np

__all__ = ["AXES", "parse_axis", "canonical_rotation", "CONVENTIONS"]

AXES = {"x": 0, "y": 1, "z": 2}
# (up, front) of the named conventions
CONVENTIONS = {"canonical": ("+y", "+z"), "gltf": ("+y", "+z"), "shapenet": ("+y", "-z")}


def parse_axis(text: str) -> np.ndarray:
    """float64 [3] unit vector of a signed axis name: ``x``, ``+x``, ``-x``, ... (case-insensitive).

    Raises:
        ValueError: anything else.
    """
    t = str(text).strip().lower()
    sign = -1.0 if t.startswith("-") else 1.0
    name = t.lstrip("+-")
    if name not in AXES or len(t) - len(name) > 1:
        raise ValueError(f"axis {text!r}: expected one of x, y, z with an optional sign, e.g. +y or -z")
    v = np.zeros(3)
    v[AXES[name]] = sign
    return v


def canonical_rotation(up: str, front: str) -> np.ndarray:
    """float64 [3, 3] proper rotation taking file vectors to the canonical frame.

    Args:
        up: the file axis that points to the object's top, e.g. ``+y`` or ``+z``.
        front: the file axis the object's front faces, e.g. ``-z``.

    Raises:
        ValueError: an axis name is malformed, or ``up`` and ``front`` are not perpendicular.
    """
    u, f = parse_axis(up), parse_axis(front)
    if abs(float(u @ f)) > 0.5:
        raise ValueError(f"up {up!r} and front {front!r} must be different axes")
    left = np.cross(u, f)  # the object's left in file coordinates
    return np.stack([left, u, f])

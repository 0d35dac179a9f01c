"""Randomised appearance: materials with procedural textures, lights and backgrounds.

Everything here is backend-free numpy driven by an explicit ``numpy.random.Generator``; the GL and CPU
backends consume the same :class:`Appearance` and :class:`Lighting`. Colours are sRGB in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

__all__ = [
    "Material",
    "Appearance",
    "Light",
    "Lighting",
    "TEXTURE_KINDS",
    "BACKGROUND_KINDS",
    "sample_appearance",
    "file_appearance",
    "sample_lighting",
    "sample_background",
    "composite",
]

TEXTURE_KINDS = ("plain", "stripes", "checker", "noise", "wood")
BACKGROUND_KINDS = ("linear", "radial", "noise", "checker", "stripes")
TEXTURE_SIZE = 128


@dataclass
class Material:
    """One material group's look. ``texture`` (uint8 [H, W, 3], any size, repeated over the texture coordinates)
    replaces ``base_color``. ``kind`` is a procedural texture kind, or ``file`` for a file's own material."""

    kind: str
    base_color: np.ndarray  # float [3] sRGB
    metallic: float
    roughness: float
    texture: np.ndarray | None = None

    def meta(self) -> dict:
        return {
            "kind": self.kind,
            "base_color": [round(float(c), 4) for c in self.base_color],
            "metallic": round(self.metallic, 4),
            "roughness": round(self.roughness, 4),
        }


@dataclass
class Appearance:
    """Materials of an instance, indexed by ``RenderMesh.face_group``."""

    materials: list[Material] = field(default_factory=list)

    def meta(self) -> list[dict]:
        return [m.meta() for m in self.materials]


@dataclass
class Light:
    """A directional light. ``direction_world`` [3] is the unit direction the light travels (light -> scene)."""

    direction_world: np.ndarray
    color: np.ndarray  # [3] in [0, 1]
    intensity: float


@dataclass
class Lighting:
    lights: list[Light]
    ambient: np.ndarray  # [3] ambient radiance

    def meta(self) -> dict:
        return {
            "n_lights": len(self.lights),
            "intensity": [round(float(li.intensity), 4) for li in self.lights],
            "ambient": [round(float(a), 4) for a in self.ambient],
        }


# ----------------------------------------------------------------------------------------------------------------
# noise and colours


def _upsample(grid: np.ndarray, h: int, w: int, wrap: bool) -> np.ndarray:
    """Smooth (smoothstep-weighted bilinear) upsampling of a [gh, gw] grid to float32 [h, w]; tileable when
    ``wrap``. Separable: columns first on the small grid, then rows."""
    gh, gw = grid.shape

    def axis(n: int, g: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = np.arange(n) * g / n if wrap else np.linspace(0, g - 1, n)
        i0 = np.floor(pos).astype(np.int64)
        f = pos - i0
        f = (f * f * (3 - 2 * f)).astype(np.float32)  # smoothstep: no visible grid creases
        i1 = (i0 + 1) % g if wrap else np.minimum(i0 + 1, g - 1)
        return np.minimum(i0, g - 1), i1, f

    y0, y1, fy = axis(h, gh)
    x0, x1, fx = axis(w, gw)
    g = grid.astype(np.float32)
    cols = g[:, x0] * (1 - fx) + g[:, x1] * fx  # [gh, w]
    return cols[y0] * (1 - fy)[:, None] + cols[y1] * fy[:, None]


def _fractal_noise(rng: np.random.Generator, h: int, w: int, base: int, octaves: int, wrap: bool) -> np.ndarray:
    """Multi-octave value noise in [0, 1], float32 [h, w].

    Tileable when ``wrap`` (octaves upsampled with :func:`_upsample`). Otherwise the octaves are summed on the
    finest octave's grid and that sum is upsampled once, bicubically (OpenCV): one full-size pass whatever the
    number of octaves.
    """
    amp, total = 1.0, 0.0
    if wrap:
        out = np.zeros((h, w), np.float32)
        for o in range(octaves):
            out += np.float32(amp) * _upsample(rng.random((base * 2**o,) * 2), h, w, wrap)
            total += amp
            amp *= 0.5
        out /= np.float32(total)
        return out
    fine = base * 2 ** (octaves - 1)
    acc = np.zeros((fine, fine), np.float32)
    for o in range(octaves):
        grid = rng.random((base * 2**o,) * 2).astype(np.float32)
        acc += np.float32(amp) * (grid if grid.shape[0] == fine else _resize_cubic(grid, fine, fine))
        total += amp
        amp *= 0.5
    acc /= np.float32(total)
    return _resize_cubic(acc, h, w)


def _resize_cubic(grid: np.ndarray, h: int, w: int) -> np.ndarray:
    """float32 [h, w] bicubic resize of a float32 grid, clipped to the grid's value range."""
    out = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(out, grid.min(), grid.max(), out=out)


def _random_color(rng: np.random.Generator) -> np.ndarray:
    """A random sRGB colour from HSV with varied saturation and value."""
    hue, sat, val = rng.random(), rng.uniform(0.0, 0.9), rng.uniform(0.15, 0.95)
    k = (np.array([5.0, 3.0, 1.0]) + hue * 6.0) % 6.0
    return val - val * sat * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


def _mix(c0: np.ndarray, c1: np.ndarray, t: np.ndarray) -> np.ndarray:
    """float32 [..., 3]: c0 where t = 0, c1 where t = 1."""
    c0, c1 = np.asarray(c0, np.float32), np.asarray(c1, np.float32)
    return c0 + t.astype(np.float32)[..., None] * (c1 - c0)


def _to_u8(img: np.ndarray) -> np.ndarray:
    out = img * np.float32(255.0)
    np.rint(out, out=out)
    np.clip(out, 0, 255, out=out)
    return out.astype(np.uint8)


# ----------------------------------------------------------------------------------------------------------------
# materials


def _texture(rng: np.random.Generator, kind: str, c0: np.ndarray, c1: np.ndarray) -> np.ndarray:
    n = TEXTURE_SIZE
    yy, xx = np.mgrid[0:n, 0:n] / n  # tile coordinates in [0, 1)
    if kind == "stripes":
        k = int(rng.integers(1, 5))
        fx, fy = (k, 0) if rng.random() < 0.5 else (0, k)  # integer frequencies keep the tile seamless
        width = rng.uniform(0.2, 0.8)
        t = ((xx * fx + yy * fy) % 1.0 < width).astype(float)
    elif kind == "checker":
        k = int(rng.integers(1, 5))
        t = ((np.floor(xx * 2 * k) + np.floor(yy * 2 * k)) % 2).astype(float)
    elif kind == "noise":
        t = _fractal_noise(rng, n, n, int(rng.integers(2, 6)), 3, wrap=True)
        t = np.clip((t - 0.5) * rng.uniform(1.5, 3.0) + 0.5, 0, 1)
    elif kind == "wood":
        warp = _fractal_noise(rng, n, n, 3, 3, wrap=True)
        rings = rng.uniform(4.0, 10.0)
        t = 0.5 + 0.5 * np.sin(2 * np.pi * (rings * yy + 1.5 * warp))
        t = t**2
    else:
        raise ValueError(f"unknown texture kind {kind!r}")
    grain = _fractal_noise(rng, n, n, 16, 2, wrap=True) - 0.5
    return _to_u8(np.clip(_mix(c0, c1, t) + 0.06 * grain[..., None], 0, 1))


def sample_appearance(rng: np.random.Generator, n_groups: int) -> Appearance:
    """Draw one material per material group: colours, a procedural texture kind, metallic and roughness."""
    mats = []
    for _ in range(n_groups):
        kind = str(rng.choice(TEXTURE_KINDS, p=[0.3, 0.15, 0.15, 0.2, 0.2]))
        c0 = _random_color(rng)
        if kind == "wood":
            c0 = np.array([0.55, 0.35, 0.18]) * rng.uniform(0.6, 1.3) + rng.uniform(-0.05, 0.05, 3)
            c1 = c0 * rng.uniform(0.45, 0.75)
        else:
            c1 = _random_color(rng) if rng.random() < 0.5 else np.clip(c0 * rng.uniform(0.3, 0.7), 0, 1)
        c0, c1 = np.clip(c0, 0, 1), np.clip(c1, 0, 1)
        tex = None if kind == "plain" else _texture(rng, kind, c0, c1)
        metallic = float(rng.uniform(0.0, 0.8)) if rng.random() < 0.25 else 0.0
        mats.append(Material(kind, c0, metallic, float(rng.uniform(0.25, 0.95)), tex))
    return Appearance(mats)


FILE_ROUGHNESS = 0.6  # files give no reliable roughness (OBJ Ns, glTF factors vary by exporter): one fixed value


def file_appearance(materials) -> Appearance:
    """The look a file gives its materials (each with ``name``, sRGB ``base_color`` [3], optional uint8
    ``texture`` [H, W, 3], e.g. :class:`~datagen.meshes.types.MeshMaterial`): dielectric, roughness
    :data:`FILE_ROUGHNESS`, the texture where present (it replaces the base colour), kind ``file``."""
    mats = []
    for m in materials:
        tex = None if m.texture is None else np.ascontiguousarray(m.texture, np.uint8)
        mats.append(Material("file", np.asarray(m.base_color, np.float64), 0.0, FILE_ROUGHNESS, tex))
    return Appearance(mats)


# ----------------------------------------------------------------------------------------------------------------
# lights


def sample_lighting(rng: np.random.Generator, T_cam_from_world: np.ndarray) -> Lighting:
    """Two to four directional lights coming from the camera's side of the object (key light above), plus ambient."""
    R = T_cam_from_world[:3, :3]
    lights = []
    n = int(rng.integers(2, 5))
    for i in range(n):
        # direction the light travels, in camera coordinates: towards +z (away from the camera), mostly downwards
        d = np.array([rng.uniform(-1.0, 1.0), rng.uniform(0.0, 1.0) if i == 0 else rng.uniform(-0.6, 1.0), 1.0])
        d = d / np.linalg.norm(d)
        tint = 1.0 - rng.uniform(0.0, 0.25, 3)
        intensity = float(rng.uniform(2.0, 4.0) if i == 0 else rng.uniform(0.5, 2.0))
        lights.append(Light(R.T @ d, tint / tint.max(), intensity))
    ambient = np.full(3, rng.uniform(0.15, 0.4))
    return Lighting(lights, ambient)


# ----------------------------------------------------------------------------------------------------------------
# backgrounds


def sample_background(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, str]:
    """A procedural background, uint8 [H, W, 3], and its kind: gradients, coloured noise or patterns.

    Every kind is a scalar field ``t`` in [0, 1] (plus fine grain) mapped through a 256-entry palette between two
    random colours, so the colour mapping is one table look-up per pixel.
    """
    kind = str(rng.choice(BACKGROUND_KINDS))
    u = (np.arange(width, dtype=np.float32) / max(width - 1, 1))[None, :]
    v = (np.arange(height, dtype=np.float32) / max(height - 1, 1))[:, None]
    c0, c1 = _random_color(rng), _random_color(rng)
    if kind == "linear":
        a = rng.uniform(0, 2 * np.pi)
        t = (u - 0.5) * np.float32(np.cos(a)) + (v - 0.5) * np.float32(np.sin(a)) + 0.5
    elif kind == "radial":
        cx, cy = rng.uniform(0.2, 0.8, 2).astype(np.float32)
        t = np.sqrt((u - cx) ** 2 + (v - cy) ** 2) / np.float32(0.8)
    elif kind == "noise":
        t = _fractal_noise(rng, height, width, int(rng.integers(2, 8)), 4, wrap=False)
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-9)
    elif kind == "checker":
        k = rng.uniform(4, 16)
        cells = np.floor(u * k).astype(np.int32) + np.floor(v * k).astype(np.int32)
        t = (cells & 1).astype(np.float32) * np.float32(rng.uniform(0.3, 1.0))
    else:  # stripes
        a, k = rng.uniform(0, np.pi), rng.uniform(3, 20)
        t = 0.5 + 0.5 * np.sin(np.float32(2 * np.pi * k) * (u * np.float32(np.cos(a)) + v * np.float32(np.sin(a))))
    grain = _fractal_noise(rng, height, width, 32, 1, wrap=False)
    grain *= np.float32(0.25 * 255)
    grain += np.clip(np.broadcast_to(t, (height, width)), 0, 1) * np.float32(255) - np.float32(0.125 * 255)
    np.clip(grain, 0, 255, out=grain)
    level = np.rint(grain, out=grain).astype(np.uint8)
    palette = _to_u8(_mix(c0, c1, np.arange(256, dtype=np.float32) / np.float32(255)))  # [256, 3]
    return np.take(palette, level, axis=0), kind


def composite(rgb_premultiplied: np.ndarray, alpha: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Put a premultiplied render over a background.

    Args:
        rgb_premultiplied: uint8 [H, W, 3] (object colour times coverage; 0 where ``alpha`` is 0).
        alpha: uint8 [H, W] coverage.
        background: uint8 [H, W, 3].

    Returns:
        uint8 [H, W, 3]: ``min(rgb + round(bg * (255 - alpha) / 255), 255)``, the background itself where alpha is
        0 (only the bounding box of the coverage is blended).
    """
    out = np.array(background, np.uint8, copy=True)
    x, y, w, h = cv2.boundingRect(np.ascontiguousarray(alpha, np.uint8))
    if w == 0 or h == 0:
        return out
    box = (slice(y, y + h), slice(x, x + w))
    inv = (255 - alpha[box].astype(np.uint16))[..., None]
    blend = rgb_premultiplied[box].astype(np.uint16) + (inv * background[box] + 127) // 255  # exact integer rounding
    out[box] = np.minimum(blend, 255)
    return out

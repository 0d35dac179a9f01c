"""One shard of pair samples: instances -> views -> renders -> dense ground truth, as schema dicts.

A shard is made of *groups*. Group ``g`` of shard ``i`` draws ``instances_per_group`` instances, renders
``views_per_instance`` views of each (once), and draws up to ``pairs_per_group`` ordered pairs among those views;
each view's surface (face ids, barycentrics, depth) and keypoints are computed once and reused by every pair that
uses it. All of a group's random choices come from ``SeedSequence([seed, i, g])`` and are drawn before anything is
rendered, so a shard is a pure function of ``(config, shard_index)``.

A view is *dressed* when it is first rendered, from its own seed (so the order in which views are rendered does not
matter): with probability ``camera.truncation_fraction`` it is re-aimed so that part of the object leaves the image
(:func:`datagen.camera.truncate_view`), and with probability ``occluders.fraction`` occluders are placed between
the camera and the object (:mod:`datagen.occluders`), rendered and ray-cast with it.

One module, over ~400 lines: a group's seeded draws (all made before rendering), view dressing and the per-view
surface cache are the steps of one shard, read top to bottom.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from datagen import __version__
from datagen.camera import View, admissible_pair, is_truncated, projected_box, sample_views, truncate_view
from datagen.canonical import CanonicalSurface, ProceduralSurface, counterparts
from datagen.config import DROPPED_PAIRS, RenderConfig
from datagen.families import Family, family_names, get_family
from datagen.gt import MeshRaycaster, ViewSurface, correspondence, project_keypoints, view_surface
from datagen.meshes.source import MeshSource, mesh_source
from datagen.occluders import ViewOccluders, build_occluders, draw_shape, hidden_share, place_occluders, scene_geometry
from datagen.occluders.shapes import LocalMeshes, normalised_mesh, shape_key
from datagen.render import Renderer, get_renderer
from datagen.render.appearance import Appearance, composite, sample_appearance, sample_background, sample_lighting
from datagen.render.mesh import RenderMesh, prepare_mesh
from loaders.schema import META_FLIP_PERM, META_SYM_GROUPS, SCHEMA_VERSION

__all__ = ["generate_shard", "group_rng", "scene_rng", "sample_key", "GENERATOR", "DROPPED_PAIRS"]

GENERATOR = {"name": "semmatch-datagen", "version": __version__}
_SCENE_STREAM = 1  # a view's truncation and occluder draws: a stream of its own beside lighting and background


def group_rng(seed: int, shard_index: int, group_index: int) -> np.random.Generator:
    """The generator of all random choices of group ``group_index`` of shard ``shard_index``."""
    return np.random.default_rng(np.random.SeedSequence([seed, shard_index, group_index]))


def scene_rng(view_seed: int) -> np.random.Generator:
    """The generator of a view's truncation and occluders (its lighting and background use ``view_seed`` itself, so
    they are the same with these options on or off)."""
    return np.random.default_rng(np.random.SeedSequence([view_seed, _SCENE_STREAM]))


def sample_key(shard_index: int, index: int) -> str:
    return f"s{shard_index:06d}_{index:05d}"


@contextmanager
def _timed(timings: dict | None, key: str):
    t0 = time.perf_counter()
    try:
        yield
    finally:
        if timings is not None:
            timings[key] = timings.get(key, 0.0) + time.perf_counter() - t0


def _jsonable(x: Any) -> Any:
    """Plain-Python copy of nested params (numpy scalars and arrays become floats/ints/lists)."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, np.generic):
        return x.item()
    return x


def _instance_id(category: str, params: dict) -> str:
    digest = hashlib.sha1(json.dumps(_jsonable(params), sort_keys=True).encode()).hexdigest()[:12]
    return f"{category}-{digest}"


@dataclass
class _GroupInstance:
    instance_id: str
    params: dict | None  # the procedural instance's shape parameters; None for a user's mesh
    source: str  # "procedural" or "meshes"
    surface: CanonicalSurface
    mesh: RenderMesh
    appearance: Appearance
    kp_world: np.ndarray
    kp_face: np.ndarray
    handle: Any = None
    raycaster: MeshRaycaster | None = None  # built on first use (visibility where the raster cannot decide)


@dataclass
class _GroupView:
    instance: int
    view: View
    view_seed: int  # lighting and background; truncation and occluders through scene_rng
    image: np.ndarray | None = None
    surface: ViewSurface | None = None
    kps: tuple[np.ndarray, np.ndarray] | None = None
    meta: dict = field(default_factory=dict)
    usable: bool = True  # False: the photoreal render disagrees with the exact GT (its pairs are dropped)


def _draw_pairs(
    rng: np.random.Generator, views: list[_GroupView], count: int, config: RenderConfig, instance_ids: list[str]
) -> list[tuple[int, int, bool]]:
    """``count`` ordered pairs (view index 0, view index 1, same instance) within the viewpoint-gap limits.

    Two views are of the same instance when their instances have the same id (a user's mesh can be drawn twice).
    Candidates are unordered view pairs, used without repetition until exhausted (so a pair and its reverse only
    both appear once every candidate has been used), each put in a random order; if no candidate of the wanted
    kind fits the gap limits, the closest-in-azimuth ones are used instead.
    """
    n = len(views)
    kinds: dict[bool, list[tuple[int, int]]] = {True: [], False: []}
    for a in range(n):
        for b in range(a + 1, n):
            kinds[instance_ids[views[a].instance] == instance_ids[views[b].instance]].append((a, b))
    pools = {}
    for same, cands in kinds.items():
        ok = [c for c in cands if admissible_pair(views[c[0]].view, views[c[1]].view, config.camera)]
        if not ok and cands:
            gaps = [abs(views[a].view.azimuth_deg - views[b].view.azimuth_deg) % 360 for a, b in cands]
            ok = [cands[int(np.argmin(gaps))]]
        pools[same] = ok
    unused = {k: list(v) for k, v in pools.items()}
    pairs = []
    for _ in range(count):
        same = bool(rng.random() < config.same_instance_fraction)
        if not pools[same]:
            same = not same
        if not pools[same]:
            raise ValueError("a group needs at least two views: views_per_instance * instances_per_group < 2")
        if not unused[same]:
            unused[same] = list(pools[same])
        a, b = unused[same].pop(int(rng.integers(len(unused[same]))))
        if rng.random() < 0.5:
            a, b = b, a
        pairs.append((a, b, same))
    return pairs


class _Group:
    """One group's instances, views and lazily rendered passes."""

    def __init__(
        self,
        config: RenderConfig,
        family: Family,
        renderer: Renderer,
        shard_index: int,
        g: int,
        timings,
        photoreal=None,
    ):
        self.config, self.family, self.renderer, self.timings = config, family, renderer, timings
        self.photoreal = photoreal  # a datagen.photoreal.views.PhotorealViews with the blenderproc renderer
        self.shard_index, self.g = shard_index, g
        rng = group_rng(config.seed, shard_index, g)
        self.instances: list[_GroupInstance] = []
        source = mesh_source(config.meshes, family) if config.meshes else None
        with _timed(timings, "mesh"):
            for _ in range(config.instances_per_group):
                use_mesh = source is not None and rng.random() < config.mesh_fraction
                self.instances.append(self._user_instance(source, rng) if use_mesh else self._procedural(rng))
        cam = config.camera
        anchor = float(rng.uniform(*cam.azimuth_deg))
        self.views: list[_GroupView] = []
        for k, gi in enumerate(self.instances):
            center, radius = gi.mesh.bounding_sphere
            size, n = config.size, config.views_per_instance
            for view in sample_views(rng, cam, center, radius, size, size, n, anchor):
                self.views.append(_GroupView(k, view, int(rng.integers(2**63))))
        self.canonical: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # view -> its points' canonical coordinates
        self.counterparts: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        self.local_meshes: LocalMeshes | None = None  # occluder meshes, built on first use
        self.rng = rng

    def _procedural(self, rng: np.random.Generator) -> _GroupInstance:
        family = self.family
        params = _jsonable(family.sample_params(rng))
        inst = family.build(params, _instance_id(family.name, params))
        mesh = prepare_mesh(inst, family)
        own = getattr(family, "sample_appearance", None)  # a family's own palette (fur), else random materials
        appearance = own(rng, mesh.group_names) if own is not None else sample_appearance(rng, len(mesh.group_names))
        surface = ProceduralSurface(family, inst)
        kp_world, kp_face = surface.keypoints()
        return _GroupInstance(inst.instance_id, params, "procedural", surface, mesh, appearance, kp_world, kp_face)

    def _user_instance(self, source: MeshSource, rng: np.random.Generator) -> _GroupInstance:
        # without replacement within a group while the library lasts (a mesh drawn twice pairs with itself:
        # those pairs are same-instance pairs, see _draw_pairs)
        used = {gi.instance_id for gi in self.instances}
        free = [m for m in source.ids if m not in used] or source.ids
        mesh_id = free[int(rng.integers(len(free)))]
        user = source.get(mesh_id)
        mesh, appearance = user.render(self.config.mesh_appearance, rng)
        kp_world, kp_face = user.surface.keypoints()
        return _GroupInstance(mesh_id, None, "meshes", user.surface, mesh, appearance, kp_world, kp_face)

    def _instance(self, k: int) -> _GroupInstance:
        gi = self.instances[k]
        if gi.handle is None:
            with _timed(self.timings, "mesh"):
                gi.handle = self.renderer.prepare(gi.mesh, gi.appearance)
        return gi

    def view(self, v: int) -> _GroupView:
        """The view with its image, surface and keypoints (rendered on first use)."""
        gv = self.views[v]
        if gv.surface is not None:
            return gv
        gi = self._instance(gv.instance)
        vrng = np.random.default_rng(gv.view_seed)
        with _timed(self.timings, "mesh"):  # truncation, occluders: drawn, built, uploaded
            occluders, dressing = self._dress(gv, gi)
            occ_handle = None if occluders is None else self.renderer.prepare(occluders.mesh, occluders.appearance)
        handles = [gi.handle] if occ_handle is None else [gi.handle, occ_handle]
        try:
            with _timed(self.timings, "raster"):  # the image: background synthesis, lit pass, compositing, face ids
                lighting = sample_lighting(vrng, gv.view.T_cam_from_world)
                background, bg_kind = sample_background(vrng, gv.view.height, gv.view.width)
                photo = None
                if self.config.backgrounds is not None:  # a real photograph instead (its own seeded stream)
                    from datagen.backgrounds import photo_backgrounds, photo_rng

                    photos = photo_backgrounds(self.config.backgrounds)
                    background, photo = photos.sample(photo_rng(gv.view_seed), gv.view.height, gv.view.width)
                    bg_kind = "photo"
                rgb, alpha = self.renderer.render_scene_lit(handles, gv.view, lighting)
                face_id = self.renderer.render_scene_face_ids(handles, gv.view)
                gv.image = composite(rgb, alpha, background)
                gv.image.setflags(write=False)  # shared by the view's pairs; lets the encoder reuse its JPEG
        finally:
            if occ_handle is not None:
                self.renderer.release(occ_handle)
        with _timed(self.timings, "gt"):
            gv.surface, hidden = self._surface(gv, gi, face_id, occluders)
            gv.kps = project_keypoints(gv.surface, gi.kp_world, gi.kp_face)
        if hidden is not None:
            dressing["occlusion"]["hidden"], dressing["occlusion"]["hidden_px"] = hidden
        gv.meta = {**gv.view.meta(), "background": bg_kind, "lighting": lighting.meta(), **dressing}
        if photo is not None:
            gv.meta["background_photo"] = photo
        if self.photoreal is not None:
            with _timed(self.timings, "photoreal"):
                self._photoreal(gv, gi, occluders, background if photo is not None else None)
        return gv

    def _photoreal(
        self, gv: _GroupView, gi: _GroupInstance, occluders: ViewOccluders | None, photo: np.ndarray | None
    ) -> None:
        """Replace the view's image by its Cycles render (over ``photo`` when given), checked against the exact
        surface just computed."""
        from datagen.photoreal.views import material_rng

        k, cfg = gv.instance, self.config
        mats = self.photoreal.materials(
            (self.g, k), gi.appearance, lambda: material_rng(cfg.seed, self.shard_index, self.g, k)
        )
        occ = None if occluders is None else (occluders.mesh, occluders.appearance)
        image, gv.meta["photoreal"], gv.usable = self.photoreal.render_view(
            gv.view, gv.surface, (gi.mesh, mats), occ, gv.view_seed, photo
        )
        image.setflags(write=False)
        gv.image = image

    def _raycaster(self, gi: _GroupInstance) -> MeshRaycaster:
        if gi.raycaster is None:
            gi.raycaster = MeshRaycaster(gi.mesh.vertices, gi.mesh.faces)
        return gi.raycaster

    def _dress(self, gv: _GroupView, gi: _GroupInstance) -> tuple[ViewOccluders | None, dict[str, Any]]:
        """Truncate and occlude the view as drawn from its scene generator (:func:`scene_rng`).

        Replaces ``gv.view`` when the view is truncated. Returns the occluders (None without) and the view's meta
        entries: ``truncated`` (part of the object leaves the image, measured), ``truncation`` (what was drawn, or
        None), ``object_box`` (x0, y0, x1, y1 pixels of the whole object's projection, also beyond the image),
        ``occluders`` (their exact records) and ``occlusion`` (the cover aimed at, the share of the grid silhouette
        hidden, and, filled in once rendered, the share of the object's pixels ``hidden`` and their count
        ``hidden_px``; None without occluders).
        """
        cam, occ_cfg = self.config.camera, self.config.occluders
        rng = scene_rng(gv.view_seed)
        truncate, occlude = rng.random() < cam.truncation_fraction, rng.random() < occ_cfg.fraction
        meta: dict[str, Any] = {"truncation": None, "occluders": [], "occlusion": None}
        if truncate:
            gv.view, meta["truncation"] = truncate_view(rng, cam, gv.view, gi.mesh.vertices, gi.mesh.faces)
        meta["truncated"] = is_truncated(gv.view, gi.mesh.vertices)
        meta["object_box"] = [round(c, 3) for c in projected_box(gv.view, gi.mesh.vertices)]
        if not occlude:
            return None, meta
        placement = place_occluders(rng, occ_cfg, gv.view, gi.mesh.vertices, gi.mesh.faces, self._raycaster(gi),
                                    self._draw_shape, self._local_meshes())  # fmt: skip
        meta["occluders"] = [spec.meta() for spec in placement.specs]
        meta["occlusion"] = {"target": placement.target_cover, "grid": placement.grid_cover}
        return build_occluders(placement, self._local_meshes()), meta

    def _local_meshes(self) -> LocalMeshes:
        """The group's occluder meshes in their local frames, starting with its own procedural instances (kind
        ``instance``)."""
        if self.local_meshes is None:
            self.local_meshes = {}
            for gi in self.instances:
                if gi.params is not None:  # procedural: rebuildable from the record
                    shape = {"family": self.family.name, "instance_id": gi.instance_id}
                    self.local_meshes[shape_key("instance", shape)] = normalised_mesh(gi.mesh)
        return self.local_meshes

    def _draw_shape(self, rng: np.random.Generator, kind: str) -> dict[str, Any]:
        others = [n for n in family_names() if n != self.family.name] or [self.family.name]
        # an occluder of kind "instance" is one of the group's procedural instances (a user's mesh cannot be rebuilt
        # from a record), or a fresh one of the category's family when the group has none
        group = [(gi.instance_id, gi.params) for gi in self.instances if gi.params is not None]
        return draw_shape(rng, kind, self.family.name, group, others, _instance_id)

    def _surface(
        self, gv: _GroupView, gi: _GroupInstance, face_id: np.ndarray, occluders: ViewOccluders | None
    ) -> tuple[ViewSurface, tuple[float, int] | None]:
        """The view's exact surface (over its whole scene) and, with occluders, the share of the object they hide."""
        two_sided = gi.mesh.two_sided
        if occluders is None:
            raycaster = self._raycaster(gi)
            return view_surface(gi.mesh.vertices, gi.mesh.faces, gv.view, face_id, raycaster, two_sided), None
        V, F = scene_geometry(gi.mesh.vertices, gi.mesh.faces, occluders)
        n = gi.mesh.n_faces
        surface = view_surface(V, F, gv.view, face_id, MeshRaycaster(V, F), two_sided, n_object_faces=n)
        box = projected_box(gv.view, gi.mesh.vertices)
        return surface, hidden_share(gv.view, surface.face_id, n, self._raycaster(gi), box)

    def dense(self, src: int, dst: int, same: bool) -> tuple[np.ndarray, np.ndarray]:
        """(status, corr) of view ``src`` into view ``dst``."""
        s, d = self.view(src), self.view(dst)
        with _timed(self.timings, "gt"):
            ia, ib = s.instance, d.instance
            key = (src, ib)
            if key not in self.counterparts:
                surf = s.surface
                if same:
                    self.counterparts[key] = (surf.face, surf.points_world)
                else:
                    a, b = self.instances[ia].surface, self.instances[ib].surface
                    canonical = None
                    if not isinstance(a, ProceduralSurface):  # a closest-point search: once per view
                        if src not in self.canonical:
                            self.canonical[src] = a.to_canonical(surf.face, surf.bary, surf.points_world)
                        canonical = self.canonical[src]
                    self.counterparts[key] = counterparts(a, b, surf.face, surf.bary, surf.points_world, canonical)
            f, pts = self.counterparts[key]
            return correspondence(s.surface, d.surface, f, pts)

    def release(self) -> None:
        for gi in self.instances:
            if gi.handle is not None:
                self.renderer.release(gi.handle)
                gi.handle = None


def generate_shard(config: RenderConfig, shard_index: int, timings: dict | None = None) -> Iterator[dict]:
    """Yield the ``config.shard_count(shard_index)`` samples of shard ``shard_index``, in order.

    Each sample is a schema dict (``loaders.schema``) with ``__key__ = f"s{shard:06d}_{j:05d}"``. The output is a
    pure function of the arguments.

    Args:
        config: the dataset's generator config.
        shard_index: which shard.
        timings: if given, seconds are accumulated under ``mesh``, ``raster`` and ``gt``.
    """
    from loaders.schema import check_sample

    family = get_family(config.category)
    renderer = get_renderer(config.backend)
    photoreal = None
    if config.renderer == "blenderproc":  # a Blender worker process for this shard only
        from datagen.photoreal.views import PhotorealViews

        photoreal = PhotorealViews(config)
    n = config.shard_count(shard_index)
    j = 0
    g = 0
    dropped = 0
    try:
        while j < n:
            count = min(config.pairs_per_group, n - j)
            group = _Group(config, family, renderer, shard_index, g, timings, photoreal)
            try:
                for k, (a, b, same) in enumerate(
                    _draw_pairs(group.rng, group.views, count, config, [gi.instance_id for gi in group.instances])
                ):
                    if not (group.view(a).usable and group.view(b).usable):  # never written with wrong GT
                        dropped += 1
                        if dropped > 10 * n + 20:
                            raise RuntimeError(
                                f"shard {shard_index}: {dropped} pairs dropped for {j} kept: the photoreal renders "
                                "disagree with the exact ground truth systematically (see a view's meta.photoreal)"
                            )
                        continue
                    sample = _make_sample(group, a, b, same, k)
                    sample["__key__"] = sample_key(shard_index, j)
                    check_sample(sample)
                    yield sample
                    j += 1
            finally:
                group.release()
            g += 1
    finally:
        if photoreal is not None:
            photoreal.close()
            if timings is not None:
                timings[DROPPED_PAIRS] = timings.get(DROPPED_PAIRS, 0) + dropped


def _make_sample(group: _Group, a: int, b: int, same: bool, k: int) -> dict:
    status01, corr01 = group.dense(a, b, same)
    status10, corr10 = group.dense(b, a, same)
    v0, v1 = group.view(a), group.view(b)
    i0, i1 = group.instances[v0.instance], group.instances[v1.instance]
    fam, cfg = group.family, group.config
    sources = [i0.source, i1.source]
    meta = {
        "schema_version": SCHEMA_VERSION,
        "source": "meshes" if "meshes" in sources else "procedural",
        "instance_sources": sources,
        "category": fam.name,
        "image_size0": [v0.view.height, v0.view.width],
        "image_size1": [v1.view.height, v1.view.width],
        "keypoint_names": fam.keypoint_names,
        "keypoint_sides": [kp.side for kp in fam.keypoints],
        META_FLIP_PERM: fam.flip_permutation,
        META_SYM_GROUPS: [list(map(int, s)) for s in fam.symmetric_groups],
        "same_instance": bool(same),
        "instance_ids": [i0.instance_id, i1.instance_id],
        "shape_params": [i0.params, i1.params],
        "views": [v0.meta, v1.meta],
        "materials": [i0.appearance.meta(), i1.appearance.meta()],
        "seeds": {
            "root": cfg.seed,
            "shard": group.shard_index,
            "group": group.g,
            "pair_in_group": k,
            "group_seed_sequence": [cfg.seed, group.shard_index, group.g],
        },
        "renderer": group.renderer.settings
        if group.photoreal is None
        else {**group.renderer.settings, "image": cfg.renderer, "photoreal": dataclasses.asdict(cfg.photoreal)},
        **({"mesh_library": cfg.meshes, "meshes_fingerprint": cfg.meshes_fingerprint} if cfg.meshes else {}),
        "generator": GENERATOR,
        "generator_version": __version__,
        "config_fingerprint": cfg.fingerprint(),
    }
    return {
        "meta": _jsonable(meta),
        "image0": v0.image,
        "image1": v1.image,
        "mask0": v0.surface.object_mask,
        "mask1": v1.surface.object_mask,
        "status_0to1": status01,
        "corr_0to1": corr01,
        "valid_0to1": status01 == 1,
        "status_1to0": status10,
        "corr_1to0": corr10,
        "valid_1to0": status10 == 1,
        "depth0": v0.surface.object_depth,
        "depth1": v1.surface.object_depth,
        "K0": v0.view.K.astype(np.float32),
        "K1": v1.view.K.astype(np.float32),
        "T_cam0_from_world": v0.view.T_cam_from_world.astype(np.float32),
        "T_cam1_from_world": v1.view.T_cam_from_world.astype(np.float32),
        "kps0": v0.kps[0].astype(np.float32),
        "kps0_vis": v0.kps[1],
        "kps1": v1.kps[0].astype(np.float32),
        "kps1_vis": v1.kps[1],
    }

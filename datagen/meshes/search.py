"""The template search (step 1 of :mod:`datagen.meshes.register`): a fixed pool of family instances, their
distance to the mesh (:func:`fit_distance`: surfaces balanced per part, and thin layers), and coordinate descent
over the best one's discrete and continuous parameters, nested pose angles included."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from datagen.families import Family, Instance, get_family
from datagen.meshes.sampling import sample_surface

__all__ = ["Candidate", "Target", "candidate_pool", "layer_slots", "fit_distance", "make_target", "discrete_refine",
           "continuous_refine", "axis_scale", "chamfer", "layer_distance"]  # fmt: skip

POOL_SIZE = 400  # template instances tried per mesh
CONTINUOUS_SWEEPS = 5  # continuous refinement: steps of 1/5, 1/10, ... 1/80 of each parameter's range in the pool
SLOT_BALANCE = 0.5  # the share of each side of the refinement's distance averaged per part (_chamfer)
MAX_BALANCED_PIECES = 64  # a mesh of more connected pieces than this is not balanced by piece
MAX_STEPS_PER_DIRECTION = 3  # ... each repeated while it pays, up to this many times
POOL_SEED = 20261204
LAYER_SLOT_SEEN = 6  # layer_slots: pool instances with a slot that judge whether it is a layer


@dataclass
class Candidate:
    params: dict[str, Any]
    instance: Instance
    samples: np.ndarray  # [S, 3] surface samples, instance frame
    lo: np.ndarray
    hi: np.ndarray
    sample_slot: np.ndarray  # [S] the slot of each sample
    layer_faces: np.ndarray | None = None  # [F', 3] its faces in thin-layer slots (:func:`layer_slots`), lazy
    layer_samples: np.ndarray | None = None  # [S', 3] samples of them, lazy
    layer_face_slot: np.ndarray | None = None  # [F'] and [S'] their slots, lazy
    layer_sample_slot: np.ndarray | None = None


@dataclass
class Target:
    """The mesh as the search sees it in one orientation: surface samples with their tree and bounding box, and
    samples of its thin layers (:mod:`datagen.meshes.layers`; glass, labels) with theirs, or none."""

    samples: np.ndarray
    tree: cKDTree
    lo: np.ndarray
    hi: np.ndarray
    layer: np.ndarray
    layer_part: np.ndarray  # [S'] the connected component (a glass pane, a label) of each layer sample
    layer_index: Any  # a SurfaceIndex of the layer faces (placed the same way), or None
    layer_face_part: np.ndarray  # [F'] the component of each of those faces
    diagonal: float
    sample_piece: np.ndarray | None = None  # [S] the connected piece of the mesh of each sample (None: not used)


@functools.lru_cache(maxsize=8)
def candidate_pool(category: str, size: int = POOL_SIZE, seed: int = POOL_SEED) -> tuple[Candidate, ...]:
    """A fixed pool of ``size`` instances of the family (the same in every process), with surface samples."""
    family = get_family(category)
    rng = np.random.default_rng(seed)
    pool = []
    for i in range(size):
        params = family.sample_params(rng)
        inst = family.build(params, f"pool-{i}")
        pts, _, f = sample_surface(inst.vertices, inst.faces, 1500, np.random.default_rng([seed, i]))
        pool.append(Candidate(params, inst, pts, inst.vertices.min(0), inst.vertices.max(0), inst.face_slot[f]))
    return tuple(pool)


@functools.lru_cache(maxsize=32)
def layer_slots(category: str, min_seen: int = LAYER_SLOT_SEEN) -> np.ndarray:
    """bool [n_slots]: the family's slots that are thin layers on another part (:mod:`datagen.meshes.layers`) in
    at least half of the pool instances that have them, judged on the pool's first instances until every slot the
    pool has was seen in ``min_seen`` of them (count-tagged slots, such as a bus's fifth window of five on the upper
    deck, are rare: judged on the first dozen instances only, they were left out and their glass was not matched)."""
    from datagen.meshes.layers import layer_faces

    family = get_family(category)
    pool = candidate_pool(category)
    in_pool = np.zeros(len(family.slots))
    for c in pool:
        in_pool[np.unique(c.instance.face_slot)] += 1
    need = np.minimum(in_pool, min_seen)
    hits = np.zeros(len(family.slots))
    seen = np.zeros(len(family.slots))
    for c in pool:
        if np.all(seen >= need):
            break
        slot = c.instance.face_slot
        present = np.unique(slot)
        if np.all(seen[present] >= need[present]):
            continue  # nothing new to learn from this one
        layer = layer_faces(c.instance.vertices, c.instance.faces)
        seen[present] += 1
        count = np.maximum(np.bincount(slot, minlength=len(seen)), 1)
        hits += np.bincount(slot, weights=layer, minlength=len(seen)) / count > 0.5
    return (seen > 0) & (hits >= 0.5 * np.maximum(seen, 1))


def candidate_layers(category: str, c: Candidate) -> tuple[np.ndarray, np.ndarray]:
    """A candidate's faces [F, 3] in thin-layer slots and samples [S, 3] of them (instance frame; none where it has
    no such slot); their slots are kept in ``c.layer_face_slot``, ``c.layer_sample_slot``."""
    if c.layer_samples is None:
        keep = np.flatnonzero(layer_slots(category)[c.instance.face_slot])
        c.layer_faces, c.layer_face_slot = c.instance.faces[keep], c.instance.face_slot[keep]
        c.layer_samples, c.layer_sample_slot = np.zeros((0, 3)), np.zeros(0, np.int64)
        if len(keep):
            c.layer_samples, _, f = sample_surface(c.instance.vertices, c.layer_faces, 1000, np.random.default_rng(0))
            c.layer_sample_slot = c.layer_face_slot[f]
    return c.layer_faces, c.layer_samples


def purity(a: np.ndarray, b: np.ndarray) -> float:
    """The share of items whose label ``b`` is the most common one among the items of their group ``a`` (1 when
    every group falls in one label)."""
    if len(a) == 0:
        return 1.0
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    counts = np.zeros((ai.max() + 1, bi.max() + 1), np.int64)
    np.add.at(counts, (ai, bi), 1)
    return float(counts.max(axis=1).sum() / len(a))


LAYER_MISMATCH_REL = 0.02  # the search's penalty (x bbox diagonal) when only one of mesh and template has layers
LAYER_SPLIT_REL = 0.02  # ... and (x bbox diagonal) for layer parts split between several of the other's
LAYER_REFINE_SLACK = 0.01  # fitting the layers may worsen the surfaces' distance by this fraction, no more


def fit_distance(
    category: str, target: Target, c: Candidate, samples: np.ndarray | None = None, tree=None, layers: bool = True
) -> float:
    """How far candidate ``c``, scaled per axis to the mesh's box, is from the mesh: the symmetric mean
    closest-point distance of the surfaces (over ``samples`` with ``tree`` when given, else all of the target's)
    plus that of their thin layers. Layers lie within millimetres of the parts under them, so the surfaces' distance
    cannot tell how many windows a car has or how tall a bottle's label is; the layers' own distance can, measured
    exactly (samples to the other's faces both ways), and how well their parts pair up: the share of each mesh
    layer part (a connected component: a glass pane, a label) whose closest template points fall in other than its
    main slot, and of each template layer slot falling on other than its main mesh part, both ways. Three windows
    a side against one are a few pillars' width apart in distance but split each other's panes. When only one
    side has layers, a fixed penalty. ``layers=False``: the surfaces' distance alone."""
    sc, o = axis_scale(c, target.lo, target.hi)
    p, t = (target.samples, target.tree) if samples is None else (samples, tree)
    pieces = None if target.sample_piece is None else target.sample_piece[: len(p)]  # ``samples`` is a prefix
    d = chamfer(p, t, c.samples * sc + o, c.sample_slot, pieces)
    if not layers:
        return d
    return d + layer_distance(category, target, c, sc, o)


def layer_distance(category: str, target: Target, c: Candidate, sc: np.ndarray, o: np.ndarray) -> float:
    """The thin-layer term of :func:`fit_distance` for candidate ``c`` placed by per-axis scale ``sc`` and offset
    ``o`` (in the target's frame): the layers' exact distance both ways plus how well their parts pair up, or a
    fixed penalty where only one side has layers, 0 where neither has."""
    from datagen.meshes.proximity import SurfaceIndex

    faces, mine = candidate_layers(category, c)
    if len(target.layer) and len(mine):
        f_tc, _, _, d_tc = SurfaceIndex(c.instance.vertices * sc + o, faces).closest(target.layer)
        f_ct, _, _, d_ct = target.layer_index.closest(mine * sc + o)
        split = (
            2
            - purity(target.layer_part, c.layer_face_slot[f_tc])
            - purity(c.layer_sample_slot, target.layer_face_part[f_ct])
        )
        return float(d_tc.mean() + d_ct.mean()) / 2 + LAYER_SPLIT_REL * target.diagonal * split / 2
    if len(target.layer) or len(mine):
        return LAYER_MISMATCH_REL * target.diagonal
    return 0.0


def chamfer(
    a: np.ndarray,
    tree_a: cKDTree,
    b: np.ndarray,
    b_group: np.ndarray | None = None,
    a_group: np.ndarray | None = None,
) -> float:
    """Symmetric mean closest-point distance between point sets ``a`` (with its tree) and ``b``. With groups (the
    template's slot of each of ``b``'s points, the mesh's connected piece of each of ``a``'s), that side's mean is
    half over points, half over groups of each group's mean: a part of 1 % of the area (an ear, a tail tip) then
    weighs as much as a body in half the term, so its proportions and pose are fitted too, where area-weighted
    means hardly see them. Both ways matter: a template's ear lying on the mesh's head is close to the mesh; only
    the mesh's ear, far from any template point, says it is misplaced."""
    d_ba, _ = tree_a.query(b)
    d_ab, _ = cKDTree(b).query(a)
    return (balanced_mean(d_ab, a_group) + balanced_mean(d_ba, b_group)) / 2


def balanced_mean(d: np.ndarray, group: np.ndarray | None) -> float:
    """(1 - SLOT_BALANCE) x the mean of ``d`` + SLOT_BALANCE x the mean over groups of each group's mean."""
    if group is None or SLOT_BALANCE <= 0:
        return float(d.mean())
    _, inv, counts = np.unique(group, return_inverse=True, return_counts=True)
    per_group = np.bincount(inv, weights=d) / counts
    return (1 - SLOT_BALANCE) * float(d.mean()) + SLOT_BALANCE * float(per_group.mean())


def axis_scale(c: Candidate, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-axis scale and offset taking the candidate's bbox onto ``lo, hi``."""
    s = (hi - lo) / np.maximum(c.hi - c.lo, 1e-9)
    return s, lo - c.lo * s


def make_target(
    placed: tuple[np.ndarray, cKDTree, np.ndarray, np.ndarray],
    vertices: np.ndarray,
    faces: np.ndarray,
    R: np.ndarray,
    shift: np.ndarray,
    seed: int,
    sample_face: np.ndarray | None = None,
) -> Target:
    """The search's view of the mesh in orientation ``R``: ``placed`` (samples, tree, box: the samples turned by
    ``R`` and moved by ``shift``; ``sample_face`` the mesh face of each sample) and samples of its thin layers,
    placed the same way (none when it has none)."""
    from datagen.meshes.layers import layer_components, welded_components
    from datagen.meshes.proximity import SurfaceIndex

    p, tree, lo, hi = placed
    v = np.asarray(vertices, np.float64)
    part = layer_components(v, faces)
    f, face_part = np.asarray(faces)[part >= 0], part[part >= 0]
    layer, sample_part, index = np.zeros((0, 3)), np.zeros(0, np.int64), None
    if len(f):
        pts, _, owner = sample_surface(v, f, 2000, np.random.default_rng([seed, 1]))
        layer, sample_part = pts @ R.T + shift, face_part[owner]
        index = SurfaceIndex(v @ R.T + shift, f)
    diagonal = float(np.linalg.norm(hi - lo))
    piece = None
    if sample_face is not None:
        face_piece = welded_components(v, faces, 1e-6 * diagonal)
        piece = face_piece[sample_face]
        if len(np.unique(piece)) > MAX_BALANCED_PIECES:  # a triangle soup: its pieces are not parts
            piece = None
    return Target(p, tree, lo, hi, layer, sample_part, index, face_part, diagonal, piece)


def discrete_refine(family: Family, cand: Candidate, target: Target, sweeps: int = 2) -> Candidate:
    """Coordinate descent over the candidate's discrete parameters (booleans, integers, strings: which optional
    parts it has, how many slats or windows), each tried at every value the pool shows, the rest kept, by
    :func:`fit_distance` against the mesh. The pool's shapes decide proportions well; counts of small repeated parts
    (slats, windows) it leaves to chance, and they decide which slots correspond."""
    pool = candidate_pool(family.name)
    keys = [k for k, v in cand.params.items() if isinstance(v, bool | int | str) and not isinstance(v, float)]
    values = {k: sorted({c.params[k] for c in pool}, key=repr) for k in keys}
    best = (fit_distance(family.name, target, cand), cand)
    for _ in range(sweeps):
        improved = False
        for k in keys:
            for value in values[k]:
                if value == best[1].params[k]:
                    continue
                c = build_candidate(family, {**best[1].params, k: value})
                if c is None:
                    continue
                d = fit_distance(family.name, target, c)
                if d < best[0] * (1 - 1e-3):
                    best, improved = (d, c), True
        if not improved:
            break
    return best[1]


def build_candidate(family: Family, params: dict[str, Any]) -> Candidate | None:
    """A candidate built from ``params`` with its surface samples, or None where the parameters build nothing."""
    try:
        inst = family.build(params, "refine")
    except (ValueError, KeyError, IndexError, RuntimeError, FloatingPointError):
        return None
    samples, _, f = sample_surface(inst.vertices, inst.faces, 1500, np.random.default_rng(0))
    return Candidate(params, inst, samples, inst.vertices.min(0), inst.vertices.max(0), inst.face_slot[f])


ParamPath = tuple[Any, ...]  # a key into nested parameters: ("head_len",), ("pose", "front_left", 1)


def float_paths(params: Any, prefix: ParamPath = ()) -> list[ParamPath]:
    """Paths to every float in ``params``, nested dicts and lists included (a quadruped's per-leg pose angles, a
    person's joint angles): the proportions and the pose decide where canonical coordinates land alike."""
    if isinstance(params, float):
        return [prefix]
    if isinstance(params, dict):
        return [q for k in params for q in float_paths(params[k], (*prefix, k))]
    if isinstance(params, list | tuple):
        return [q for i, x in enumerate(params) for q in float_paths(x, (*prefix, i))]
    return []


def get_param(params: Any, path: ParamPath) -> Any:
    for k in path:
        params = params[k]
    return params


def with_param(params: Any, path: ParamPath, value: float) -> Any:
    """A copy of ``params`` with the float at ``path`` set to ``value`` (only the containers on the path copied)."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(params, dict):
        return {**params, head: with_param(params[head], rest, value)}
    out = list(params)
    out[head] = with_param(out[head], rest, value)
    return out if isinstance(params, list) else tuple(out)


def continuous_refine(
    family: Family,
    cand: Candidate,
    target: Target,
    sweeps: int = CONTINUOUS_SWEEPS,
    layers: bool = False,
) -> Candidate:
    """Coordinate descent over the candidate's continuous parameters (every float, nested ones such as per-leg
    pose angles included; each moved by a fifth of its range in the pool, then a tenth, ..., and on in the same
    direction while that pays), by the symmetric distance to the mesh: the part proportions and poses a pool of
    random shapes only approximates (where the wheels sit along a car, how tall a backrest is, how long a muzzle,
    how far a knee is flexed) decide where canonical coordinates land, which a smooth deformation towards closest
    points cannot slide into place. Scored by the surfaces' distance on 2000 of the mesh's samples; with
    ``layers``, by :func:`fit_distance` with its layer term (glass outlines the cabin under it), among shapes whose
    surfaces' distance stays within ``LAYER_REFINE_SLACK`` of the start's: a layer's exact distance would otherwise
    outweigh the sampled one of the whole and trade a body's proportions for a label's edge."""
    pool = candidate_pool(family.name)
    paths = [q for q in float_paths(cand.params) if all(has_float(c.params, q) for c in pool)]
    lo = {q: min(get_param(c.params, q) for c in pool) for q in paths}
    hi = {q: max(get_param(c.params, q) for c in pool) for q in paths}
    few = target.samples[:2000]
    few_tree = cKDTree(few)

    def surface(c: Candidate) -> float:
        return fit_distance(family.name, target, c, few, few_tree, layers=False)

    def score(c: Candidate) -> float:
        return fit_distance(family.name, target, c, few, few_tree, layers=layers)

    limit = surface(cand) * (1 + LAYER_REFINE_SLACK) if layers else np.inf
    best, best_d = cand, score(cand)
    frac = 0.2
    for _ in range(sweeps):
        for q in paths:
            span = hi[q] - lo[q]
            if span <= 0:
                continue
            for sign in (1.0, -1.0):
                moved = False
                for _step in range(MAX_STEPS_PER_DIRECTION):  # on in a direction while it pays
                    value = float(np.clip(get_param(best.params, q) + sign * frac * span, lo[q], hi[q]))
                    if value == get_param(best.params, q):
                        break
                    c = build_candidate(family, with_param(best.params, q, value))
                    if c is None:
                        break
                    d = score(c)
                    if not (d < best_d * (1 - 1e-3) and (not layers or surface(c) <= limit)):
                        break
                    best, best_d, moved = c, d, True
                if moved:
                    break
        frac /= 2
    return best


def has_float(params: Any, path: ParamPath) -> bool:
    try:
        return isinstance(get_param(params, path), float)
    except (KeyError, IndexError, TypeError):
        return False

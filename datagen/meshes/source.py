"""User meshes as a source of instances for rendering: a registered library, opened once per process.

:func:`mesh_source` opens a library made by ``datagen meshes ingest`` (intake + registration) and checks that it
holds meshes of the family being rendered; :meth:`MeshSource.get` loads a mesh with its registration as a
:class:`UserInstance` (kept in a small per-process cache, since building its closest-point indices costs more
than rendering a view). :func:`library_fingerprint` pins a library's content for a dataset's manifest.
"""

from __future__ import annotations

import functools
import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datagen.canonical import RegisteredSurface
from datagen.families import Family
from datagen.meshes.library import LibraryError, MeshLibrary, mesh_path
from datagen.meshes.register import Registration, load_registration, registration_path
from datagen.meshes.types import UserMesh

__all__ = ["UserInstance", "MeshSource", "mesh_source", "library_fingerprint", "REQUIRED_STAGES"]

REQUIRED_STAGES = ("intake", "register")
_CACHE_SIZE = 24


@dataclass
class UserInstance:
    """A user's mesh ready to render: the mesh, its registration and its canonical surface."""

    mesh: UserMesh
    registration: Registration
    surface: RegisteredSurface

    def render(self, appearance: str, rng: np.random.Generator):
        """(RenderMesh, Appearance) of the mesh (:func:`datagen.render.mesh.prepare_user_mesh`)."""
        from datagen.render.mesh import prepare_user_mesh

        return prepare_user_mesh(self.mesh, appearance, rng)


class MeshSource:
    """The registered meshes of one library, for one family."""

    def __init__(self, path: str | Path, family: Family):
        self.path = Path(path)
        self.family = family
        self.library = MeshLibrary(self.path, stages=list(REQUIRED_STAGES))
        if self.library.category != family.name:
            raise LibraryError(
                f"{self.path}: a library of {self.library.category} meshes cannot serve category {family.name}"
            )
        self.ids = self.library.ids
        if not self.ids:
            if MeshLibrary(self.path, stages=["intake"]).ids:
                raise LibraryError(
                    f"{self.path}: its meshes passed intake but none is registered; run `datagen meshes ingest "
                    f"<source> --category {family.name} --out {self.path}` again (without --stages) to register them"
                )
            raise LibraryError(f"{self.path}: no mesh passed intake and registration; see {self.path / 'intake.json'}")
        self._cache: OrderedDict[str, UserInstance] = OrderedDict()

    def get(self, mesh_id: str) -> UserInstance:
        if mesh_id in self._cache:
            self._cache.move_to_end(mesh_id)
            return self._cache[mesh_id]
        mesh = self.library.load(mesh_id)
        reg = load_registration(self.path, mesh_id)
        vertices = mesh.vertices @ np.asarray(reg.rotation).T  # identity unless a fix was not written back
        user = UserInstance(mesh, reg, RegisteredSurface(self.family, vertices, mesh.faces, reg, mesh.two_sided))
        self._cache[mesh_id] = user
        if len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return user


@functools.lru_cache(maxsize=4)
def _source(path: str, family_name: str) -> MeshSource:
    from datagen.families import get_family

    return MeshSource(path, get_family(family_name))


def mesh_source(path: str | Path, family: Family) -> MeshSource:
    """The process's :class:`MeshSource` of a library for a family (opened once)."""
    return _source(str(Path(path).resolve()), family.name)


def library_fingerprint(path: str | Path) -> str:
    """sha256 over the ids, meshes and registrations a render would use: equal fingerprints, equal datasets."""
    lib = MeshLibrary(path, stages=list(REQUIRED_STAGES))
    h = hashlib.sha256(lib.category.encode())
    for mesh_id in lib.ids:
        h.update(mesh_id.encode())
        for f in (mesh_path(lib.path, mesh_id), registration_path(lib.path, mesh_id)):
            h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()

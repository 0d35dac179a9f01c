"""Schema samples -> tensors -> batches (docs/interfaces.md §4).

The batch dict of docs/interfaces.md §4, built by ``collate_pairs`` from per-pair records (``to_item``):

=================  ===================================  ===========================================================
key                dtype, shape                         meaning
=================  ===================================  ===========================================================
images             float32 [B, 2, 3, H, W] in [0, 1]    view 0, view 1
corr               float32 [B, 2, H, W, 2] px           [:, 0] = corr_0to1, [:, 1] = corr_1to0; 0 where undefined
valid              bool [B, 2, H, W]                    status == MATCHED; all False without dense fields
status             uint8 [B, 2, H, W]                   schema status codes; 0 (BACKGROUND) without dense fields
mask               bool [B, 2, H, W]                    object silhouette; all True where absent
depth              float32 [B, 2, H, W] m               0 where absent
K                  float32 [B, 2, 3, 3]                 identity where absent
T_cam_from_world   float32 [B, 2, 4, 4]                 identity where absent
kps                float32 [B, 2, N, 2] px              keypoints padded with 0 to N = ``max_keypoints``
kps_vis            bool [B, 2, N]                       False on padding and invisible points
has_dense          bool [B]                             dense fields are real
has_mask           bool [B]                             masks are real
has_camera         bool [B]                             K / T are real
is_padding         bool [B]                             a repeat that only evens out the per-rank epoch length
meta               list[dict]                           each sample's meta
key, url, source   list[str]                            sample key, shard URL, data-manifest source name
stream             list[dict]                           per sample: ``slot`` (global worker), ``skipped`` so far
=================  ===================================  ===========================================================

``uint8_images=True`` keeps ``images`` uint8 [0, 255] (:func:`images_to_float` on the device gives the float32
values bit for bit); ``fields`` leaves out array keys (:data:`ARRAY_KEYS`) nobody reads.

:class:`BatchWriter` fills the batch arrays one pair at a time: from a :func:`to_item` record (a light per-pair
record: references to a transformed sample's arrays, padded keypoints, flags; ``collate_pairs`` is a writer over a
list of them) or, for a planned sample (:mod:`loaders.decode`), by decoding its rasters straight into the slot
(:mod:`loaders.fused`). It runs in the DataLoader worker (``PairStream.batches``); there the arrays live in shared
memory, in the calling process they reuse the memory of earlier batches nobody holds any more.
"""

from __future__ import annotations

import sys
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import cv2
import numpy as np
import torch

from loaders.raster import is_pending
from loaders.schema import has_dense

__all__ = [
    "MAX_KEYPOINTS",
    "to_item",
    "collate_pairs",
    "BatchWriter",
    "resolve_fields",
    "images_to_float",
    "BATCH_KEYS",
    "ARRAY_KEYS",
]

MAX_KEYPOINTS = 40  # >= every datagen family (aeroplane: 33) and SPair-71k category
BATCH_KEYS = (
    "images",
    "corr",
    "valid",
    "status",
    "mask",
    "depth",
    "K",
    "T_cam_from_world",
    "kps",
    "kps_vis",
    "has_dense",
    "has_mask",
    "has_camera",
    "is_padding",
)
ARRAY_KEYS = BATCH_KEYS[:10]  # the per-pair arrays a batch may leave out (``fields``); the flags are always there
_SMALL_KEYS = ("K", "T_cam_from_world", "kps", "kps_vis", "has_dense", "has_mask", "has_camera", "is_padding")
_LIST_KEYS = ("meta", "key", "url", "source", "stream")
_EYE3, _EYE4 = np.eye(3, dtype=np.float32), np.eye(4, dtype=np.float32)
_NP = {torch.float32: np.float32, torch.uint8: np.uint8, torch.bool: np.bool_}


def to_item(sample: Mapping[str, Any], max_keypoints: int = MAX_KEYPOINTS) -> dict[str, Any]:
    """One schema sample (both views of one size) -> a per-pair record for :func:`collate_pairs`.

    Raises:
        ValueError: naming the sample when its views differ in size or it has more than ``max_keypoints``.
    """
    key = sample.get("__key__", "?")
    h, w = sample["image0"].shape[:2]
    if sample["image1"].shape[:2] != (h, w):
        raise ValueError(
            f"sample {key}: views are {sample['image0'].shape[:2]} and {sample['image1'].shape[:2]}; batches need one"
            " size: add a transform that fixes it (vggt_preprocess 'pad', fit or random_affine with out_hw)"
        )
    dense = has_dense(sample)
    has_mask = "mask0" in sample and "mask1" in sample
    has_depth = "depth0" in sample and "depth1" in sample
    has_camera = all(k in sample for k in ("K0", "K1", "T_cam0_from_world", "T_cam1_from_world"))
    kps = np.zeros((2, max_keypoints, 2), np.float32)
    vis = np.zeros((2, max_keypoints), bool)
    for v in (0, 1):
        if f"kps{v}" in sample:
            k = np.asarray(sample[f"kps{v}"], np.float32)
            if k.shape[0] > max_keypoints:
                raise ValueError(f"sample {key}: {k.shape[0]} keypoints > max_keypoints={max_keypoints}")
            kv = np.asarray(sample[f"kps{v}_vis"], bool) & np.isfinite(k).all(-1)
            kps[v, : k.shape[0]] = np.where(kv[:, None], k, 0)
            vis[v, : k.shape[0]] = kv
    return {
        "hw": (h, w),
        "image": (sample["image0"], sample["image1"]),
        "corr": (sample["corr_0to1"], sample["corr_1to0"]) if dense else None,
        "status": (sample["status_0to1"], sample["status_1to0"]) if dense else None,
        "mask": (sample["mask0"], sample["mask1"]) if has_mask else None,
        "depth": (sample["depth0"], sample["depth1"]) if has_depth else None,
        "K": (sample["K0"], sample["K1"]) if has_camera else (_EYE3, _EYE3),
        "T_cam_from_world": (
            (sample["T_cam0_from_world"], sample["T_cam1_from_world"]) if has_camera else (_EYE4, _EYE4)
        ),
        "kps": kps,
        "kps_vis": vis,
        "has_dense": dense,
        "has_mask": has_mask,
        "has_camera": has_camera,
        "is_padding": bool(sample.get("__padding__", False)),
        "meta": sample["meta"],
        "key": str(key),
        "url": str(sample.get("__url__", "")),
        "source": str(sample.get("__source__", "")),
        "stream": dict(sample.get("__stream__", {})),
    }


def _alloc(
    shape: tuple[int, ...], dtype: torch.dtype, shared: bool | None = None, zeroed: bool = False
) -> tuple[torch.Tensor, np.ndarray, np.ndarray | None]:
    """An uninitialised tensor, its numpy view and, with ``zeroed``, where it may be non-zero.

    In a DataLoader worker (or with ``shared=True``) it lives in shared memory already, so sending the batch to the
    main process copies nothing more (what ``default_collate`` does too); fresh shared memory reads 0. In the
    calling process the memory of an earlier batch is reused once nothing refers to it (:func:`_pooled`).
    ``zeroed``: the array is 0 outside the rectangles of the returned int32 [B, 2, 4] table (``(y0, y1, x0, x1)``
    per pair and view); whoever writes a slot keeps its entry up to date.
    """
    if shared is None:
        shared = torch.utils.data.get_worker_info() is not None
    if not shared:
        a, dirty = _pooled(shape, _NP[dtype], zeroed)
        return torch.from_numpy(a), a, dirty
    nbytes = int(np.prod(shape)) * torch.empty(0, dtype=dtype).element_size()
    t = torch.empty(0, dtype=dtype).set_(torch.UntypedStorage._new_shared(nbytes), 0, shape)
    return t, t.numpy(), (np.zeros((*shape[:2], 4), np.int32) if zeroed else None)


_POOL: dict[tuple, list[tuple[np.ndarray, np.ndarray | None]]] = {}
_POOL_PER_SHAPE = 3


def _pooled(shape: tuple[int, ...], dtype: Any, zeroed: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """An array for a batch in this process, reusing the memory of an earlier batch's array once nothing refers to
    it any more (every tensor or view of it holds a reference; the pool's own and this loop's are the only ones
    left): writing into pages already mapped costs a fraction of first touches of fresh ones. With ``zeroed``, the
    array comes with its table of possibly non-zero rectangles (see :func:`_alloc`)."""
    key = (tuple(shape), np.dtype(dtype).str, zeroed)
    entries = _POOL.get(key)
    if entries is None:
        if len(_POOL) >= 16:  # another resolution or layout: forget the old ones
            _POOL.clear()
        entries = _POOL[key] = []
    for entry in entries:
        if sys.getrefcount(entry[0]) == 2:  # the entry's and getrefcount's argument's: nobody else refers to it
            return entry
    if zeroed:  # calloc: the kernel's zero pages, nothing written yet
        entry = (np.zeros(shape, dtype), np.zeros((*shape[:2], 4), np.int32))
    else:  # numpy asks for transparent huge pages: ~2x fewer page faults than torch
        entry = (np.empty(shape, dtype), None)
    if len(entries) < _POOL_PER_SHAPE:
        entries.append(entry)
    return entry


def resolve_fields(fields: Collection[str] | None) -> tuple[str, ...]:
    """The array keys a batch carries: all of :data:`ARRAY_KEYS` by default, else the given ones.

    Raises:
        ValueError: on a key that is not an array key of the batch.
    """
    if fields is None:
        return ARRAY_KEYS
    unknown = sorted(set(fields) - set(ARRAY_KEYS))
    if unknown:
        raise ValueError(f"fields: unknown batch keys {unknown}; choose from {list(ARRAY_KEYS)}")
    return tuple(k for k in ARRAY_KEYS if k in fields)


class BatchWriter:
    """Fills the batch arrays of the table above one pair at a time, then hands the batch out.

    The arrays are allocated when the first pair arrives (its size fixes ``H x W``); each pair is written into its
    slot once (:meth:`add`): from a :func:`to_item` record (:meth:`add_item`) or, for a planned sample
    (:mod:`loaders.decode`), decoded straight into the slot (:meth:`add_planned`). A failed write leaves the slot to
    the next pair. :meth:`finish` hands the batch out and empties the writer.

    Args:
        batch_size: pairs per batch.
        uint8_images: ``images`` as uint8 [0, 255] instead of float32 [0, 1].
        fields: array keys to carry (default all of :data:`ARRAY_KEYS`); flags and lists are always there.
        max_keypoints: keypoint padding ``N``.
        shared: allocate in shared memory (default: when running in a DataLoader worker).
    """

    def __init__(
        self,
        batch_size: int,
        uint8_images: bool = False,
        fields: Collection[str] | None = None,
        max_keypoints: int = MAX_KEYPOINTS,
        shared: bool | None = None,
    ) -> None:
        self.batch_size, self.uint8_images, self.fields = int(batch_size), uint8_images, resolve_fields(fields)
        self.max_keypoints, self.shared = max_keypoints, shared
        self._reset()

    def _reset(self) -> None:
        """Empty: the next pair allocates the next batch's arrays."""
        self.n = 0
        self.hw: tuple[int, int] | None = None
        self._first_key = ""
        self._tensors: dict[str, torch.Tensor] = {}
        self.arrays: dict[str, np.ndarray] = {}
        self.dirty: dict[str, np.ndarray] = {}  # key -> int32 [B, 2, 4]: where the array may be non-zero
        self._small: dict[str, list[Any]] = {k: [] for k in (*_SMALL_KEYS, *_LIST_KEYS)}

    def __len__(self) -> int:
        return self.n

    @property
    def full(self) -> bool:
        return self.n >= self.batch_size

    def _slot(self, hw: tuple[int, int], key: str) -> int:
        if self.full:
            raise RuntimeError("BatchWriter: the batch is full; call finish()")
        if self.hw is None:
            self.hw, self._first_key = hw, key
            B, (H, W) = self.batch_size, hw
            shapes = {
                "images": ((B, 2, 3, H, W), torch.uint8 if self.uint8_images else torch.float32),
                "corr": ((B, 2, H, W, 2), torch.float32),
                "status": ((B, 2, H, W), torch.uint8),
                "valid": ((B, 2, H, W), torch.bool),
                "mask": ((B, 2, H, W), torch.bool),
                "depth": ((B, 2, H, W), torch.float32),
            }
            for k in self.fields:
                if k in shapes:
                    t, a, dirty = _alloc(*shapes[k], shared=self.shared, zeroed=k == "corr")
                    self._tensors[k], self.arrays[k] = t, a
                    if dirty is not None:
                        self.dirty[k] = dirty
        elif hw != self.hw:
            raise ValueError(
                f"collate_pairs: samples {self._first_key} {self.hw} and {key} {hw} differ in size;"
                " fix the size with a transform"
            )
        return self.n

    def add(self, sample: Mapping[str, Any], members: Mapping[str, Any] | None = None) -> None:
        """The batch stage: write one transformed pair into the next slot. A planned sample (rasters still
        :class:`loaders.raster.Pending`) is decoded from its tar ``members`` straight into the slot
        (:meth:`add_planned`); a decoded one is copied (:meth:`add_sample`).

        Raises:
            SchemaError: naming the sample when a member does not decode.
        """
        if is_pending(sample["image0"]):
            self.add_planned(sample, members)
        else:
            self.add_sample(sample)

    def add_item(self, it: Mapping[str, Any]) -> None:
        """Write a :func:`to_item` record into the next slot."""
        i, a = self._slot(it["hw"], it["key"]), self.arrays
        for v in (0, 1):
            if "images" in a:
                a["images"][i, v] = it["image"][v].transpose(2, 0, 1)  # HWC -> CHW (and uint8 -> float) in one pass
                if not self.uint8_images:
                    a["images"][i, v] *= np.float32(1 / 255)
            if "corr" in self.dirty:
                self.dirty["corr"][i, v] = (0, self.hw[0], 0, self.hw[1])
            if it["corr"] is not None:
                if "corr" in a:
                    a["corr"][i, v] = it["corr"][v]
                    cv2.patchNaNs(a["corr"][i, v].reshape(-1, 2 * self.hw[1]), 0)  # NaN (not stored) -> 0
                st = it["status"][v]
            else:
                st = None
                if "corr" in a:
                    a["corr"][i, v] = 0
            if "status" in a:
                a["status"][i, v] = 0 if st is None else st
            if "valid" in a:
                a["valid"][i, v] = False if st is None else (st == 1)  # Status.MATCHED
            if "mask" in a:
                a["mask"][i, v] = it["mask"][v] if it["mask"] is not None else True
            if "depth" in a:
                a["depth"][i, v] = it["depth"][v] if it["depth"] is not None else 0
        self._finish_slot(it)

    def add_sample(self, sample: Mapping[str, Any]) -> None:
        """Write a (transformed) schema sample into the next slot."""
        self.add_item(to_item(sample, self.max_keypoints))

    def add_planned(self, sample: Mapping[str, Any], members: Mapping[str, Any]) -> None:
        """Write a planned, transformed sample (:mod:`loaders.decode`) into the next slot, decoding its rasters from
        the tar ``members`` straight into the batch (:func:`loaders.fused.write_planned`).

        Raises:
            SchemaError: naming the sample when a member does not decode.
        """
        from loaders.fused import write_planned

        it = to_item(sample, self.max_keypoints)  # references to the placeholders, keypoints, flags
        i = self._slot(it["hw"], it["key"])
        write_planned(self.arrays, i, sample, members, self.dirty.get("corr"))
        self._finish_slot(it)

    def _finish_slot(self, it: Mapping[str, Any]) -> None:
        for k in _SMALL_KEYS:
            self._small[k].append(it[k])
        for k in _LIST_KEYS:
            self._small[k].append(it[k])
        self.n += 1

    def finish(self) -> dict[str, Any]:
        """The batch dict of the pairs written so far (a partial batch is a view of the first ``n`` slots); the
        writer is empty again afterwards, ready for the next batch."""
        if self.n == 0:
            raise ValueError("collate_pairs: empty batch")
        n, s = self.n, self._small
        batch: dict[str, Any] = {}
        for k in ARRAY_KEYS:
            if k in self._tensors:
                batch[k] = self._tensors[k] if n == self.batch_size else self._tensors[k][:n]
        if "K" in self.fields:
            batch["K"] = torch.from_numpy(np.stack([np.stack(k) for k in s["K"]]).astype(np.float32))
        if "T_cam_from_world" in self.fields:
            T = s["T_cam_from_world"]
            batch["T_cam_from_world"] = torch.from_numpy(np.stack([np.stack(t) for t in T]).astype(np.float32))
        if "kps" in self.fields:
            batch["kps"] = torch.from_numpy(np.stack(s["kps"]))
        if "kps_vis" in self.fields:
            batch["kps_vis"] = torch.from_numpy(np.stack(s["kps_vis"]))
        for k in ("has_dense", "has_mask", "has_camera", "is_padding"):
            batch[k] = torch.tensor(s[k], dtype=torch.bool)
        for k in _LIST_KEYS:
            batch[k] = list(s[k])
        self._reset()
        return {k: batch[k] for k in (*BATCH_KEYS, *_LIST_KEYS) if k in batch}


def collate_pairs(
    items: Sequence[Mapping[str, Any]], uint8_images: bool = False, fields: Collection[str] | None = None
) -> dict[str, Any]:
    """Write per-pair records (from :func:`to_item`) into the batch dict of the table above.

    Args:
        items: per-pair records of one size.
        uint8_images: keep ``images`` uint8 in [0, 255] (4x less memory to fill and to send between processes;
            divide by 255 on the GPU). The default is the float32 [0, 1] of docs/interfaces.md §4.
        fields: array keys to carry (default all of :data:`ARRAY_KEYS`).

    Raises:
        ValueError: naming the first two keys whose sizes differ.
    """
    if not items:
        raise ValueError("collate_pairs: empty batch")
    writer = BatchWriter(len(items), uint8_images, fields)
    for it in items:
        writer.add_item(it)
    return writer.finish()


def images_to_float(batch: dict[str, Any]) -> dict[str, Any]:
    """``batch["images"]`` as float32 in [0, 1] (in place on the dict; a no-op when it is float already).

    Call it after moving a ``uint8_images=True`` batch to the GPU: ``x.float() * (1 / 255)`` there costs nothing
    next to a training step, while the loader saves writing and sending 4x the bytes. Values equal the float32
    batches' exactly.
    """
    images = batch["images"]
    if not images.dtype.is_floating_point:
        batch["images"] = images.to(torch.float32).mul_(np.float32(1 / 255))
    return batch

"""The ``blenderproc`` (photoreal) renderer: config plumbing, the per-view agreement check and the pairs it drops,
the message without the extra, and (with ``bpy`` installed) a tiny Cycles shard that ``datagen verify`` passes and
whose pixels repeat."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from datagen.config import DROPPED_PAIRS, PhotorealConfig, RenderConfig
from datagen.photoreal import INSTALL_HINT, PhotorealUnavailable, photoreal_available, require_photoreal
from datagen.photoreal.protocol import read_message, write_message
from datagen.photoreal.scene import GROUND_INDEX, OBJECT_INDEX, agreement, agrees

needs_bpy = pytest.mark.skipif(
    not photoreal_available(),
    reason='bpy is not installed (the photoreal extra: pip install -e ".[photoreal]"); Cycles tests skipped',
)

TINY = {"category": "chair", "size": 32, "instances_per_group": 1, "views_per_instance": 3, "pairs_per_group": 3}


# ----------------------------------------------------------------------------------------------------------------
# everywhere (no bpy needed)


def test_config_round_trip_and_default_records_unchanged():
    default = RenderConfig()
    assert "renderer" not in default.to_dict() and "photoreal" not in default.to_dict()  # old fingerprints hold
    photo = RenderConfig(renderer="blenderproc", photoreal=PhotorealConfig(samples=8, denoise=False, device="cpu"))
    d = json.loads(json.dumps(photo.to_dict()))
    assert d["renderer"] == "blenderproc" and d["photoreal"]["samples"] == 8
    back = RenderConfig.from_dict(d)
    assert back == photo and back.fingerprint() == photo.fingerprint() != default.fingerprint()
    assert RenderConfig.from_dict(default.to_dict()) == default


@pytest.mark.parametrize(
    "make",
    [
        lambda: RenderConfig(renderer="eevee"),
        lambda: PhotorealConfig(device="tpu"),
        lambda: PhotorealConfig(samples=0),
        lambda: PhotorealConfig(min_mask_iou=0.0),
        lambda: PhotorealConfig(camera_noise=-1.0),
    ],
    ids=["renderer", "device", "samples", "iou", "noise"],
)
def test_config_rejects_bad_values(make):
    with pytest.raises(ValueError):
        make()


def test_cli_flags_reach_the_config():
    import argparse

    from datagen.commands import render as cmd

    parser = argparse.ArgumentParser()
    cmd.register(parser.add_subparsers())
    argv = ["render", "--renderer", "blenderproc", "--samples", "7", "--no-denoise", "--device", "cpu"]
    config = cmd._build_config(parser.parse_args([*argv, "--camera-noise", "4", "--camera-blur", "0.5"]))
    assert config.renderer == "blenderproc"
    want = PhotorealConfig(samples=7, denoise=False, device="cpu", camera_noise=4.0, camera_blur_px=0.5)
    assert config.photoreal == want


def test_camera_effects_are_seeded_and_leave_plain_renders_alone():
    from datagen.photoreal.views import PhotorealViews

    img = np.full((16, 16, 3), 100.0, np.float32)
    img[:, 8:] = 200.0
    plain = PhotorealViews(RenderConfig(renderer="blenderproc"))
    out, rec = plain._camera_effects(img, 5)
    assert out is img and rec == {"noise": 0.0, "blur_px": 0.0}
    effects = PhotorealConfig(camera_noise=8, camera_blur_px=2)
    noisy = PhotorealViews(RenderConfig(renderer="blenderproc", photoreal=effects))
    a, rec_a = noisy._camera_effects(img, 5)
    b, rec_b = noisy._camera_effects(img, 5)
    assert np.array_equal(a, b) and rec_a == rec_b and rec_a["noise"] > 0
    assert not np.array_equal(a, noisy._camera_effects(img, 6)[0])


def test_protocol_round_trip():
    buf = io.BytesIO()
    msg = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": [1, "x"]}
    write_message(buf, msg)
    write_message(buf, None)
    buf.seek(0)
    got = read_message(buf)
    assert np.array_equal(got["a"], msg["a"]) and got["b"] == [1, "x"]
    assert read_message(buf) is None and read_message(buf) is None  # end of stream


def _exact_view(h: int = 40, w: int = 40) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[:h, :w]
    mask = (xx - 20) ** 2 + (yy - 20) ** 2 < 12**2
    depth = np.where(mask, 2.0 + 0.01 * xx, 0.0).astype(np.float32)
    return depth, mask


def test_agreement_accepts_the_exact_view_and_rejects_a_shifted_or_deeper_one():
    depth, mask = _exact_view()
    index = np.where(mask, OBJECT_INDEX, 0)
    same = agreement(depth, mask, depth, index)
    assert same["mask_iou"] == 1.0 and same["depth_median_m"] == 0.0 and agrees(same, PhotorealConfig())
    shifted = agreement(depth, mask, np.roll(depth, 2, axis=1), np.roll(index, 2, axis=1))
    assert shifted["mask_iou"] < 0.99 and not agrees(shifted, PhotorealConfig())
    deeper = agreement(depth, mask, depth + np.float32(0.005), index)
    assert deeper["mask_iou"] == 1.0 and deeper["depth_median_m"] > 0.004 and not agrees(deeper, PhotorealConfig())
    floor = index.copy()
    floor[mask & (np.arange(40)[:, None] > 28)] = GROUND_INDEX  # a ground plane hiding the object's bottom
    assert not agrees(agreement(depth, mask, depth, floor), PhotorealConfig())


class _FakeViews:
    """Stands in for the Blender worker: a third of the views (by seed) disagree with the exact GT."""

    instances: list[_FakeViews] = []

    def __init__(self, config: RenderConfig, threads: int = 0) -> None:
        self.n, self.closed = 0, False
        _FakeViews.instances.append(self)

    def materials(self, key, appearance, rng_factory):
        return []

    def render_view(self, view, surface, instance, occluders, view_seed, photo=None):
        self.n += 1
        ok = view_seed % 3 != 0
        image = np.full((view.height, view.width, 3), 128, np.uint8)
        record = agreement(surface.object_depth, surface.object_mask, surface.object_depth, surface.object_mask * 1)
        return image, {"used": ok, "agreement": record}, ok

    def close(self) -> None:
        self.closed = True


def test_disagreeing_views_drop_their_pairs_with_a_count_in_dataset_json(tmp_path, monkeypatch):
    import datagen.photoreal.views as views
    from datagen.shards import render_dataset_dir, render_shard

    monkeypatch.setattr(views, "PhotorealViews", _FakeViews)
    _FakeViews.instances.clear()
    config = RenderConfig(**TINY, n_pairs=4, shard_size=4, backend="embree", renderer="blenderproc")
    dataset = render_dataset_dir(config, tmp_path)
    dataset.claim()
    entry, timings = render_shard(config, tmp_path, 0)
    assert entry is not None and entry.samples == 4  # replaced: the shard keeps its size
    assert entry.dropped > 0 and DROPPED_PAIRS not in timings
    manifest = json.loads((tmp_path / "dataset.json").read_text())
    assert manifest["shards"][0]["dropped"] == entry.dropped and manifest["n_dropped"] == entry.dropped
    assert all(v.closed for v in _FakeViews.instances)  # one worker per shard, stopped with it
    import webdataset as wds

    from loaders.members import decode_sample

    for raw in wds.WebDataset(str(tmp_path / entry.name), shardshuffle=False):
        meta = decode_sample(raw)["meta"]
        assert all(v["photoreal"]["used"] for v in meta["views"])  # no written pair has a disagreeing view
        assert meta["renderer"]["image"] == "blenderproc"


def test_without_the_extra_the_error_says_how_to_install(monkeypatch, tmp_path, capsys):
    import datagen.photoreal as photoreal
    from datagen.cli import main

    monkeypatch.setattr(photoreal.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(PhotorealUnavailable, match=r'pip install -e "\.\[photoreal\]"'):
        require_photoreal()
    args = ["render", "--renderer", "blenderproc", "--n", "1", "--size", "32", "--out", str(tmp_path / "d")]
    assert main([*args, "--backend", "embree", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert 'pip install -e ".[photoreal]"' in err and "bpy" in err
    assert not (tmp_path / "d" / "dataset.json").exists()
    assert "photoreal" in INSTALL_HINT


def test_the_core_package_does_not_import_bpy():
    import subprocess
    import sys

    code = (
        "import sys, datagen.pipeline, datagen.commands.render, datagen.photoreal.views, datagen.photoreal.client; "
        "sys.exit(1 if 'bpy' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2]).returncode == 0


def _photos(folder: Path, n: int = 2) -> Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        img = np.clip(rng.normal(60 + 80 * i, 40, (48 + 8 * i, 80, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f"photo{i}.png")
    return folder


def test_photo_backgrounds_folder_list_and_bad_files_named(tmp_path):
    from datagen.backgrounds import BackgroundError, PhotoBackgrounds, photo_rng

    folder = _photos(tmp_path / "photos")
    photos = PhotoBackgrounds(folder)
    a, meta = photos.sample(photo_rng(7), 32, 40)
    b, _ = photos.sample(photo_rng(7), 32, 40)
    assert a.shape == (32, 40, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
    assert meta["photo"] in ("photo0.png", "photo1.png") and len(meta["crop"]) == 4
    listing = tmp_path / "list.txt"
    listing.write_text("# my photos\nphotos/photo1.png\n")
    assert [p.name for p in PhotoBackgrounds(listing).paths] == ["photo1.png"]
    assert PhotoBackgrounds(folder / "photo0.png").paths == [folder / "photo0.png"]  # one photo
    listing.write_text("photos/photo1.png\nphotos/nope.jpg\n")
    with pytest.raises(BackgroundError, match="nope.jpg: missing"):
        PhotoBackgrounds(listing)
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(BackgroundError, match="broken.jpg: unreadable"):
        PhotoBackgrounds(folder)
    with pytest.raises(BackgroundError, match="no images"):
        PhotoBackgrounds(_photos(tmp_path / "empty", 0))


def test_pyrender_path_composites_over_photos_and_records_the_choice(tmp_path, capsys):
    from datagen.cli import main
    from datagen.pipeline import generate_shard

    folder = _photos(tmp_path / "photos")
    config = RenderConfig(**TINY, n_pairs=2, shard_size=2, backend="embree", backgrounds=str(folder))
    for sample in generate_shard(config, 0):
        for k, view in enumerate(sample["meta"]["views"]):
            assert view["background"] == "photo" and view["background_photo"]["photo"].startswith("photo")
            assert sample[f"image{k}"][~sample[f"mask{k}"]].std() > 10  # the noisy photo, not a flat fill
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    args = ["render", "--n", "1", "--size", "32", "--backend", "embree", "--out", str(tmp_path / "d")]
    assert main([*args, "--backgrounds", str(folder), "--no-progress"]) == 2
    assert "broken.jpg: unreadable" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------------------------
# with bpy (the photoreal extra)


@needs_bpy
def test_a_cycles_shard_at_64px_over_photos_verifies_and_its_gt_agrees(tmp_path, capsys):
    from datagen.cli import main
    from datagen.verify import verify_dataset

    out = tmp_path / "bp"
    args = ["render", "--category", "chair", "--renderer", "blenderproc", "--n", "2", "--shard-size", "2"]
    args += ["--backgrounds", str(_photos(tmp_path / "photos"))]  # the photo backplate path as well
    code = main([*args, "--size", "64", "--samples", "4", "--workers", "1", "--out", str(out), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    report = verify_dataset(out, samples=2, progress=False)
    assert report.ok, report.problems
    import webdataset as wds

    from loaders.members import decode_sample

    for raw in wds.WebDataset(str(out / "pairs-000000.tar"), shardshuffle=False):
        sample = decode_sample(raw)
        for k, v in enumerate(sample["meta"]["views"]):
            rec = v["photoreal"]["agreement"]
            assert rec["mask_iou"] >= 0.99 and rec["depth_median_m"] <= 1e-3
            assert v["photoreal"]["background"] == "photo" and "photo" in v["background_photo"]
            assert sample[f"image{k}"].std() > 5  # a picture, not a blank frame


@needs_bpy
def test_same_request_same_pixels():
    from datagen.families import get_family
    from datagen.photoreal.client import PhotorealWorker
    from datagen.photoreal.scene import material_specs, view_request, world_spec
    from datagen.pipeline import _Group
    from datagen.render import get_renderer
    from datagen.render.base import clip_planes

    config = RenderConfig(**TINY, backend="embree")
    group = _Group(config, get_family("chair"), get_renderer("embree"), 0, 0, None)
    gv, gi = group.view(0), group.instances[0]
    rng = np.random.default_rng(3)
    request = view_request(
        [("object", gi.mesh, material_specs(gi.appearance, rng), OBJECT_INDEX)],
        gv.view,
        seed=5,
        world=world_spec(rng),
        ground=None,
        settings=PhotorealConfig(samples=2, denoise=False, device="cpu"),
        clip=clip_planes(gi.mesh, gv.view),
        background="sky",
    )
    replies = []
    for threads in (1, 2):  # two worker processes, two thread counts
        with PhotorealWorker(threads=threads) as worker:
            replies.append(worker.render(request))
    assert np.array_equal(replies[0]["rgba"], replies[1]["rgba"])
    assert np.array_equal(replies[0]["depth"], replies[1]["depth"])
    rec = agreement(gv.surface.object_depth, gv.surface.object_mask, replies[0]["depth"], replies[0]["index"])
    assert agrees(rec, PhotorealConfig()), rec

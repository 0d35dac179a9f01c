"""The Blender worker: Cycles renders of scene requests, run as ``python -m datagen.photoreal.worker``.

This is the only module of the project that imports ``bpy`` (GPL-3, the ``photoreal`` extra). It runs in a
process of its own, started by :class:`datagen.photoreal.client.PhotorealWorker` once per shard, and reads
requests from stdin and writes replies to stdout, each a length-prefixed pickle (:mod:`datagen.photoreal.protocol`).
Blender's own console output is sent to stderr, so it never mixes with replies.

Each request is one view: meshes (vertices, faces, material groups, per-corner normals and texture coordinates),
a material per group, the camera (``K``, ``T_cam_from_world``, OpenCV convention), the world (sky, sun, ground) and
the render settings. Two renders answer it:

* the *exact* pass: one sample per pixel with a pixel filter of 0.01 px, so its z-depth and object-index passes are
  taken at the pixel centre, like the project's exact path; they are read back from 32-bit EXR files through
  ``bpy`` itself (no OpenCV EXR support needed);
* the *beauty* pass: ``samples`` per pixel, the usual 1.5 px Blackman-Harris filter, optional OpenImageDenoise.

The world frame of the project is y-up; Blender's is z-up, so everything is rotated by ``_Y_UP_TO_Z_UP`` (depths
and pixels are unchanged by a rigid motion of the whole scene).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from datagen.photoreal.protocol import read_message, write_message

_Y_UP_TO_Z_UP = np.array([[1, 0, 0, 0], [0, 0, -1, 0], [0, 1, 0, 0], [0, 0, 0, 1]], dtype=np.float64)
_CV_TO_GL = np.diag([1.0, -1.0, -1.0, 1.0])  # OpenCV camera axes -> Blender camera axes
_NO_HIT_DEPTH = 1e9  # Cycles writes 1e10 where a ray hits nothing


def _bpy():
    import bpy  # noqa: PLC0415  (only inside the worker process)

    return bpy


def _clear(bpy) -> None:
    """Remove everything a previous request made."""
    for coll in (bpy.data.objects, bpy.data.meshes, bpy.data.materials, bpy.data.lights, bpy.data.cameras,
                 bpy.data.worlds, bpy.data.images, bpy.data.node_groups):  # fmt: skip
        for item in list(coll):
            if coll is bpy.data.images and item.name in ("Render Result", "Viewer Node"):
                continue
            coll.remove(item)


def _select_device(bpy, want: str) -> str:
    """Use OptiX, else CUDA, when a GPU is present and ``want`` is ``auto`` or ``gpu``; return what is used."""
    scene = bpy.context.scene
    scene.cycles.device = "CPU"
    if want == "cpu":
        return "CPU"
    prefs = bpy.context.preferences.addons["cycles"].preferences
    for kind in ("OPTIX", "CUDA"):
        try:
            prefs.compute_device_type = kind
            prefs.get_devices()
        except (TypeError, ValueError):
            continue
        gpus = [d for d in prefs.devices if d.type == kind]
        if gpus:
            for d in prefs.devices:
                d.use = d.type == kind
            scene.cycles.device = "GPU"
            return kind
    if want == "gpu":
        raise RuntimeError("device 'gpu' asked for, but Cycles found no OptiX or CUDA device")
    return "CPU"


def _add_mesh(bpy, spec: dict[str, Any], materials: list) -> Any:
    v = np.asarray(spec["vertices"], np.float64)
    v = (v @ _Y_UP_TO_Z_UP[:3, :3].T).astype(np.float32)
    f = np.asarray(spec["faces"], np.int32)
    me = bpy.data.meshes.new(spec["name"])
    me.vertices.add(len(v))
    me.vertices.foreach_set("co", v.ravel())
    me.loops.add(3 * len(f))
    me.loops.foreach_set("vertex_index", f.ravel())
    me.polygons.add(len(f))
    me.polygons.foreach_set("loop_start", np.arange(0, 3 * len(f), 3, dtype=np.int32))
    me.polygons.foreach_set("use_smooth", np.ones(len(f), bool))
    me.polygons.foreach_set("material_index", np.asarray(spec["face_group"], np.int32))
    uv = me.uv_layers.new(name="UVMap")
    cuv = np.asarray(spec["corner_uv"], np.float32).reshape(-1, 2).copy()
    cuv[:, 1] = 1.0 - cuv[:, 1]  # the project's v runs down, Blender's up
    uv.data.foreach_set("uv", cuv.ravel())
    me.update()
    normals = np.asarray(spec["corner_normals"], np.float32).reshape(-1, 3) @ _Y_UP_TO_Z_UP[:3, :3].T.astype(np.float32)
    me.normals_split_custom_set(normals.tolist())
    for m in materials:
        me.materials.append(m)
    obj = bpy.data.objects.new(spec["name"], me)
    obj.pass_index = int(spec["pass_index"])
    bpy.context.scene.collection.objects.link(obj)
    return obj


def _image(bpy, name: str, rgb: np.ndarray, folder: Path) -> Any:
    """A texture as a file-backed image (the pixels of a generated image are lost when Cycles reloads it)."""
    from PIL import Image  # noqa: PLC0415

    path = folder / f"{name}.png"
    Image.fromarray(np.ascontiguousarray(rgb, np.uint8)).save(path)
    img = bpy.data.images.load(str(path))
    img.colorspace_settings.name = "sRGB"
    return img


def _material(bpy, name: str, spec: dict[str, Any], folder: Path) -> Any:
    """A Principled BSDF: base colour (a texture or a colour) varied by noise, noisy roughness, bump, coat, sheen."""
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    nt = mat.node_tree
    bsdf = nt.nodes["Principled BSDF"]
    links = nt.links
    if spec.get("texture") is not None:
        tex = nt.nodes.new("ShaderNodeTexImage")
        tex.image = _image(bpy, name + "_albedo", np.asarray(spec["texture"], np.uint8), folder)
        tex.interpolation = "Linear"
        base = tex.outputs["Color"]
    else:
        rgb = nt.nodes.new("ShaderNodeRGB")
        rgb.outputs[0].default_value = (*spec["base_color_linear"], 1.0)
        base = rgb.outputs[0]
    coord = nt.nodes.new("ShaderNodeTexCoord")
    noise = nt.nodes.new("ShaderNodeTexNoise")
    noise.inputs["Scale"].default_value = spec["noise_scale"]
    noise.inputs["Detail"].default_value = spec["noise_detail"]
    links.new(coord.outputs["Object"], noise.inputs["Vector"])
    mix = nt.nodes.new("ShaderNodeMix")
    mix.data_type = "RGBA"
    mix.blend_type = "MULTIPLY"
    mix.inputs["Factor"].default_value = spec["albedo_variation"]
    links.new(base, mix.inputs["A"])
    links.new(noise.outputs["Color"], mix.inputs["B"])
    links.new(mix.outputs["Result"], bsdf.inputs["Base Color"])
    rough = nt.nodes.new("ShaderNodeMapRange")
    rough.inputs["To Min"].default_value = spec["roughness"][0]
    rough.inputs["To Max"].default_value = spec["roughness"][1]
    links.new(noise.outputs["Fac"], rough.inputs["Value"])
    links.new(rough.outputs["Result"], bsdf.inputs["Roughness"])
    bump = nt.nodes.new("ShaderNodeBump")
    bump.inputs["Strength"].default_value = spec["bump"]
    bump.inputs["Distance"].default_value = 0.01
    links.new(noise.outputs["Fac"], bump.inputs["Height"])
    links.new(bump.outputs["Normal"], bsdf.inputs["Normal"])
    bsdf.inputs["Metallic"].default_value = spec["metallic"]
    bsdf.inputs["Specular IOR Level"].default_value = spec["specular"]
    bsdf.inputs["Coat Weight"].default_value = spec["coat"]
    bsdf.inputs["Sheen Weight"].default_value = spec["sheen"]
    return mat


def _world(bpy, spec: dict[str, Any]) -> None:
    """A procedural sky (Nishita, no download) lighting the scene, plus a sun lamp."""
    world = bpy.data.worlds.new("world")
    bpy.context.scene.world = world
    world.use_nodes = True
    nt = world.node_tree
    bg = nt.nodes["Background"]
    sky = nt.nodes.new("ShaderNodeTexSky")
    sky.sky_type = "NISHITA"
    sky.sun_elevation = spec["sun_elevation"]
    sky.sun_rotation = spec["sun_rotation"]
    sky.air_density = spec["air"]
    sky.dust_density = spec["dust"]
    sky.sun_disc = False
    nt.links.new(sky.outputs["Color"], bg.inputs["Color"])
    bg.inputs["Strength"].default_value = spec["sky_strength"]
    if spec.get("backdrop") is not None and not bpy.context.scene.render.film_transparent:
        # what the camera sees where it misses everything: a painted backdrop
        bd = spec["backdrop"]
        coord = nt.nodes.new("ShaderNodeTexCoord")
        noise = nt.nodes.new("ShaderNodeTexNoise")
        noise.inputs["Scale"].default_value = bd["scale"]
        noise.inputs["Detail"].default_value = bd["detail"]
        nt.links.new(coord.outputs["Window"], noise.inputs["Vector"])
        ramp = nt.nodes.new("ShaderNodeMix")
        ramp.data_type = "RGBA"
        ramp.inputs["A"].default_value = (*bd["color0_linear"], 1.0)
        ramp.inputs["B"].default_value = (*bd["color1_linear"], 1.0)
        nt.links.new(noise.outputs["Fac"], ramp.inputs["Factor"])
        plate = nt.nodes.new("ShaderNodeBackground")
        nt.links.new(ramp.outputs["Result"], plate.inputs["Color"])
        path = nt.nodes.new("ShaderNodeLightPath")
        mix = nt.nodes.new("ShaderNodeMixShader")
        nt.links.new(path.outputs["Is Camera Ray"], mix.inputs["Fac"])
        nt.links.new(bg.outputs["Background"], mix.inputs[1])
        nt.links.new(plate.outputs["Background"], mix.inputs[2])
        nt.links.new(mix.outputs["Shader"], nt.nodes["World Output"].inputs["Surface"])
    sun_data = bpy.data.lights.new("sun", "SUN")
    sun_data.energy = spec["sun_strength"]
    sun_data.angle = spec["sun_angle"]
    sun_data.color = spec["sun_color"]
    sun = bpy.data.objects.new("sun", sun_data)
    # a sun lamp shines down its local -z: point it from the sky's sun direction
    sun.rotation_euler = (np.pi / 2 - spec["sun_elevation"], 0.0, spec["sun_rotation"] + np.pi / 2)
    bpy.context.scene.collection.objects.link(sun)


def _ground(bpy, spec: dict[str, Any], shadow_catcher: bool) -> None:
    """A large plane at the object's foot (z-up after the frame change), with a procedural checker/noise floor."""
    z, half = spec["height"], spec["half_size"]
    verts = np.array([[-half, -half, z], [half, -half, z], [half, half, z], [-half, half, z]], np.float32)
    me = bpy.data.meshes.new("ground")
    me.from_pydata(verts.tolist(), [], [[0, 1, 2, 3]])
    me.update()
    mat = bpy.data.materials.new("ground")
    mat.use_nodes = True
    nt = mat.node_tree
    bsdf = nt.nodes["Principled BSDF"]
    checker = nt.nodes.new("ShaderNodeTexChecker")
    checker.inputs["Scale"].default_value = spec["checker_scale"]
    checker.inputs["Color1"].default_value = (*spec["color0_linear"], 1.0)
    checker.inputs["Color2"].default_value = (*spec["color1_linear"], 1.0)
    coord = nt.nodes.new("ShaderNodeTexCoord")
    nt.links.new(coord.outputs["Object"], checker.inputs["Vector"])
    nt.links.new(checker.outputs["Color"], bsdf.inputs["Base Color"])
    bsdf.inputs["Roughness"].default_value = spec["roughness"]
    me.materials.append(mat)
    obj = bpy.data.objects.new("ground", me)
    obj.pass_index = int(spec["pass_index"])
    obj.is_shadow_catcher = shadow_catcher
    bpy.context.scene.collection.objects.link(obj)


def _camera(bpy, K: np.ndarray, T_cam_from_world: np.ndarray, h: int, w: int, near: float, far: float) -> None:
    """A Blender camera with the intrinsics ``K`` (square pixels; pixel (c, r)'s centre at (c, r))."""
    cam = bpy.data.cameras.new("cam")
    cam.sensor_fit = "HORIZONTAL" if w >= h else "VERTICAL"
    side = max(w, h)
    cam.sensor_width = cam.sensor_height = 36.0
    cam.lens = float(K[0, 0]) * 36.0 / side
    cam.shift_x = -(float(K[0, 2]) - (w - 1) / 2.0) / side
    cam.shift_y = (float(K[1, 2]) - (h - 1) / 2.0) / side
    cam.clip_start, cam.clip_end = near, far
    obj = bpy.data.objects.new("cam", cam)
    world_from_cam = _Y_UP_TO_Z_UP @ np.linalg.inv(T_cam_from_world) @ _CV_TO_GL
    import mathutils  # noqa: PLC0415  (Blender's own; a plain nested list would be read as columns)

    obj.matrix_world = mathutils.Matrix([list(map(float, r)) for r in world_from_cam])
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.scene.camera = obj


def _read_exr(bpy, path: Path, h: int, w: int) -> np.ndarray:
    img = bpy.data.images.load(str(path))
    img.colorspace_settings.name = "Non-Color"
    px = np.empty(h * w * 4, np.float32)
    img.pixels.foreach_get(px)
    bpy.data.images.remove(img)
    return px.reshape(h, w, 4)[::-1, :, 0].copy()


def _exact_pass(bpy, out: Path, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """(z-depth float32 [H, W] with 0 on no hit, object pass index int32 [H, W]) at the pixel centres."""
    scene = bpy.context.scene
    c = scene.cycles
    saved = (c.samples, c.use_denoising, c.filter_width, c.max_bounces, scene.render.film_transparent)
    c.samples, c.use_denoising, c.filter_width, c.max_bounces = 1, False, 0.01, 0
    vl = scene.view_layers[0]
    vl.use_pass_z = True
    vl.use_pass_object_index = True
    scene.use_nodes = True
    nt = scene.node_tree
    nt.nodes.clear()
    rl = nt.nodes.new("CompositorNodeRLayers")
    comp = nt.nodes.new("CompositorNodeComposite")
    nt.links.new(rl.outputs["Image"], comp.inputs["Image"])
    fo = nt.nodes.new("CompositorNodeOutputFile")
    fo.base_path = str(out)
    fo.format.file_format = "OPEN_EXR"
    fo.format.color_depth = "32"
    fo.format.color_mode = "RGB"
    fo.file_slots.clear()
    fo.file_slots.new("depth_")
    fo.file_slots.new("index_")
    nt.links.new(rl.outputs["Depth"], fo.inputs[0])
    nt.links.new(rl.outputs["IndexOB"], fo.inputs[1])
    scene.render.filepath = str(out / "exact_rgb.png")
    bpy.ops.render.render(write_still=False)
    frame = scene.frame_current
    depth = _read_exr(bpy, out / f"depth_{frame:04d}.exr", h, w)
    index = _read_exr(bpy, out / f"index_{frame:04d}.exr", h, w)
    scene.use_nodes = False
    vl.use_pass_z = vl.use_pass_object_index = False
    c.samples, c.use_denoising, c.filter_width, c.max_bounces, scene.render.film_transparent = saved
    depth = np.where(depth < _NO_HIT_DEPTH, depth, 0.0).astype(np.float32)
    return depth, np.rint(index).astype(np.int32)


def _beauty_pass(bpy, out: Path, h: int, w: int) -> np.ndarray:
    """uint8 [H, W, 4] RGBA (straight alpha) of the final render."""
    scene = bpy.context.scene
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGBA"
    scene.render.image_settings.color_depth = "8"
    scene.render.filepath = str(out / "beauty.png")
    bpy.ops.render.render(write_still=True)
    img = bpy.data.images.load(str(out / "beauty.png"))
    px = np.empty(h * w * 4, np.float32)
    img.pixels.foreach_get(px)  # the PNG's 8-bit values scaled to [0, 1]
    bpy.data.images.remove(img)
    return np.rint(px.reshape(h, w, 4)[::-1] * 255.0).astype(np.uint8)


def render(request: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """Render one view request; see the module docstring."""
    bpy = _bpy()
    _clear(bpy)
    scene = bpy.context.scene
    h, w = int(request["height"]), int(request["width"])
    settings = request["settings"]
    scene.render.engine = "CYCLES"
    scene.render.use_persistent_data = True  # keeps Cycles' device data between the two passes and requests
    device = _select_device(bpy, settings["device"])
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = w, h, 100
    scene.render.pixel_aspect_x = scene.render.pixel_aspect_y = 1.0
    c = scene.cycles
    c.samples = int(settings["samples"])
    c.use_adaptive_sampling = False
    c.use_denoising = bool(settings["denoise"])
    c.denoiser = "OPENIMAGEDENOISE"
    c.seed = int(request["seed"]) % (2**31)
    c.use_animated_seed = False
    c.filter_width = 1.5
    c.max_bounces = int(settings["max_bounces"])
    scene.render.threads_mode = "FIXED" if settings.get("threads") else "AUTO"
    if settings.get("threads"):
        scene.render.threads = int(settings["threads"])
    scene.view_settings.view_transform = "Standard"
    scene.view_settings.look = "None"
    scene.view_settings.exposure = float(request["world"]["exposure"])
    scene.render.film_transparent = request["background"] == "photo"
    out = Path(tempfile.mkdtemp(dir=workdir))
    for spec in request["meshes"]:
        mats = [_material(bpy, f"{spec['name']}_{i}", m, out) for i, m in enumerate(spec["materials"])]
        _add_mesh(bpy, spec, mats)
    _world(bpy, request["world"])
    if request.get("ground") is not None:
        _ground(bpy, request["ground"], shadow_catcher=request["background"] == "photo")
    _camera(bpy, np.asarray(request["K"]), np.asarray(request["T_cam_from_world"]), h, w, *request["clip"])
    depth, index = _exact_pass(bpy, out, h, w)
    rgba = _beauty_pass(bpy, out, h, w)
    _clear(bpy)  # textures are read from files: release them before removing the folder
    for p in out.iterdir():
        p.unlink()
    out.rmdir()
    return {"rgba": rgba, "depth": depth, "index": index, "device": device, "blender": bpy.app.version_string}


def main() -> int:
    """Serve requests until stdin closes (or a ``None`` request)."""
    proto_out = os.fdopen(os.dup(1), "wb")  # replies go to the original stdout ...
    os.dup2(2, 1)  # ... and Blender's console output to stderr
    proto_in = sys.stdin.buffer
    with tempfile.TemporaryDirectory(prefix="photoreal-") as tmp:
        while True:
            request = read_message(proto_in)
            if request is None:
                break
            try:
                reply: dict[str, Any] = {"ok": True, **render(request, Path(tmp))}
            except Exception as exc:  # reported to the client, which raises it
                import traceback  # noqa: PLC0415

                reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
            write_message(proto_out, reply)
    return 0


if __name__ == "__main__":
    sys.exit(main())

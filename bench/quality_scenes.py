"""Ground-truth scenes for `make bench-quality`, rendered by Blender (Cycles, CPU).

Run as a script in its own process (bpy loads cleanly there):

    python -m bench.quality_scenes --out DIR [--size 320x240] [--samples 24]

Each object is built in code from Blender primitives with procedural or photo
textures, placed in front of Uplift's photo camera (at the origin looking along +Y,
Z up, 60° horizontal field of view: exactly what `camera_from_photo` gives a photo
without EXIF) and rendered with a transparent film at pose A and at each edited
pose B. Pose B is pose A moved by the very similarity `uplift edit` applies for that
edit (`core.transforms.camera_edit`), computed about the *true* object's centre and
size (from its mesh), so ground truth and the pipeline mean the same edit.

Writes DIR/scenes.json (camera, objects, edits) and DIR/<object>/<pose>.png
(straight-alpha RGBA; alpha is the exact object mask). Backgrounds are composited
later (`bench.quality`), so one render serves every background.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

# Edit types of the benchmark: name -> (rotate_deg (yaw, pitch, roll), translate (object sizes), scale).
EDITS = {
    "yaw15": ((15.0, 0.0, 0.0), (0.0, 0.0, 0.0), 1.0),
    "yaw30": ((30.0, 0.0, 0.0), (0.0, 0.0, 0.0), 1.0),
    "yaw60": ((60.0, 0.0, 0.0), (0.0, 0.0, 0.0), 1.0),
    "pitch20": ((0.0, 20.0, 0.0), (0.0, 0.0, 0.0), 1.0),
    "translate": ((0.0, 0.0, 0.0), (0.45, 0.1, 0.6), 1.0),
    "scale1.3": ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0), 1.3),
}
HORIZONTAL_FOV_DEG = 60.0
SCENES_VERSION = 2  # bump when objects, lights or edits change, so cached renders are redone


def scene_key(size: tuple[int, int], samples: int) -> dict:
    return {"version": SCENES_VERSION, "size": list(size), "samples": samples, "edits": EDITS}


# -- Blender scene building ----------------------------------------------------------------

def _reset_scene(size: tuple[int, int], samples: int):
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    sc = bpy.context.scene
    sc.render.engine = "CYCLES"
    sc.cycles.device = "CPU"
    sc.cycles.samples = samples
    sc.cycles.use_denoising = True
    sc.cycles.max_bounces = 4
    sc.render.threads_mode = "FIXED"
    sc.render.threads = 2
    sc.render.resolution_x, sc.render.resolution_y = size
    sc.render.resolution_percentage = 100
    sc.render.film_transparent = True
    sc.render.image_settings.file_format = "PNG"
    sc.render.image_settings.color_mode = "RGBA"
    sc.view_settings.view_transform = "Standard"  # plain sRGB, so textures keep their colours
    world = bpy.data.worlds.new("world")
    world.use_nodes = True
    world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.75, 0.75, 0.75, 1.0)
    world.node_tree.nodes["Background"].inputs["Strength"].default_value = 1.0
    sc.world = world
    sun = bpy.data.objects.new("sun", bpy.data.lights.new("sun", type="SUN"))
    sun.data.energy = 1.5
    sun.rotation_euler = (math.radians(50), math.radians(-20), math.radians(-30))
    sc.collection.objects.link(sun)
    cam = bpy.data.objects.new("camera", bpy.data.cameras.new("camera"))
    cam.data.sensor_fit = "HORIZONTAL"
    cam.data.angle = math.radians(HORIZONTAL_FOV_DEG)
    cam.rotation_euler = (math.radians(90), 0.0, 0.0)  # look along +Y with +Z up: Uplift's photo camera
    sc.collection.objects.link(cam)
    sc.camera = cam
    return sc


def _material(name: str, build):
    """A Principled BSDF whose base colour is `build(nodes, links, coords)`'s output socket;
    coords are the object's own coordinates, so the texture moves with the object."""
    import bpy

    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    bsdf = nodes["Principled BSDF"]
    bsdf.inputs["Roughness"].default_value = 0.7
    coords = nodes.new("ShaderNodeTexCoord").outputs["Object"]
    links.new(build(nodes, links, coords), bsdf.inputs["Base Color"])
    return mat


def _ramp(nodes, links, fac, colors):
    ramp = nodes.new("ShaderNodeValToRGB")
    elements = ramp.color_ramp.elements
    elements[0].color, elements[1].color = colors[0] + (1.0,), colors[-1] + (1.0,)
    for i, c in enumerate(colors[1:-1], 1):
        elements.new(i / (len(colors) - 1)).color = c + (1.0,)
    links.new(fac, ramp.inputs["Fac"])
    return ramp.outputs["Color"]


def _tex(kind: str, **inputs):
    def build(nodes, links, coords):
        tex = nodes.new(kind)
        for key, value in inputs.items():
            if key.startswith("attr_"):
                setattr(tex, key[5:], value)
            else:
                tex.inputs[key].default_value = value
        links.new(coords, tex.inputs["Vector"])
        return tex.outputs["Color"]
    return build


def _image_tex(path: str):
    def build(nodes, links, coords):
        import bpy

        tex = nodes.new("ShaderNodeTexImage")
        tex.image = bpy.data.images.load(path)
        tex.projection = "BOX"
        tex.projection_blend = 0.1
        mapping = nodes.new("ShaderNodeMapping")
        mapping.inputs["Location"].default_value = (0.5, 0.5, 0.5)
        links.new(coords, mapping.inputs["Vector"])
        links.new(mapping.outputs["Vector"], tex.inputs["Vector"])
        return tex.outputs["Color"]
    return build


def _ramped(kind: str, colors, **inputs):
    """A procedural texture's Fac through a colour ramp."""
    def build(nodes, links, coords):
        tex = nodes.new(kind)
        for key, value in inputs.items():
            tex.inputs[key].default_value = value
        links.new(coords, tex.inputs["Vector"])
        return _ramp(nodes, links, tex.outputs["Fac"], colors)
    return build


def _join(objects, name: str):
    import bpy

    bpy.ops.object.select_all(action="DESELECT")
    for ob in objects:
        ob.select_set(True)
    bpy.context.view_layer.objects.active = objects[0]
    bpy.ops.object.join()
    ob = bpy.context.view_layer.objects.active
    ob.name = name
    return ob


def _finish(ob, mats, location, yaw_deg):
    """Apply the build transforms into the mesh, centre its origin on its bounding box and
    place it at pose A."""
    import bpy

    bpy.ops.object.select_all(action="DESELECT")
    ob.select_set(True)
    bpy.context.view_layer.objects.active = ob
    bpy.ops.object.transform_apply(location=True, rotation=True, scale=True)
    bpy.ops.object.origin_set(type="ORIGIN_GEOMETRY", center="BOUNDS")
    if mats:
        ob.data.materials.clear()
        for m in mats:
            ob.data.materials.append(m)
    ob.location = location
    ob.rotation_euler = (0.0, 0.0, math.radians(yaw_deg))
    return ob


def build_object(name: str, textures: dict[str, str]):
    """One of OBJECT_NAMES, at pose A. Sizes are about 1.2 m, 3.4 m from the camera (a third of the frame)."""
    import bpy

    add = bpy.ops.mesh
    if name == "crate":  # a box with a photo on its sides: new faces appear as it turns
        add.primitive_cube_add(size=1.0)
        ob = bpy.context.active_object
        ob.scale = (1.3, 0.9, 0.9)
        mats = [_material("crate", _image_tex(textures["astronaut"]))]
        return _finish(ob, mats, (-0.2, 3.4, -0.1), 30)
    if name == "mug":  # cylinder + torus handle: the handle swings round under yaw
        add.primitive_cylinder_add(vertices=48, radius=0.45, depth=1.0)
        body = bpy.context.active_object
        add.primitive_torus_add(major_radius=0.3, minor_radius=0.07, location=(0.5, 0, 0),
                                rotation=(math.radians(90), 0, 0))
        ob = _join([body, bpy.context.active_object], "mug")
        mats = [_material("mug", _ramped("ShaderNodeTexWave", [(0.1, 0.35, 0.6), (0.95, 0.9, 0.8), (0.8, 0.3, 0.1)],
                                            Scale=3.0, Distortion=4.0))]
        return _finish(ob, mats, (0.1, 3.4, 0.0), 40)
    if name == "globe":  # a checker ball: only its texture shows the rotation
        add.primitive_uv_sphere_add(segments=48, ring_count=24, radius=0.6)
        ob = bpy.context.active_object
        bpy.ops.object.shade_smooth()
        mats = [_material("globe", _tex("ShaderNodeTexChecker", Scale=4.0,
                                        Color1=(0.9, 0.75, 0.1, 1), Color2=(0.1, 0.2, 0.7, 1)))]
        return _finish(ob, mats, (0.0, 3.4, 0.1), 10)
    if name == "monkey":  # Suzanne: a strongly non-convex, asymmetric-in-depth head
        add.primitive_monkey_add(size=1.3)
        ob = bpy.context.active_object
        ob.rotation_euler = (0, 0, math.radians(180))  # face the camera
        bpy.ops.object.shade_smooth()
        mats = [_material("monkey", _ramped("ShaderNodeTexNoise", [(0.55, 0.25, 0.1), (0.9, 0.6, 0.3), (0.3, 0.1, 0.05)],
                                              Scale=3.0, Detail=4.0))]
        return _finish(ob, mats, (0.0, 3.4, 0.0), 20)
    if name == "house":  # cube walls + cone roof, two materials
        add.primitive_cube_add(size=1.0, location=(0, 0, -0.2))
        walls = bpy.context.active_object
        walls.scale = (1.1, 0.8, 0.7)
        bpy.ops.object.transform_apply(scale=True)
        walls.data.materials.append(_material("walls", _tex("ShaderNodeTexBrick", Scale=4.0,
                                                            Color1=(0.7, 0.25, 0.15, 1), Color2=(0.55, 0.2, 0.1, 1))))
        add.primitive_cone_add(vertices=4, radius1=0.85, depth=0.6, location=(0, 0, 0.45),
                               rotation=(0, 0, math.radians(45)))
        roof = bpy.context.active_object
        roof.scale = (1.15, 0.85, 1.0)
        roof.data.materials.append(_material("roof", _tex("ShaderNodeTexChecker", Scale=8.0,
                                                          Color1=(0.15, 0.15, 0.2, 1), Color2=(0.3, 0.3, 0.35, 1))))
        ob = _join([walls, roof], "house")
        return _finish(ob, None, (0.15, 3.4, -0.05), 35)
    if name == "donut":  # a torus seen at an angle: the hole opens and closes under pitch
        add.primitive_torus_add(major_radius=0.5, minor_radius=0.2, major_segments=64, minor_segments=24,
                                rotation=(math.radians(60), 0, 0))
        ob = bpy.context.active_object
        bpy.ops.object.shade_smooth()
        mats = [_material("donut", _tex("ShaderNodeTexMagic", Scale=3.0, Distortion=1.5))]
        return _finish(ob, mats, (-0.1, 3.4, 0.05), 15)
    raise ValueError(f"unknown object {name!r}")


OBJECT_NAMES = ("crate", "mug", "globe", "monkey", "house", "donut")


def _world_vertices(ob):
    import numpy as np

    M = np.array(ob.matrix_world)
    v = np.array([vert.co[:] for vert in ob.data.vertices])
    return v @ M[:3, :3].T + M[:3, 3]


def render_scenes(out: Path, size: tuple[int, int], samples: int, objects=OBJECT_NAMES, log=print) -> dict:
    import numpy as np
    from mathutils import Matrix

    from uplift.core.camera import Camera
    from uplift.core.transforms import camera_edit, frame_of_points

    camera = Camera.from_fov(size[0], size[1], HORIZONTAL_FOV_DEG)
    import skimage

    textures = {"astronaut": str(Path(skimage.__file__).parent / "data" / "astronaut.png")}
    meta = {"key": scene_key(size, samples), "camera": camera.to_dict(), "objects": {}}
    for name in objects:
        sc = _reset_scene(size, samples)
        ob = build_object(name, textures)
        import bpy

        bpy.context.view_layer.update()
        matrix_a = np.array(ob.matrix_world)
        frame = frame_of_points(_world_vertices(ob), camera)
        (out / name).mkdir(parents=True, exist_ok=True)
        poses = {"A": matrix_a}
        for edit, (rot, trans, scale) in EDITS.items():
            poses[edit] = camera_edit(camera, frame, rot, trans, scale).matrix @ matrix_a
        for pose, matrix in poses.items():
            ob.matrix_world = Matrix(matrix.tolist())
            sc.render.filepath = str(out / name / f"{pose}.png")
            start = time.perf_counter()
            bpy.ops.render.render(write_still=True)
            log(f"[scenes] {name}/{pose}: {time.perf_counter() - start:.1f} s")
        meta["objects"][name] = {"center": frame.center.tolist(), "size": frame.size,
                                 "poses": {k: v.tolist() for k, v in poses.items()}}
    (out / "scenes.json").write_text(json.dumps(meta, indent=1))
    return meta


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--size", default="320x240")
    ap.add_argument("--samples", type=int, default=24)
    ap.add_argument("--objects", default=",".join(OBJECT_NAMES))
    args = ap.parse_args(argv)
    w, h = (int(v) for v in args.size.lower().split("x"))
    import bpy  # noqa: F401  (fail here, clearly, when bpy is missing)

    render_scenes(args.out, (w, h), args.samples, tuple(args.objects.split(",")),
                  log=lambda s: print(s, file=sys.stderr, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
